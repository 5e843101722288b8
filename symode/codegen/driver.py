"""C text of the generated library's flat API: the one-sweep driver around the step and loss-term kernels.

The kernels (:mod:`symode.codegen.sweep`: the forward step with its residuals, the step's VJP, z0(θ) and its
VJP, the loss terms) are CasADi-generated C functions with CasADi's calling convention -- except the step and
its VJP of a dense network, which :mod:`symode.codegen.dense` writes as loops (``DriverSpec.step_text``).  The
driver reaches the step only through ``P_prepare`` (once per call, after θ is known), ``P_fwd`` and ``P_bwd``.
This module writes the loops around the kernels (the algorithm of :mod:`symode.codegen.sweep`, in the same order
of operations as its reference graph) and, with :mod:`symode.codegen.exports`, the exported functions with
plain arguments (``P`` is the generated prefix)::

    int P_z0(const double *theta, double *z0);
    int P_loss(const double *theta, const double *z0, double t0, double t1, double *loss);
    int P_forward(const double *theta, const double *z0, double t0, double t1,
                  double *z1, double *zobs, double *q);
    int P_grad(const double *theta, const double *z0, double t0, double t1, double *loss,
               double *dtheta, double *dz0, double *dt0, double *dt1);
    int P_trajectory(const double *theta, const double *z0, double t0, double t1, double *y, double *t);
    int P_grad_batch(long n, const double *thetas, double t0, double t1, double *loss, double *dthetas);

``z0 == NULL`` means z0(θ); ``P_grad`` then returns the total dL/dθ (the z0(θ) chain included), otherwise
∂L/∂θ with z0 held fixed.  Any output pointer may be NULL (not wanted).  Every function has a ``_w`` variant
that takes a caller-provided work array of ``P_WORK_<NAME>`` doubles as its last argument (no allocation);
the plain ones allocate it with malloc.  Return value: 0 on success, -1 when the work array could not be
allocated, otherwise the failing kernel's nonzero flag (an implicit stage whose Newton iteration failed).
Results are not checked for finiteness: a blow-up gives inf or NaN silently.

Memory: the forward states and residuals of every step are stored when they fit in ``budget`` doubles;
otherwise states are stored every K steps (checkpoints) and each block of K steps is recomputed from its
checkpoint during the reverse pass (two forward passes and one reverse pass, memory ~(N/K + K) states).
Recomputed states are bitwise the stored ones (the same kernel on the same inputs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from symode.casadi.translate import nearest_double
from symode.codegen.exports import exports_text

__all__ = ["DriverSpec", "driver_text", "checkpoint_interval", "work_doubles", "DEFAULT_BUDGET_DOUBLES"]

#: Default memory budget of the stored forward pass: 2^25 doubles (256 MiB).
DEFAULT_BUDGET_DOUBLES = 2 ** 25


@dataclass(frozen=True)
class DriverSpec:
    """What the driver needs to know: sizes, the segment table and the kernels' C names and work sizes."""

    prefix: str
    nz: int
    np: int
    naug: int
    nres: int
    segments: tuple   # (start Fraction | None, end Fraction | None, obs index | None)
    counts: tuple     # steps per segment
    has_terminal: bool
    has_running: bool
    obs0: int | None  # an observation at t0: evaluated on z0 (the solve starts at that fixed time)
    kernels: dict     # word -> C name of the kernel (fstep, bstep, z0, z0vjp, term, obs0..)
    work: dict        # word -> {"arg", "res", "iw", "w"}
    interval: int     # checkpoint interval K (K >= N: everything stored)
    rows: dict = None    # word (obs<i>, term, z0vjp) -> θ indices of its θ-derivative output (sweep.TermKernels)
    step_text: str = ""  # C of P_prepare/P_fwd/P_bwd when the step is not CasADi's fstep/bstep (codegen.dense)
    wt: int = 0          # doubles that P_prepare fills once per call (c->wt: a dense step's transposed weights)
    scratch: int = 0     # doubles of scratch the step kernels need in the kernel work area (c->w)

    @property
    def steps(self) -> int:
        return sum(self.counts)

    @property
    def npad(self) -> int:
        return max(self.np, 1)

    @property
    def nobs(self) -> int:
        return sum(1 for s in self.segments if s[2] is not None) + (self.obs0 is not None)


