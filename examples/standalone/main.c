/*
 * Standalone use of symode-generated C code, without Python.
 *
 * Evaluates the loss L and its gradient (discrete adjoint: one reverse sweep through the fixed-step solve)
 * at the model's nominal parameters through CasADi's generated C API, and prints them one value per line:
 *
 *   loss <L>
 *   grad_theta <i> <dL/dtheta_i>    total derivative (z0 = z0(theta) included), model parameter order
 *   grad_z0 <i> <dL/dz0_i>
 *   grad_t0 <dL/dt0>                = -lambda(t0)^T f(z0, t0) - r(z0, t0) in the continuous limit
 *   grad_t1 <dL/dt1>
 *
 * Every number is printed with 17 significant digits (enough to recover the double exactly).
 * Build (any generated model directory; see the Makefile):
 *   cc -std=c99 -O2 -Wall -Werror -I ../../generated/logistic -o main main.c \
 *      ../../generated/logistic/symode_model.c -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define SYMODE_SHORT_NAMES /* aliases symode_grad, SYMODE_NP, ... for the one model included */
#include "symode_model.h"

/* Work arrays of one generated function, sized by its _work function. */
typedef struct {
  const casadi_real **arg;
  casadi_real **res;
  casadi_int *iw;
  casadi_real *w;
} work_t;

static int work_alloc(work_t *wk, int (*sizes)(casadi_int *, casadi_int *, casadi_int *, casadi_int *)) {
  casadi_int n_arg, n_res, n_iw, n_w;
  if (sizes(&n_arg, &n_res, &n_iw, &n_w)) return 1;
  /* +1: malloc(0) may return NULL */
  wk->arg = malloc((size_t)(n_arg + 1) * sizeof *wk->arg);
  wk->res = malloc((size_t)(n_res + 1) * sizeof *wk->res);
  wk->iw = malloc((size_t)(n_iw + 1) * sizeof *wk->iw);
  wk->w = malloc((size_t)(n_w + 1) * sizeof *wk->w);
  return !(wk->arg && wk->res && wk->iw && wk->w);
}

static void work_free(work_t *wk) {
  free((void *)wk->arg);
  free(wk->res);
  free(wk->iw);
  free(wk->w);
}

static int all_finite(const casadi_real *x, int n) {
  int i;
  for (i = 0; i < n; ++i)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* ISO C has no zero-length arrays: a model without parameters gets a one-element placeholder */
#define NP_ARRAY (SYMODE_NP > 0 ? SYMODE_NP : 1)

int main(void) {
  const casadi_real theta[NP_ARRAY] = SYMODE_THETA;
  const casadi_real t0 = SYMODE_T0, t1 = SYMODE_T1;
  casadi_real z0[SYMODE_NZ];
  casadi_real loss, dtheta_partial[NP_ARRAY], dz0[SYMODE_NZ], dt0, dt1, dtheta[NP_ARRAY];
  work_t wk;
  int mem, flag, i;

  /* z0 = z0(theta), the model's initial state */
  if (work_alloc(&wk, symode_z0_work)) { fprintf(stderr, "out of memory\n"); return 1; }
  symode_z0_incref();
  mem = symode_z0_checkout();
  wk.arg[0] = theta;
  wk.res[0] = z0;
  flag = symode_z0(wk.arg, wk.res, wk.iw, wk.w, mem);
  symode_z0_release(mem);
  symode_z0_decref();
  work_free(&wk);
  if (flag) { fprintf(stderr, "z0 evaluation failed (flag %d)\n", flag); return 1; }

  /* L and its gradient: inputs (theta, z0, t0, t1), outputs o0..o5 as documented in symode_model.h */
  if (work_alloc(&wk, symode_grad_work)) { fprintf(stderr, "out of memory\n"); return 1; }
  symode_grad_incref();
  mem = symode_grad_checkout();
  wk.arg[0] = theta;
  wk.arg[1] = z0;
  wk.arg[2] = &t0;
  wk.arg[3] = &t1;
  wk.res[0] = &loss;
  wk.res[1] = dtheta_partial;
  wk.res[2] = dz0;
  wk.res[3] = &dt0;
  wk.res[4] = &dt1;
  wk.res[5] = dtheta;
  flag = symode_grad(wk.arg, wk.res, wk.iw, wk.w, mem);
  symode_grad_release(mem);
  symode_grad_decref();
  work_free(&wk);
  if (flag) { fprintf(stderr, "gradient evaluation failed (flag %d)\n", flag); return 1; }

  /* the generated code does not check its results: a blow-up would give inf or NaN silently */
  if (!all_finite(&loss, 1) || !all_finite(dtheta, SYMODE_NP) || !all_finite(dz0, SYMODE_NZ) ||
      !all_finite(&dt0, 1) || !all_finite(&dt1, 1)) {
    fprintf(stderr, "non-finite result: the solve blew up; use more steps or another scheme\n");
    return 1;
  }
  printf("loss %.17g\n", loss);
  for (i = 0; i < SYMODE_NP; ++i) printf("grad_theta %d %.17g\n", i, dtheta[i]);
  for (i = 0; i < SYMODE_NZ; ++i) printf("grad_z0 %d %.17g\n", i, dz0[i]);
  printf("grad_t0 %.17g\n", dt0);
  printf("grad_t1 %.17g\n", dt1);
  return 0;
}
