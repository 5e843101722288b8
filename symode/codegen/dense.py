"""C loops for one Runge-Kutta step of a dense network and its VJP: the driver's step kernels for a model whose
right-hand side is a stack of dense layers (:func:`symode.arrays.layers.dense_stack`).

For such a model the step (:mod:`symode.codegen.sweep`'s Φ) and its VJP are written here as plain loops over
the weight matrices instead of CasADi-generated code: the C grows with the number of layers and stages, not
with the number of weights, so gcc compiles it in well under a second at any width.  The network, per stage
(layers k = 1..L, x_0 the stage input, K the stage derivative):

    a_k = W_k x_{k-1} + b_k + Wt_k t,   x_k = σ_k(a_k),   K = x_L

and its VJP for a given K̄ (ā_L = σ_L'(a_L) ⊙ K̄, then for k = L..1):

    x̄_{k-1} = W_kᵀ ā_k,   ā_{k-1} = σ_{k-1}'(a_{k-1}) ⊙ x̄_{k-1},   t̄ += Wt_k · ā_k
    W̄_k += ā_k x_{k-1}ᵀ,   b̄_k += ā_k,   W̄t_k += ā_k t

The step of an explicit tableau (A, b, c) (data, any number of stages; :mod:`symode.casadi.schemes`):

    Y_i = y + h Σ_j a_ij K_j,   K_i = net(Y_i, t + c_i h),   y1 = y + h Σ_i b_i K_i

in the same order of operations as :func:`symode.casadi.solvers.step_function`; its VJP for ȳ1:

    K̄_i = b_i h ȳ1,  h̄ = (Σ_i b_i K_i) · ȳ1,  ȳ = ȳ1;  for i = s-1 .. 0:
        (Ȳ_i, t̄_i) = net VJP at stage i for K̄_i;  ȳ += Ȳ_i;  t̄ += t̄_i;  h̄ += c_i t̄_i + (Σ_j a_ij K_j) · Ȳ_i;
        K̄_j += a_ij h Ȳ_i  (j < i)

and, once the stages' ā are known, the parameter updates of all stages at once (W̄_k += Σ_i ā_ik x_ik-1ᵀ: one
pass over W̄_k per step instead of one per stage).  Stages that reach y1 through no chain of nonzero b_i / a_ji
(dopri5's seventh) are skipped, as CasADi's graph drops them.  Residuals stored per step by the forward pass
(``r``, :attr:`DenseStep.nres` doubles): per live stage its input Y_i (unless it is y), K_i, every hidden
layer's x_k and σ_k'(a_k), and σ_L'(a_L); the reverse pass evaluates no activation function.

Memory access: the products run along contiguous rows with four independent sums (a column block of four
outputs, each summed over its inputs in order: W x from a transposed copy of W made once per call by
``P_prepare``, Wᵀā from W itself), the rank-s update along W̄'s rows; sizes are compile-time constants, so gcc
-O2 (IEEE arithmetic: nothing reassociated) keeps the sums in registers and vectorises the updates.

Activations, with the derivative CasADi's graph of the same expression gives: tanh (σ' = 1 - x²), sigmoid
1/(1 + e^-a) (σ' = e^-a x²), softplus log(1 + e^a) (σ' = e^a / (1 + e^a)), relu fmax(0, a) (σ' = 1, 0, and 0.5
at a = 0, CasADi's fmax convention; NaN propagates).  The sums run in another order than CasADi's matrix
products, so the results agree with the in-memory graph to rounding, not bit for bit (tolerance table:
``dense-vs-graph``).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import factorial

__all__ = ["DenseStep", "dense_step", "tanh_text"]


def _c(x) -> str:
    return repr(float(x))


def tanh_text() -> str:
    """C statements computing x = tanh(a) and d = 1 - x² from the double a (the module docstring says how)."""
    c = {n: _c(Fraction(1, factorial(n))) for n in range(2, 14)}
    q = (f"((({c[2]} + {c[3]} * r) + ({c[4]} + {c[5]} * r) * r2) + (({c[6]} + {c[7]} * r) + ({c[8]} + {c[9]} * r)"
         f" * r2) * r4) + ((({c[10]} + {c[11]} * r) + ({c[12]} + {c[13]} * r) * r2) * r8)")
    return ("const double w = 2.0 * fabs(a), v = w < 44.0 ? w : 44.0;\n"
            "      const double kf = v * 1.4426950408889634 + 6755399441055744.0, kd = kf - 6755399441055744.0;\n"
            "      const double r = (v - kd * 0.6931471803691238) - kd * 1.9082149292705877e-10;\n"
            "      const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;\n"
            f"      const double em = r + r2 * ({q});\n"
            "      uint64_t bits;\n      double p, u;\n"
            "      memcpy(&bits, &kf, sizeof bits);\n      bits = (bits + 1023) << 52;\n"
            "      memcpy(&p, &bits, sizeof p);\n      u = p * em + (p - 1.0);\n"
            "      x = copysign(u / (u + 2.0), a);\n      x = a == a ? x : a;\n      d = 1.0 - x * x;")


_ACT = {  # activation -> C statements computing x (value) and d (derivative) from a (all doubles)
    "tanh": tanh_text(),
    "sigmoid": "e = exp(-a); x = 1.0 / (1.0 + e); d = e * (x * x);",
    "softplus": "e = exp(a); u = 1.0 + e; x = log(u); d = e / u;",
    "relu": "x = fmax(0.0, a); d = a > 0.0 ? 1.0 : a < 0.0 ? 0.0 : a == 0.0 ? 0.5 : a;",
}
_LOCALS = {"tanh": "", "sigmoid": " double e;", "softplus": " double e, u;", "relu": ""}
#: Outputs summed together in the matrix-vector products (independent sums kept in registers).
BLOCK = 4



@dataclass(frozen=True)
class _Layer:
    n_in: int
    n_out: int
    w: int            # offset of W (row-major n_out x n_in) in θ
    b: int | None     # offset of b in θ
    tw: int | None    # offset of the time weight in θ
    act: str | None
    wt: int           # offset of Wᵀ in the transposed-weights area
    x: int | None     # offset of x_k in a stage's hidden block (None: the last layer, x_L = K)
    d: int | None     # offset of σ'(a_k) in the hidden block (None: no activation)


@dataclass(frozen=True)
class DenseStep:
    """The C text of the dense step kernels and the sizes the driver needs (see the module docstring)."""

    text: str
    nres: int      # residual doubles per step
    scratch: int   # doubles of kernel scratch (the driver's kernel work area)
    wt: int        # doubles of transposed weights


def _layers(layers, offsets: dict, nz: int) -> tuple[list, int, int]:
    out, wt, hid = [], 0, 0
    for k, L in enumerate(layers):
        last = k == len(layers) - 1
        x = None if last else hid
        hid += 0 if last else L.n_out
        d = None if L.activation is None else hid
        hid += 0 if L.activation is None else L.n_out
        out.append(_Layer(L.n_in, L.n_out, offsets[L.weight], None if L.bias is None else offsets[L.bias],
                          None if L.time_weight is None else offsets[L.time_weight], L.activation, wt, x, d))
        wt += L.n_in * L.n_out
    if out[0].n_in != nz or out[-1].n_out != nz:
        raise ValueError("internal: a dense stack maps the state to its derivative")  # pragma: no cover
    return out, wt, hid


def _live(A, b) -> list[bool]:
    """Stages whose K reaches y1 (b_i != 0, or a_ji != 0 for a live later stage j)."""
    s = len(b)
    live = [False] * s
    for i in range(s - 1, -1, -1):
        live[i] = b[i] != 0.0 or any(live[j] and A[j][i] != 0.0 for j in range(i + 1, s))
    return live


def _combo(coeffs, K: list[str]) -> str:
    """Σ_j coeffs[j] * K_j[f] over the nonzero coefficients, left to right (step_function's order)."""
    return " + ".join(f"{_c(a)} * {K[j]}[f]" for j, a in enumerate(coeffs) if a != 0.0 and j < len(K))


def _mvt(M: str, rows: int, cols: int, x: str, y: str, init) -> str:
    """C for y[c] = init(c) + Σ_r M[r * cols + c] x[r] (c < cols; each sum in the order of r), in column
    blocks of :data:`BLOCK` whose sums stay in registers.  ``init`` maps a C index expression to C."""
    full = cols // BLOCK * BLOCK
    out = []
    if full:
        q = range(BLOCK)
        inits = ", ".join(f"a{j} = " + init(f"c + {j}") for j in q)
        out.append(f"    for (c = 0; c < {full}; c += {BLOCK}) {{\n      double {inits};\n"
                   f"      for (r = 0; r < {rows}; ++r) {{\n        const double xr = {x}[r];\n"
                   f"        const double *restrict m = {M} + r * {cols} + c;\n"
                   f"        {' '.join(f'a{j} += m[{j}] * xr;' for j in q)}\n      }}\n"
                   f"      {' '.join(f'{y}[c + {j}] = a{j};' for j in q)}\n    }}\n")
    if full < cols:
        out.append(f"    for (c = {full}; c < {cols}; ++c) {{\n      double a0 = {init('c')};\n"
                   f"      for (r = 0; r < {rows}; ++r) a0 += {M}[r * {cols} + c] * {x}[r];\n"
                   f"      {y}[c] = a0;\n    }}\n")
    return "".join(out)


def _net(P: str, lay: list, has_time: bool) -> str:
    """P_d_net(x0, t, θ, Wᵀ, K, hidden): the forward network of one stage."""
    body = []
    for k, L in enumerate(lay):
        src = "x0" if k == 0 else f"hid + {lay[k - 1].x}"
        dst = "k" if L.x is None else f"hid + {L.x}"

        def init(c, L=L):
            v = f"th[{L.b} + {c}]" if L.b is not None else "0.0"
            return v + (f" + th[{L.tw} + {c}] * t" if L.tw is not None else "")
        act = ""
        if L.act is not None:
            act = (f"    double *restrict dv = hid + {L.d};\n"
                   f"    for (c = 0; c < {L.n_out}; ++c) {{\n      const double a = o[c];\n"
                   f"      double x, d;{_LOCALS[L.act]}\n"
                   f"      {_ACT[L.act]}\n      o[c] = x; dv[c] = d;\n    }}\n")
        body.append(f"  {{  /* layer {k + 1}: {L.n_out} x {L.n_in} */\n    const double *restrict xi = {src};\n"
                    f"    double *restrict o = {dst};\n"
                    + _mvt(f"(wt + {L.wt})", L.n_in, L.n_out, "xi", "o", init) + act + "  }\n")
    tparam = "double t" if has_time else "double t_unused"
    return (f"static void {P}_d_net(const double *restrict x0, {tparam}, const double *restrict th, "
            f"const double *restrict wt, double *restrict k, double *restrict hid) {{\n  int c, r;\n"
            + ("" if has_time else "  (void)t_unused;\n") + "".join(body) + "}\n")


def _netb(P: str, lay: list, has_time: bool, abase: list) -> str:
    """P_d_netb(θ, hidden, K̄, x̄0, ā) -> t̄: the VJP of one stage's network back to its input, writing each
    layer's ā (``abase[k]``: offset of layer k's in ``ab``; the last layer's is K̄ itself without activation)."""
    last = lay[-1]
    body = []
    if last.d is not None:
        body.append(f"  for (c = 0; c < {last.n_out}; ++c) ab[{abase[-1]} + c] = kb[c] * hid[{last.d} + c];\n")
    for k in range(len(lay) - 1, -1, -1):
        L = lay[k]
        a = f"(ab + {abase[k]})" if (k < len(lay) - 1 or last.d is not None) else "kb"
        if L.tw is not None:
            body.append(f"  for (c = 0; c < {L.n_out}; ++c) tb += th[{L.tw} + c] * {a}[c];\n")
        xb = "x0b" if k == 0 else f"(ab + {abase[k - 1]})"
        body.append(f"  {{  /* layer {k + 1}: xbar = W^T abar */\n" + _mvt(f"(th + {L.w})", L.n_out, L.n_in, a, xb,
                                                                   lambda c: "0.0"))
        if k > 0 and lay[k - 1].d is not None:
            body.append(f"    for (c = 0; c < {L.n_in}; ++c) {xb}[c] = {xb}[c] * hid[{lay[k - 1].d} + c];\n")
        body.append("  }\n")
    return (f"static double {P}_d_netb(const double *restrict th, const double *restrict hid, "
            f"const double *restrict kb, double *restrict x0b, double *restrict ab) {{\n  int c, r;\n"
            f"  double tb = 0.0;\n" + "".join(body) + "  return tb;\n}\n")


def _update(lay: list, stages: list, X: dict, Aname: dict, T: dict) -> str:
    """θ̄ += the parameter updates of all ``stages`` of one step (rank-s update of each W̄)."""
    out = []
    for k, L in enumerate(lay):
        a = [Aname[(i, k)] for i in stages]
        x = [X[(i, k)] for i in stages]
        decl = " ".join(f"const double a{q} = {a[q]}[i];" for q in range(len(stages)))
        part = [f"  for (i = 0; i < {L.n_out}; ++i) {{  /* layer {k + 1} */\n    {decl}\n"
                f"    double *restrict g = pb + {L.w} + i * {L.n_in};\n"]
        if L.b is not None:
            part.append(f"    pb[{L.b} + i] += {' + '.join(f'a{q}' for q in range(len(stages)))};\n")
        if L.tw is not None:
            part.append(f"    pb[{L.tw} + i] += {' + '.join(f'a{q} * {T[i]}' for q, i in enumerate(stages))};\n")
        part.append(f"    for (j = 0; j < {L.n_in}; ++j) g[j] += "
                    f"{' + '.join(f'a{q} * {x[q]}[j]' for q in range(len(stages)))};\n  }}\n")
        out.append("".join(part))
    return "".join(out)


def dense_step(P: str, layers, offsets: dict, nz: int, tableau) -> DenseStep:
    """The dense step kernels of ``layers`` (:class:`~symode.arrays.layers.DenseLayer`, first first; ``offsets``
    maps each parameter group to its offset in θ) for the explicit ``tableau`` (a
    :class:`~symode.casadi.schemes.Tableau`), with C names prefixed ``P``; also the driver's wrappers
    ``P_prepare``, ``P_fwd`` and ``P_bwd`` (see :mod:`symode.codegen.driver`)."""
    # Long: the step and its VJP are one C template each, read best whole.
    if tableau.implicit:
        raise ValueError("internal: dense step kernels are for explicit tableaux")  # pragma: no cover
    A, b, c = tableau.as_floats()
    s = len(b)
    lay, nwt, nhid = _layers(layers, offsets, nz)
    has_time = any(L.tw is not None for L in lay)
    live = _live(A, b)
    stages = [i for i in range(s) if live[i]]
    # a stage's residual block: [Y (if A's row is not zero)] [K] [hidden]
    base, Y, K, H = 0, {}, {}, {}
    for i in stages:
        if any(A[i][j] != 0.0 for j in range(i)):
            Y[i], base = base, base + nz
        K[i], base = base, base + nz
        H[i], base = base, base + nhid
    nres = base
    Kv = [f"K{i}" for i in range(s)]
    kdecl = "".join(f"  const double *restrict K{i} = r + {K[i]};\n" for i in stages)
    T = {i: "t" if c[i] == 0.0 else f"(t + {_c(c[i])} * h)" for i in range(s)}
    fwd = []
    for i in stages:
        x0 = "y"
        if i in Y:
            fwd.append(f"  for (f = 0; f < {nz}; ++f) r[{Y[i]} + f] = y[f] + h * ({_combo(A[i][:i], Kv)});\n")
            x0 = f"r + {Y[i]}"
        fwd.append(f"  {P}_d_net({x0}, {T[i]}, th, wt, r + {K[i]}, r + {H[i]});\n")
    fwd_text = (f"static void {P}_d_fwd(const double *restrict y, double t, double h, const double *restrict th, "
                f"const double *restrict wt, double *restrict y1, double *restrict r) {{\n  int f;\n"
                + kdecl.replace("const double *restrict", "const double *") + "".join(fwd)
                + f"  for (f = 0; f < {nz}; ++f) y1[f] = y[f] + h * ({_combo(b, Kv)});\n}}\n")
    # reverse scratch: kb (s x nz), ys (nz), then per live stage the ā of every layer that needs storage
    widths = [L.n_out for L in lay]
    abase = [sum(widths[:k]) for k in range(len(lay))]
    nab = sum(widths)
    aoff = {i: s * nz + nz + q * nab for q, i in enumerate(stages)}
    Aname, X = {}, {}
    for i in stages:
        for k, L in enumerate(lay):
            own = k < len(lay) - 1 or L.d is not None
            Aname[(i, k)] = f"(s + {aoff[i] + abase[k]})" if own else f"(kb + {i * nz})"
            X[(i, k)] = (f"(r + {Y[i]})" if i in Y else "y") if k == 0 else f"(r + {H[i] + lay[k - 1].x})"
    bwd = [f"  for (f = 0; f < {nz}; ++f) {{\n    const double g = h * yb1[f];\n"
           f"    hbar += ({_combo(b, Kv)}) * yb1[f];\n"]
    bwd += [f"    kb[{i * nz} + f] = {f'{_c(b[i])} * g' if b[i] != 0.0 else '0.0'};\n" for i in stages]
    bwd.append("    yb[f] = yb1[f];\n  }\n")
    for i in reversed(stages):
        call = f"{P}_d_netb(th, r + {H[i]}, kb + {i * nz}, ys, s + {aoff[i]})"
        if has_time:
            bwd.append(f"  ts = {call};\n  tbar += ts;\n" + (f"  hbar += {_c(c[i])} * ts;\n" if c[i] != 0.0 else ""))
        else:
            bwd.append(f"  {call};\n")
        if i in Y:
            upd = "".join(f"    kb[{j * nz} + f] += {_c(A[i][j])} * g;\n" for j in range(i) if A[i][j] != 0.0)
            bwd.append(f"  for (f = 0; f < {nz}; ++f) {{\n    const double g = h * ys[f];\n"
                       f"    hbar += ({_combo(A[i][:i], Kv)}) * ys[f];\n{upd}    yb[f] += ys[f];\n  }}\n")
        else:
            bwd.append(f"  for (f = 0; f < {nz}; ++f) yb[f] += ys[f];\n")
    bwd_text = (f"static void {P}_d_bwd(const double *restrict y, double t, double h, const double *restrict th, "
                f"const double *restrict r, const double *restrict yb1, double *restrict yb, double *tb, "
                f"double *hb, double *restrict pb, double *restrict s) {{\n  int f, i, j;\n"
                f"  double hbar = 0.0, tbar = 0.0{', ts' if has_time else ''};\n{kdecl}"
                f"  double *restrict kb = s, *restrict ys = s + {s * nz};\n"
                + "".join(bwd) + _update(lay, stages, X, Aname, T) + "  *tb = tbar;\n  *hb = hbar;\n}\n")
    transpose = "".join(f"  for (i = 0; i < {L.n_out}; ++i)\n    for (j = 0; j < {L.n_in}; ++j) "
                        f"c->wt[{L.wt} + j * {L.n_out} + i] = theta[{L.w} + i * {L.n_in} + j];\n" for L in lay)
    wrappers = f"""
/* the driver's step kernels (the dense loops above): transposed weights once per call, then steps */
static void {P}_prepare(const double *theta, {P}_ctx *c) {{
  int i, j;
{transpose}}}

static int {P}_fwd(const double *y, double t, double h, const double *p, double *y1, double *r, {P}_ctx *c) {{
  {P}_d_fwd(y, t, h, p, c->wt, y1, r ? r : c->w);
  return 0;
}}

static int {P}_bwd(const double *y, double t, double h, const double *p, const double *r, const double *yb,
                   double *yb2, double *sc, double *pb, double *pc, {P}_ctx *c) {{
  (void)pc;
  {P}_d_bwd(y, t, h, p, r, yb, yb2, sc, sc + 1, pb, c->w);
  return 0;
}}
"""
    text = ("\n/* dense network step kernels (symode.codegen.dense) */\n#include <stdint.h>\n#include <string.h>\n\n"
            + _net(P, lay, has_time) + "\n"
            + _netb(P, lay, has_time, abase) + "\n" + fwd_text + "\n" + bwd_text + wrappers)
    scratch = max(nres, s * nz + nz + len(stages) * nab)
    return DenseStep(text, nres, scratch, nwt)
