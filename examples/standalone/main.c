/*
 * Standalone use of symode-generated C code, without Python.
 *
 * Evaluates the loss L and its gradient (discrete adjoint: one forward pass storing the states, one reverse
 * sweep) at the model's nominal parameters through the generated flat C API, and prints them one value per
 * line:
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

#define SYMODE_SHORT_NAMES /* aliases symode_grad, SYMODE_NP, ... for the one model included */
#include "symode_model.h"

static int all_finite(const double *x, int n) {
  int i;
  for (i = 0; i < n; ++i)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* ISO C has no zero-length arrays: a model without parameters gets a one-element placeholder */
#define NP_ARRAY (SYMODE_NP > 0 ? SYMODE_NP : 1)

int main(void) {
  const double theta[NP_ARRAY] = SYMODE_THETA;
  double loss, dtheta[NP_ARRAY], dz0[SYMODE_NZ], dt0, dt1;
  int flag, i;

  /* z0 = NULL: the model's own z0(theta), so dtheta is the total derivative */
  flag = symode_grad(theta, NULL, SYMODE_T0, SYMODE_T1, &loss, dtheta, dz0, &dt0, &dt1);
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
