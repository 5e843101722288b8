"""C text of the flat API's exported functions (``P_z0``, ``P_loss``, ``P_forward``, ``P_trajectory``, ``P_grad``,
``P_grad_batch``, each with its ``_w`` variant): the part of the driver (:mod:`symode.codegen.driver`, which
documents the API) that the user calls; they set up the kernel context, run the driver's passes and copy the
results out.
"""
from __future__ import annotations

__all__ = ["exports_text"]


def exports_text(P: str, d, lay: dict) -> str:
    """The exported flat API (``_w`` variants, then the allocating ones)."""
    # Long: a C template of the six exported functions; splitting it would scatter one interface.
    L = lay
    nz, npx, naug = d.nz, d.npad, d.naug
    N = d.steps
    K = min(d.interval, N)
    ck = "2" if K < N else "1"
    tot_grad = L["total"]
    return f"""
#define {P}_W(key) (work + key)

static void {P}_setup({P}_ctx *c, double *work) {{ c->w = work + {L['kw']}; c->wt = work + {L['wt']}; }}

static const double *{P}_initial(const double *theta, const double *z0, double *y0, {P}_ctx *c, int *flag) {{
  int f;
  *flag = 0;
  if (z0) {{ for (f = 0; f < {nz}; ++f) y0[f] = z0[f]; }}
  else {{ *flag = {P}_z0_into(theta, y0, c); }}
  for (f = {nz}; f < {naug}; ++f) y0[f] = 0.0;
  return y0;
}}

CASADI_SYMBOL_EXPORT int {P}_z0_w(const double *theta, double *z0, double *work) {{
  {P}_ctx c;
  {P}_setup(&c, work);
  return {P}_z0_into(theta, z0, &c);
}}

CASADI_SYMBOL_EXPORT int {P}_loss_w(const double *theta, const double *z0, double t0, double t1, double *loss,
                                   double *work) {{
  {P}_ctx c;
  int flag;
  double *y0 = work + {L['y0']}, L;
  {P}_setup(&c, work);
  {P}_prepare(theta, &c);
  {P}_initial(theta, z0, y0, &c, &flag);
  if (flag) return flag;
  {P}_grid(t0, t1, work + {L['T']}, work + {L['H']});
  flag = {P}_forward_pass(theta, y0, work + {L['T']}, work + {L['H']}, 0, 0, 0, 0, work + {L['yb']},
                          work + {L['yb2']}, &L, 0, 0, 0, 0, 0, &c);
  if (!flag && loss) *loss = L;
  return flag;
}}

CASADI_SYMBOL_EXPORT int {P}_forward_w(const double *theta, const double *z0, double t0, double t1, double *z1,
                                      double *zobs, double *q, double *work) {{
  {P}_ctx c;
  int flag, f;
  double *y0 = work + {L['y0']}, *yend = work + {L['ye']};
  {P}_setup(&c, work);
  {P}_prepare(theta, &c);
  {P}_initial(theta, z0, y0, &c, &flag);
  if (flag) return flag;
  {P}_grid(t0, t1, work + {L['T']}, work + {L['H']});
  flag = {P}_forward_pass(theta, y0, work + {L['T']}, work + {L['H']}, 0, 0, 0, 0, work + {L['yb']},
                          work + {L['yb2']}, 0, zobs, 0, 0, 0, yend, &c);
  if (flag) return flag;
  if (z1) for (f = 0; f < {nz}; ++f) z1[f] = yend[f];
  if (q) *q = {f"yend[{nz}]" if d.has_running else "0.0"};
  return 0;
}}

CASADI_SYMBOL_EXPORT int {P}_trajectory_w(const double *theta, const double *z0, double t0, double t1, double *y,
                                         double *t, double *work) {{
  /* y: naug x (N + 1) states at the grid nodes (column-major), t: the N + 1 node times */
  {P}_ctx c;
  int flag;
  long i;
  double *y0 = work + {L['y0']}, *T = work + {L['T']}, *H = work + {L['H']};
  {P}_setup(&c, work);
  {P}_prepare(theta, &c);
  {P}_initial(theta, z0, y0, &c, &flag);
  if (flag) return flag;
  {P}_grid(t0, t1, T, H);
  flag = {P}_forward_pass(theta, y0, T, H, 1, y, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, &c);
  if (flag) return flag;
  if (t) {{
    for (i = 0; i < {N}; ++i) t[i] = T[i];
    t[{N}] = {P}_seg_b_is_t1[{P}_NSEG - 1] ? t1 : {P}_seg_b[{P}_NSEG - 1];
  }}
  return 0;
}}

CASADI_SYMBOL_EXPORT int {P}_grad_w(const double *theta, const double *z0, double t0, double t1, double *loss,
                                   double *dtheta, double *dz0, double *dt0, double *dt1, double *work) {{
  {P}_ctx c;
  int flag, f;
  double L, d0, d1;
  double *Y = work + {L['Y']}, *R = work + {L['R']}, *T = work + {L['T']}, *H = work + {L['H']};
  double *yb = work + {L['yb']}, *yb2 = work + {L['yb2']}, *pb = work + {L['pb']}, *pc = work + {L['pc']};
  double *y0 = work + {L['y0']}, *lam0 = work + {L['ye']};
  {P}_setup(&c, work);
  {P}_prepare(theta, &c);
  {P}_initial(theta, z0, y0, &c, &flag);
  if (flag) return flag;
  {P}_grid(t0, t1, T, H);
  flag = {P}_forward_pass(theta, y0, T, H, {ck}, Y, R, work + {L['C']}, yb, yb2, &L, 0, work + {L['ll']},
                          work + {L['lz']}, work + {L['lp']}, 0, &c);
  if (flag) return flag;
  flag = {P}_reverse_pass(theta, T, H, Y, R, work + {L['C']}, work + {L['lz']}, work + {L['lp']}, yb, yb2, pb,
                          pc, &d0, &d1, lam0, &c);
  if (flag) return flag;
  if (!z0) {{  /* total derivative: add (dz0/dtheta)^T dL/dz0 */
    c.arg[0] = theta; c.arg[1] = lam0; c.res[0] = pc;
    flag = {d.kernels['z0vjp']}(c.arg, c.res, c.iw, c.w, 0);
    if (flag) return flag;
    for (f = 0; f < {P}_z0_n; ++f) pb[{P}_z0_idx[f]] = pb[{P}_z0_idx[f]] + pc[f];
  }}
  if (loss) *loss = L;
  if (dtheta) for (f = 0; f < {d.np}; ++f) dtheta[f] = pb[f];
  if (dz0) for (f = 0; f < {nz}; ++f) dz0[f] = lam0[f];
  if (dt0) *dt0 = d0;
  if (dt1) *dt1 = d1;
  return 0;
}}

CASADI_SYMBOL_EXPORT int {P}_grad_batch_w(long n, const double *thetas, double t0, double t1, double *loss,
                                         double *dthetas, double *work) {{
  /* n parameter sets (row k: thetas[k * np ..]), z0 = z0(theta), total dL/dtheta in row k of dthetas */
  long k;
  int flag;
  for (k = 0; k < n; ++k) {{
    flag = {P}_grad_w(thetas + k * {d.np}, 0, t0, t1, loss ? loss + k : 0, dthetas ? dthetas + k * {d.np} : 0,
                      0, 0, 0, work);
    if (flag) return flag;
  }}
  return 0;
}}

""" + "".join(_allocating(P, tot_grad, name, params, call) for name, params, call in (
        ("z0", "const double *theta, double *z0", "theta, z0"),
        ("loss", "const double *theta, const double *z0, double t0, double t1, double *loss",
         "theta, z0, t0, t1, loss"),
        ("forward", "const double *theta, const double *z0, double t0, double t1, double *z1, double *zobs, "
         "double *q", "theta, z0, t0, t1, z1, zobs, q"),
        ("trajectory", "const double *theta, const double *z0, double t0, double t1, double *y, double *t",
         "theta, z0, t0, t1, y, t"),
        ("grad", "const double *theta, const double *z0, double t0, double t1, double *loss, double *dtheta, "
         "double *dz0, double *dt0, double *dt1", "theta, z0, t0, t1, loss, dtheta, dz0, dt0, dt1"),
        ("grad_batch", "long n, const double *thetas, double t0, double t1, double *loss, double *dthetas",
         "n, thetas, t0, t1, loss, dthetas")))


def _allocating(P: str, size: int, name: str, params: str, call: str) -> str:
    """The plain variant of a flat function: allocate the work array, call the _w variant, free it."""
    return f"""
CASADI_SYMBOL_EXPORT int {P}_{name}({params}) {{
  int flag;
  double *work = (double *)malloc(sizeof(double) * {size});
  if (!work) return -1;
  flag = {P}_{name}_w({call}, work);
  free(work);
  return flag;
}}
"""