def checkpoint_interval(steps: int, naug: int, nres: int, checkpoints: int | None,
                        budget: int = DEFAULT_BUDGET_DOUBLES) -> int:
    """K, the number of steps between stored states.  ``checkpoints`` (the number of stored states) chooses
    K = ceil(steps / checkpoints); None stores everything when (steps + 1) naug + steps nres doubles fit in
    ``budget``, else K = ceil(sqrt(steps)) (memory ~2 sqrt(steps) states)."""
    if checkpoints is not None:
        return max(1, math.ceil(steps / checkpoints))
    if (steps + 1) * naug + steps * nres <= budget:
        return steps
    return max(1, math.ceil(math.sqrt(steps)))


def work_doubles(d: DriverSpec) -> int:
    """Doubles in the work array of the ``_w`` functions (``P_WORK``)."""
    return _layout_sizes(d)["total"]


def _c(x: float) -> str:
    text = repr(float(x))
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"non-finite constant {text}")
    return text


def _layout_sizes(d: DriverSpec) -> dict:
    """Offsets (in doubles) of the driver's work areas; see :func:`driver_text`."""
    N, K = d.steps, min(d.interval, d.steps)
    nblk = -(-N // K)
    stored_states = K + 1 if K < N else N + 1
    sizes = {
        "kw": max(max(w["w"] for w in d.work.values()), d.scratch, 1),   # kernel scratch
        "wt": d.wt,                                             # P_prepare's per-call data
        "Y": stored_states * d.naug,                            # states of one block (all when K >= N)
        "R": max(K * d.nres, 1),                                # residuals of one block
        "C": (nblk * d.naug) if K < N else 0,                   # checkpoints
        "T": N, "H": N,                                         # step start times and sizes
        "y0": d.naug, "ye": d.naug, "yb": d.naug, "yb2": d.naug, "pb": d.npad, "pc": d.npad,
        "lz": (d.nobs + 1) * d.nz, "lp": (d.nobs + 1) * d.npad, "ll": d.nobs + 1,
    }
    off, out = 0, {}
    for key, n in sizes.items():
        out[key] = off
        off += n
    out["total"] = off
    return out


def driver_text(d: DriverSpec) -> str:
    """The driver's C source (appended after CasADi's generated code in the same translation unit)."""
    # Long: most of the body is one C template (tables, context, helper functions) that reads best whole.
    P = d.prefix
    lay = _layout_sizes(d)
    N, K = d.steps, min(d.interval, d.steps)
    maxarg = max(w["arg"] for w in d.work.values())
    maxres = max(w["res"] for w in d.work.values())
    maxiw = max(max(w["iw"] for w in d.work.values()), 1)
    seg_n = ", ".join(str(n) for n in d.counts)
    seg_a_in = ", ".join("1" if s is None else "0" for s, _, _ in d.segments)
    seg_b_in = ", ".join("1" if e is None else "0" for _, e, _ in d.segments)
    seg_a = ", ".join("0.0" if s is None else _c(nearest_double(s)) for s, _, _ in d.segments)
    seg_b = ", ".join("0.0" if e is None else _c(nearest_double(e)) for _, e, _ in d.segments)
    seg_obs = ", ".join("-1" if o is None else str(o) for _, _, o in d.segments)
    nseg = len(d.segments)
    k = d.kernels
    words = [f"obs{i}" for i in range(d.nobs)] + ["term"]
    counts = [len(d.rows[w]) for w in words]
    offs = [sum(counts[:i]) for i in range(len(words))]
    idx = [r for w in words for r in d.rows[w]] or [0]
    z0idx = list(d.rows["z0vjp"]) or [0]
    obs_calls = "\n".join(
        f"    case {i}: return {k[f'obs{i}']}(arg, res, iw, w, 0);" for i in range(d.nobs))
    lines = []
    add = lines.append
    add(f"""
/* ---------------------------------------------------------------------------------------------------
 * symode one-sweep driver and flat C API (see {P}.h).  Everything below is symode's own code; the
 * kernels above are CasADi's.
 * ------------------------------------------------------------------------------------------------- */
#include <stdlib.h>

#define {P}_NSEG {nseg}
#define {P}_NAUG {d.naug}
#define {P}_NRES {d.nres}
#define {P}_NPAD {d.npad}
#define {P}_K {K}
#define {P}_MAXARG {maxarg}
#define {P}_MAXRES {maxres}
#define {P}_MAXIW {maxiw}

static const long {P}_seg_n[{nseg}] = {{{seg_n}}};
static const int {P}_seg_a_is_t0[{nseg}] = {{{seg_a_in}}};
static const int {P}_seg_b_is_t1[{nseg}] = {{{seg_b_in}}};
static const double {P}_seg_a[{nseg}] = {{{seg_a}}};
static const double {P}_seg_b[{nseg}] = {{{seg_b}}};
static const int {P}_seg_obs[{nseg}] = {{{seg_obs}}};
/* the entries of each loss term's dl/dtheta output (observation i, then the terminal term) and of dz0/dtheta^T lam:
 * their theta indices (a loss that does not depend on theta has none) */
static const long {P}_lp_n[{d.nobs + 1}] = {{{", ".join(map(str, counts))}}};
static const long {P}_lp_off[{d.nobs + 1}] = {{{", ".join(map(str, offs))}}};
static const long {P}_lp_idx[{len(idx)}] = {{{", ".join(map(str, idx))}}};
static const long {P}_z0_n = {len(d.rows["z0vjp"])};
static const long {P}_z0_idx[{len(z0idx)}] = {{{", ".join(map(str, z0idx))}}};

/* pb[rows of loss term o] += v (o = {d.nobs}: the terminal term) */
static void {P}_add_lp(double *pb, const double *v, int o) {{
  long f;
  for (f = 0; f < {P}_lp_n[o]; ++f) pb[{P}_lp_idx[{P}_lp_off[o] + f]] = pb[{P}_lp_idx[{P}_lp_off[o] + f]] + v[f];
}}

typedef struct {{
  const casadi_real *arg[{P}_MAXARG];
  casadi_real *res[{P}_MAXRES];
  casadi_int iw[{P}_MAXIW];
  double *w;
  double *wt;
}} {P}_ctx;

static int {P}_obs_kernel(int i, const casadi_real **arg, casadi_real **res, casadi_int *iw, casadi_real *w) {{
  switch (i) {{
{obs_calls}
    default: return 1;
  }}
}}

/* step start times T[i] and sizes H[i] of all N steps: t = a + (b - a) * (j / n), h = (b - a) / n */
static void {P}_grid(double t0, double t1, double *T, double *H) {{
  long i = 0, j;
  int s;
  for (s = 0; s < {P}_NSEG; ++s) {{
    double a = {P}_seg_a_is_t0[s] ? t0 : {P}_seg_a[s];
    double b = {P}_seg_b_is_t1[s] ? t1 : {P}_seg_b[s];
    double span = b - a, n = (double){P}_seg_n[s], h = span / n;
    for (j = 0; j < {P}_seg_n[s]; ++j, ++i) {{
      T[i] = a + span * ((double)j / n);
      H[i] = h;
    }}
  }}
}}

{d.step_text or _casadi_step(P, d)}
/* loss term kernel (terminal: i < 0; observation i): l, dl/dz, dl/dp at (z, p); outputs may be NULL */
static int {P}_lterm(int i, const double *z, const double *p, double *l, double *lz, double *lp, {P}_ctx *c) {{
  c->arg[0] = z; c->arg[1] = p;
  c->res[0] = l; c->res[1] = lz; c->res[2] = lp;
  if (i < 0) return {k['term']}(c->arg, c->res, c->iw, c->w, 0);
  return {P}_obs_kernel(i, c->arg, c->res, c->iw, c->w);
}}

static int {P}_z0_into(const double *theta, double *z0, {P}_ctx *c) {{
  c->arg[0] = theta; c->res[0] = z0;
  return {k['z0']}(c->arg, c->res, c->iw, c->w, 0);
}}
""")
    add(_forward_pass(P, d))
    add(_reverse_pass(P, d, lay))
    add(exports_text(P, d, lay))
    return "".join(lines)


def _casadi_step(P: str, d: DriverSpec) -> str:
    """The driver's step kernels as calls of CasADi's generated fstep/bstep (P_prepare has nothing to do)."""
    k = d.kernels
    return f"""
static void {P}_prepare(const double *theta, {P}_ctx *c) {{ (void)theta; (void)c; }}

/* one forward step: y1, r = fstep(y, t, h, p) (r may be NULL) */
static int {P}_fwd(const double *y, double t, double h, const double *p, double *y1, double *r, {P}_ctx *c) {{
  c->arg[0] = y; c->arg[1] = &t; c->arg[2] = &h; c->arg[3] = p;
  c->res[0] = y1; c->res[1] = r;
  return {k['fstep']}(c->arg, c->res, c->iw, c->w, 0);
}}

/* one step's VJP: yb2, sc = (tbar, hbar) from yb at (y, t, h, p, r); pbar added to pb (pc: scratch) */
static int {P}_bwd(const double *y, double t, double h, const double *p, const double *r, const double *yb,
                   double *yb2, double *sc, double *pb, double *pc, {P}_ctx *c) {{
  int f;
  c->arg[0] = y; c->arg[1] = &t; c->arg[2] = &h; c->arg[3] = p; c->arg[4] = r; c->arg[5] = yb;
  c->res[0] = yb2; c->res[1] = sc; c->res[2] = sc + 1; c->res[3] = pc;
  f = {k['bstep']}(c->arg, c->res, c->iw, c->w, 0);
  if (f) return f;
  for (f = 0; f < {d.npad}; ++f) pb[f] = pb[f] + pc[f];
  return 0;
}}
"""


def _forward_pass(P: str, d: DriverSpec) -> str:
    """The forward pass: steps (storing states/residuals or checkpoints), the observation terms at segment
    ends, the terminal term and the running cost; L summed as the reference does (observations in order,
    then the terminal term, then q)."""
    run = f"  if (L) *L += y[{d.nz}];\n" if d.has_running else ""
    return f"""
/* Forward pass from y0 (naug).  mode 0: store nothing; 1: store every state into Y and residual into R;
 * 2: store every K-th state into C (checkpoints).  zobs (nz x m) and the loss terms (l, dl/dz, dl/dp per
 * observation and for the terminal term, at index m) are written where the pointers are not NULL. */
static int {P}_forward_pass(const double *theta, const double *y0, const double *T, const double *H,
                            int mode, double *Y, double *R, double *C, double *ya, double *yb,
                            double *L, double *zobs, double *ll, double *lz, double *lp, double *yend,
                            {P}_ctx *c) {{
  long i = 0, j;
  int s, f, o;
  const double *y = y0;
  double *buf[2];
  double lval = 0.0;
  buf[0] = ya; buf[1] = yb;
  if (mode == 1) {{
    for (f = 0; f < {P}_NAUG; ++f) Y[f] = y0[f];
    y = Y;
  }}
  if (L) *L = 0.0;
  o = {-1 if d.obs0 is None else d.obs0};
  if (o >= 0) {{  /* an observation at t0, on z0 */
    if (zobs) for (f = 0; f < {d.nz}; ++f) zobs[o * {d.nz} + f] = y0[f];
    if (L || lz) {{
      f = {P}_lterm(o, y0, theta, &lval, lz ? lz + o * {d.nz} : 0, lp ? lp + o * {P}_NPAD : 0, c);
      if (f) return f;
      if (ll) ll[o] = lval;
      if (L) *L += lval;
    }}
  }}
  for (s = 0; s < {P}_NSEG; ++s) {{
    for (j = 0; j < {P}_seg_n[s]; ++j, ++i) {{
      double *next;
      if (mode == 2 && i % {P}_K == 0)
        for (f = 0; f < {P}_NAUG; ++f) C[(i / {P}_K) * {P}_NAUG + f] = y[f];
      next = mode == 1 ? Y + (i + 1) * {P}_NAUG : buf[i % 2];
      f = {P}_fwd(y, T[i], H[i], theta, next, mode == 1 && R ? R + i * {P}_NRES : 0, c);
      if (f) return f;
      y = next;
    }}
    o = {P}_seg_obs[s];
    if (o >= 0) {{
      if (zobs) for (f = 0; f < {d.nz}; ++f) zobs[o * {d.nz} + f] = y[f];
      if (L || lz) {{
        f = {P}_lterm(o, y, theta, &lval, lz ? lz + o * {d.nz} : 0, lp ? lp + o * {P}_NPAD : 0, c);
        if (f) return f;
        if (ll) ll[o] = lval;
        if (L) *L += lval;
      }}
    }}
  }}
  if (L || lz) {{
    f = {P}_lterm(-1, y, theta, &lval, lz ? lz + {d.nobs} * {d.nz} : 0, lp ? lp + {d.nobs} * {P}_NPAD : 0, c);
    if (f) return f;
    if (ll) ll[{d.nobs}] = lval;
    if (L) *L += lval;
  }}
{run}  if (yend) for (f = 0; f < {P}_NAUG; ++f) yend[f] = y[f];
  return 0;
}}
"""


def _reverse_pass(P: str, d: DriverSpec, lay: dict) -> str:
    """The reverse pass; the θ̄/ā/b̄ updates mirror :func:`symode.codegen.sweep._backward` exactly."""
    q_seed = f"  yb[{d.nz}] = 1.0;\n" if d.has_running else ""
    npx = d.npad
    return f"""
/* Reverse pass; Y/R hold block blk (states from step blk*K), C the checkpoints when K < N. */
static int {P}_reverse_pass(const double *theta, const double *T, const double *H, double *Y, double *R,
                            const double *C, const double *lz, const double *lp, double *yb, double *yb2,
                            double *pb, double *pc, double *dt0, double *dt1, double *lam0, {P}_ctx *c) {{
  long N = {d.steps}, i = N - 1, j, lo, hi, m;
  int s, f, o;
  double sc[2];
  long blk_lo = N;  /* first step of the block in Y/R; N: none loaded yet */
  /* seeds: dl/dz at t1 (and 1 for the running cost), dl/dp of the terminal term */
  for (f = 0; f < {P}_NAUG; ++f) yb[f] = 0.0;
  for (f = 0; f < {d.nz}; ++f) yb[f] = lz[{d.nobs} * {d.nz} + f];
{q_seed}  for (f = 0; f < {npx}; ++f) pb[f] = 0.0;
  {P}_add_lp(pb, lp + {d.nobs} * {P}_NPAD, {d.nobs});
  if ({P}_K >= N) blk_lo = 0;
  *dt0 = 0.0; *dt1 = 0.0;
  for (s = {P}_NSEG - 1; s >= 0; --s) {{
    double n = (double){P}_seg_n[s], da = 0.0, db = 0.0;
    o = {P}_seg_obs[s];
    if (o >= 0) {{
      for (f = 0; f < {d.nz}; ++f) yb[f] = yb[f] + lz[o * {d.nz} + f];
      {P}_add_lp(pb, lp + o * {P}_NPAD, o);
    }}
    for (j = {P}_seg_n[s] - 1; j >= 0; --j, --i) {{
      double sj = (double)j / n, om = 1.0 - sj, t = T[i], h = H[i];
      double *tmp;
      if (i < blk_lo) {{  /* recompute block i / K from its checkpoint */
        blk_lo = (i / {P}_K) * {P}_K;
        hi = blk_lo + {P}_K < N ? blk_lo + {P}_K : N;
        for (f = 0; f < {P}_NAUG; ++f) Y[f] = C[(blk_lo / {P}_K) * {P}_NAUG + f];
        for (m = blk_lo; m < hi; ++m) {{
          f = {P}_fwd(Y + (m - blk_lo) * {P}_NAUG, T[m], H[m], theta, Y + (m - blk_lo + 1) * {P}_NAUG,
                      R + (m - blk_lo) * {P}_NRES, c);
          if (f) return f;
        }}
      }}
      lo = i - blk_lo;
      f = {P}_bwd(Y + lo * {P}_NAUG, t, h, theta, R + lo * {P}_NRES, yb, yb2, sc, pb, pc, c);
      if (f) return f;
      da = da + (sc[0] * om - sc[1] / n);
      db = db + (sc[0] * sj + sc[1] / n);
      tmp = yb; yb = yb2; yb2 = tmp;
    }}
    if ({P}_seg_a_is_t0[s]) *dt0 = da;
    if ({P}_seg_b_is_t1[s]) *dt1 = db;
  }}
  o = {-1 if d.obs0 is None else d.obs0};
  if (o >= 0) {{  /* the observation at t0, on z0 */
    for (f = 0; f < {d.nz}; ++f) yb[f] = yb[f] + lz[o * {d.nz} + f];
    {P}_add_lp(pb, lp + o * {P}_NPAD, o);
  }}
  for (f = 0; f < {P}_NAUG; ++f) lam0[f] = yb[f];
  return 0;
}}
"""
