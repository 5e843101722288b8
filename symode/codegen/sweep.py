"""The one-reverse-sweep discrete adjoint: its kernels (CasADi Functions) and its in-memory reference graph.

The discrete adjoint of a fixed-step solve y_{i+1} = Φ(y_i, t_i, h, θ) (one Runge-Kutta step of the
augmented state y = (z, q), q' = r the running cost; :func:`symode.casadi.solvers.step_function`) and of
L = Σ_k ℓ_k(z(τ_k), θ) + ℓ(z_N, θ) + q_N is computed in one forward and one reverse pass:

    forward:  y_0 = (z0, 0);  y_{i+1}, ρ_i = Φ(y_i, t_i, h, θ)      (stored: y_i and the residuals ρ_i)
    reverse:  ȳ_N = (∂ℓ/∂z, 1);  θ̄ = ∂ℓ/∂θ;  at an observation's node ȳ += (∂ℓ_k/∂z, 0), θ̄ += ∂ℓ_k/∂θ;
              for i = N-1 .. 0:  (ȳ_i, t̄_i, h̄_i, θ̄_i) = (∂Φ/∂(y, t, h, θ))ᵀ ȳ_{i+1}   (the step's VJP)
                                 θ̄ += θ̄_i;  ā += t̄_i (1 - s_i) - h̄_i / n;  b̄ += t̄_i s_i + h̄_i / n

with the grid of one segment [a, b] of n steps: t_i = a + (b - a) s_i, s_i = j/n (the double nearest to it),
h = (b - a)/n.  dL/dz0 = ȳ_0[:nz]; dL/dθ with z0 held fixed = θ̄; dL/dt0 = ā of the first segment (whose start
is t0), dL/dt1 = b̄ of the last one when it ends at t1 (an observation at t1 makes the solve end at that fixed
time: dL/dt1 is then undefined).  The total dL/dθ adds (∂z0/∂θ)ᵀ dL/dz0.

Residuals ρ (:func:`step_kernels`): the step's VJP needs the forward step's intermediate values.  Evaluated
as the VJP of Φ it would recompute them -- every tanh, exp, sin ... of the step a second time.  Instead the
forward kernel also outputs the values of those transcendental nodes that the VJP uses, and the VJP kernel
takes them as inputs (``casadi.graph_substitute`` replaces each such node of the VJP graph by an input
symbol): the same values, so the same numbers, without the second evaluation.  What is left to recompute
in the reverse pass is arithmetic (products, sums).  Implicit schemes (a Newton solve inside the step) use
CasADi's VJP of the step (implicit-function sensitivities) without residuals.

:func:`reference` assembles the same algorithm from the same kernels as one CasADi MX Function (mapaccum
loops, no checkpointing): the in-memory graph that the generated C driver (:mod:`symode.codegen.driver`) is
checked against, operation for operation.  Checkpointing in the driver recomputes stored states with the same
kernel and so gives the same bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import casadi

from symode.casadi.model_graphs import ModelGraphs, exact_fraction
from symode.casadi.schemes import Tableau, get_scheme
from symode.casadi.solvers import allocate_steps, step_function
from symode.casadi.translate import nearest_double

__all__ = ["Layout", "Kernels", "TermKernels", "layout", "step_kernels", "term_kernels", "reference", "RESIDUAL_OPS",
           "SWEEP_SX_LIMIT"]

#: SX operations whose value the step's VJP may reuse instead of recomputing: the library calls (tanh,
#: exp, ...).  Products, sums and divisions are cheaper to recompute than to store and load.
RESIDUAL_OPS = frozenset(getattr(casadi, f"OP_{name}") for name in (
    "TANH", "EXP", "LOG", "SIN", "COS", "TAN", "SINH", "COSH", "ASINH", "ACOSH", "ATANH", "ATAN", "ASIN",
    "ACOS", "POW", "CONSTPOW", "SQRT", "ERF", "LOG1P", "EXPM1", "ATAN2", "HYPOT"))


@dataclass(frozen=True)
class Layout:
    """The discretisation: segments (start, end as exact Fractions or None for the t0/t1 inputs, observation
    index or None) and the number of steps of each (:func:`symode.casadi.solvers.allocate_steps`)."""

    segments: tuple
    counts: tuple

    @property
    def steps(self) -> int:
        return sum(self.counts)


def layout(g: ModelGraphs, steps: int) -> Layout:
    t0n, t1n = exact_fraction(g.model.t0), exact_fraction(g.model.t1)
    ends = [Fraction(1) if end is None else (end - t0n) / (t1n - t0n) for _, end, _ in g.segments]
    return Layout(tuple(g.segments), tuple(allocate_steps(ends, steps)))


@dataclass(frozen=True)
class Kernels:
    """The per-step kernels of one (model, scheme).

    ``fstep(y[naug], t, h, p[npad]) -> (y_next[naug], r[nres])`` and
    ``bstep(y[naug], t, h, p[npad], r[nres], ybar[naug]) -> (ybar_prev[naug], tbar, hbar, pbar[npad])``;
    ``npad`` is max(np, 1) (a model without parameters gets one unused dummy parameter: CasADi 3.8.2 emits C
    that does not compile for a loop over an empty input).
    """

    fstep: casadi.Function
    bstep: casadi.Function
    nres: int
    npad: int


def _io(n: int, kind: str = "i") -> list:
    """Generated input/output names i0.. / o0.. (CasADi writes names into the C text)."""
    return [f"{kind}{j}" for j in range(n)]


def _replay(fn: casadi.Function, inputs: list, cut=None):
    """Rebuild the SX Function ``fn``'s algorithm on the SX expressions ``inputs``, instruction by
    instruction, with the same operations (simplification on the fly off, so no operation is rewritten).

    Returns (outputs, found): ``found`` lists, in instruction order, (index, value) of the instructions
    whose operation is in :data:`RESIDUAL_OPS`.  ``cut`` (instruction index -> SX) replaces such an
    instruction's value by the given expression (an input symbol) instead of computing it."""
    from symode.casadi.translate import _no_simplification

    work: dict = {}
    outs = [[None] * fn.nnz_out(i) for i in range(fn.n_out())]
    found = []
    with _no_simplification():
        for k in range(fn.n_instructions()):
            op = fn.instruction_id(k)
            arg = fn.instruction_input(k)
            res = fn.instruction_output(k)
            if op == casadi.OP_INPUT:
                work[res[0]] = inputs[arg[0]][arg[1]]
            elif op == casadi.OP_OUTPUT:
                outs[res[0]][res[1]] = work[arg[0]]
            elif op == casadi.OP_CONST:
                work[res[0]] = casadi.SX(fn.instruction_constant(k))
            else:
                if cut is not None and k in cut:
                    value = cut[k]
                elif len(arg) == 1:
                    value = casadi.SX.unary(op, work[arg[0]])
                else:
                    value = casadi.SX.binary(op, work[arg[0]], work[arg[1]])
                if op in RESIDUAL_OPS:
                    found.append((k, value))
                work[res[0]] = value
    return [casadi.vertcat(*[casadi.SX(0) if v is None else v for v in o]) if o else casadi.SX(0, 1)
            for o in outs], found


def _sx_kernels(step: casadi.Function, naug: int, npad: int, name: str):
    """fstep/bstep of an SX step with residuals (module docstring): replay the joint Function
    (y, t, h, p, ybar) -> (y1, VJP); the library-call instructions whose value does not depend on ybar are
    the residuals: fstep computes y1 and them (shared nodes, each once), bstep reads them as inputs."""
    y, t, h, p = casadi.SX.sym("y", naug), casadi.SX.sym("t"), casadi.SX.sym("h"), casadi.SX.sym("p", npad)
    ybar = casadi.SX.sym("ybar", naug)
    y1 = step(y, t, h, p)
    vjp = casadi.jtimes(y1, casadi.vertcat(y, t, h, p), ybar, True)
    joint = casadi.Function("joint", [y, t, h, p, ybar], [y1, vjp])
    (fy1, _), found = _replay(joint, [y, t, h, p, ybar])
    keep = [(k, v) for k, v in found if not casadi.depends_on(v, ybar)]
    r_out = casadi.vertcat(*[v for _, v in keep]) if keep else casadi.SX(0, 1)
    r_in = casadi.SX.sym("r", len(keep))
    (_, bvjp), _ = _replay(joint, [y, t, h, p, ybar], {k: r_in[i] for i, (k, _) in enumerate(keep)})
    fstep = casadi.Function(f"{name}_fstep", [y, t, h, p], [fy1, r_out], _io(4), _io(2, "o"))
    bstep = casadi.Function(f"{name}_bstep", [y, t, h, p, r_in, ybar],
                            [bvjp[0:naug], bvjp[naug], bvjp[naug + 1], bvjp[naug + 2:]], _io(6), _io(4, "o"))
    return fstep, bstep, len(keep)


#: The kernels expand a structured (MX) right-hand side into scalar operations up to this many SX instructions
#: of f.  Measured on P3 (D = 8, H = 64: 3,224 instructions): the scalar kernels ran 11x faster than CasADi's
#: generic sparse matrix loops (1.1 ms against 12.2 ms per gradient from C) for 3x the compile time (the C grows
#: with the expansion: 1.3 MB); beyond the limit (D = 8, H = 256: ~13,000) the C would take minutes to compile
#: and the MX kernels are kept.
SWEEP_SX_LIMIT = 5000


def _expansion(f: casadi.Function) -> float:
    """SX instructions of ``f`` expanded to scalars (inf when it cannot be expanded)."""
    try:
        return f.expand().n_instructions()
    except RuntimeError:
        return math.inf


def _mx_nodes(expr: casadi.MX) -> list:
    """The nodes of an MX graph whose operation is in :data:`RESIDUAL_OPS` (e.g. one tanh of a whole hidden
    layer), each once, in first-visit depth-first order."""
    seen, out, stack = set(), [], [expr]
    while stack:
        node = stack.pop()
        key = hash(node)
        if key in seen or node.is_symbolic() or node.is_constant():
            continue
        seen.add(key)
        if node.op() in RESIDUAL_OPS:
            out.append(node)
        stack.extend(node.dep(k) for k in range(node.n_dep() - 1, -1, -1))
    return out


def _mx_kernels(step: casadi.Function, naug: int, npad: int, name: str):
    """fstep/bstep of an MX step (module docstring): the library-call nodes of the inlined step graph that the
    VJP uses become the residuals (``casadi.graph_substitute`` swaps them for inputs in the VJP)."""
    y, t, h, p = casadi.MX.sym("y", naug), casadi.MX.sym("t"), casadi.MX.sym("h"), casadi.MX.sym("p", npad)
    ybar = casadi.MX.sym("ybar", naug)
    y1 = step.call([y, t, h, p], True, False)[0]
    vjp = casadi.jtimes(y1, casadi.vertcat(y, t, h, p), ybar, True)
    nodes = _mx_nodes(y1)
    syms = [casadi.MX.sym(f"r{k}", n.sparsity()) for k, n in enumerate(nodes)]
    sub = casadi.graph_substitute([vjp], nodes, syms)[0] if nodes else vjp
    used = [k for k in range(len(nodes)) if casadi.depends_on(sub, syms[k])]
    r_out = casadi.vertcat(*[casadi.vec(nodes[k]) for k in used]) if used else casadi.MX(0, 1)
    r_in = casadi.MX.sym("r", r_out.numel())
    parts, off = [], 0
    for k in used:
        n = nodes[k].numel()
        parts.append(casadi.reshape(r_in[off:off + n], nodes[k].size1(), nodes[k].size2()))
        off += n
    bvjp = casadi.substitute([sub], [syms[k] for k in used], parts)[0] if used else sub
    fstep = casadi.Function(f"{name}_fstep", [y, t, h, p], [y1, r_out], _io(4), _io(2, "o"))
    bstep = casadi.Function(f"{name}_bstep", [y, t, h, p, r_in, ybar],
                            [bvjp[0:naug], bvjp[naug], bvjp[naug + 1], bvjp[naug + 2:]], _io(6), _io(4, "o"))
    return fstep, bstep, r_out.numel()


def step_kernels(g: ModelGraphs, scheme, name: str) -> Kernels:
    """The forward step with its residuals and the step's VJP (see the module docstring); ``name`` prefixes
    the Functions' names (a generated identifier)."""
    tab: Tableau = get_scheme(scheme)
    naug, np_ = g.naug, g.np
    npad = max(np_, 1)
    if np_ == 0:
        ys, ts, ps = casadi.SX.sym("y", naug), casadi.SX.sym("t"), casadi.SX.sym("p", 1)
        faug = casadi.Function(f"{name}_faug", [ys, ts, ps], [g.faug(ys, ts, casadi.SX(0, 1))], _io(3),
                               _io(1, "o"))
    else:
        faug = g.faug
    # the step's kind is the solvers' decision (SX where f expands to a small scalar graph, MX for a large
    # structured one); an explicit MX step is rebuilt with f inlined so its library calls can be found
    step = step_function(faug, tab, naug, npad, name=f"{name}_step")
    if step.is_a("MXFunction") and not tab.implicit:  # matrix operations kept (a network's mtimes)
        if _expansion(faug) <= SWEEP_SX_LIMIT:  # scalar kernels run much faster (SWEEP_SX_LIMIT)
            step = step_function(faug, tab, naug, npad, name=f"{name}_step", kind=casadi.SX)
        else:
            step = step_function(faug, tab, naug, npad, name=f"{name}_step", kind=casadi.MX)
            fstep, bstep, nres = _mx_kernels(step, naug, npad, name)
            return Kernels(fstep, bstep, nres, npad)
    if step.is_a("SXFunction"):
        fstep, bstep, nres = _sx_kernels(step, naug, npad, name)
        return Kernels(fstep, bstep, nres, npad)
    # implicit schemes (MX around a rootfinder): CasADi's VJP of the step, no residuals
    y, t, h, p = casadi.MX.sym("y", naug), casadi.MX.sym("t"), casadi.MX.sym("h"), casadi.MX.sym("p", npad)
    ybar, r = casadi.MX.sym("ybar", naug), casadi.MX.sym("r", 0)
    y1 = step(y, t, h, p)
    vjp = casadi.jtimes(y1, casadi.vertcat(y, t, h, p), ybar, True)
    fstep = casadi.Function(f"{name}_fstep", [y, t, h, p], [y1, casadi.MX(0, 1)], _io(4), _io(2, "o"))
    bstep = casadi.Function(f"{name}_bstep", [y, t, h, p, r, ybar],
                            [vjp[0:naug], vjp[naug], vjp[naug + 1], vjp[naug + 2:]], _io(6), _io(4, "o"))
    return Kernels(fstep, bstep, 0, npad)


class TermKernels(dict):
    """word -> Function (:func:`term_kernels`), and ``rows``: word -> the θ indices of the entries of its
    θ-derivative output (the structurally nonzero ones, in increasing order)."""

    def __init__(self, functions: dict, rows: dict):
        super().__init__(functions)
        self.rows = dict(rows)

    def scatter(self, word: str, values, npad: int):
        """The θ-derivative output ``values`` of kernel ``word`` as a (sparse) column of length ``npad``."""
        rows = self.rows[word]
        if not rows:
            return casadi.MX(npad, 1)
        S = casadi.DM(casadi.Sparsity.triplet(npad, len(rows), list(rows), list(range(len(rows)))), 1.0)
        return casadi.mtimes(S, values)


def _compact(v, np_: int):
    """(column of the entries of the θ-column ``v`` that are not structural or constant zeros, their rows);
    at least one entry (a dummy 0 when none: CasADi 3.8.2's C for an empty output is not relied on)."""
    v = casadi.SX(v) if np_ else casadi.SX(0, 1)
    rows = tuple(r for r in v.sparsity().row() if not v[r].is_zero())
    return (casadi.vertcat(*[v[r] for r in rows]) if rows else casadi.SX.zeros(1, 1)), rows


def term_kernels(g: ModelGraphs, name: str) -> TermKernels:
    """SX kernels of z0(θ), its VJP and the loss terms, with dense outputs (a structurally zero output would
    leave the caller's array unwritten in generated C), except that θ-derivatives hold only the entries that
    can be nonzero (``rows``; a loss that does not depend on θ has none, whatever the size of θ):

        z0(p[npad]) -> z0[nz];  z0vjp(p[npad], lam[nz]) -> ((∂z0/∂θ)ᵀ lam)[rows];
        term(z[nz], p[npad]), obs<i>(z, p) -> (ℓ, (∂ℓ/∂z)ᵀ [nz], (∂ℓ/∂θ)ᵀ[rows])
    """
    nz, np_ = g.nz, g.np
    npad = max(np_, 1)
    p, z, lam = casadi.SX.sym("p", npad), casadi.SX.sym("z", nz), casadi.SX.sym("lam", nz)
    pm = p if np_ else casadi.SX(0, 1)
    z0 = casadi.densify(g.z0(pm))
    vjp, rows0 = _compact(casadi.jtimes(g.z0(pm), pm, lam, True) if np_ else None, np_)
    out = {"z0": casadi.Function(f"{name}_z0", [p], [z0], _io(1), _io(1, "o")),
           "z0vjp": casadi.Function(f"{name}_z0vjp", [p, lam], [vjp], _io(2), _io(1, "o"))}
    rows = {"z0vjp": rows0}
    for word, fn in [("term", g.terminal), *[(f"obs{i}", o) for i, o in enumerate(g.obs)]]:
        lv, lz, lp = fn(z, pm)
        lpc, rows[word] = _compact(lp, np_)
        out[word] = casadi.Function(f"{name}_{word}", [z, p], [casadi.densify(lv), casadi.densify(lz), lpc],
                                    _io(2), _io(3, "o"))
    return TermKernels(out, rows)


def reference(g: ModelGraphs, k: Kernels, terms: dict, lay: Layout, name: str) -> dict:
    """The one-sweep algorithm as CasADi MX Functions built from the same kernels, with the same grid
    arithmetic and summation order as the generated C driver (so the two agree bit for bit):

        loss(p[np], z0[nz], t0, t1) -> L
        forward(z0[nz], p[np], t0, t1) -> (z(t1)[nz], Z[nz x m] at the observation times, Q = ∫ r dt)
        grad(p[np], z0[nz], t0, t1) -> (L, dp[np] with z0 held fixed, dz0[nz], dt0, dt1)

    ``name`` prefixes the Functions' names (``<name>_loss`` ...)."""
    nz, np_, naug = g.nz, g.np, g.naug
    p = casadi.MX.sym("p", np_)
    pk = p if np_ else casadi.MX(1, 1)
    z0 = casadi.MX.sym("z0", nz)
    t0, t1 = casadi.MX.sym("t0"), casadi.MX.sym("t1")
    y = casadi.vertcat(z0, casadi.MX(naug - nz, 1))
    L = casadi.MX(0)
    stored = []  # per segment: (start states [naug x n], R, T, s, h, start, end, n, obs)
    obs_terms, zobs = {}, []
    obs0 = getattr(g, "obs0", None)
    if obs0 is not None:  # an observation at t0, on z0 (the solve starts at that fixed time)
        lo, dz, dp = terms[f"obs{obs0}"](z0, pk)
        L = L + lo
        obs_terms[obs0] = (dz, terms.scatter(f"obs{obs0}", dp, k.npad))
        zobs.append(z0)
    for (start, end, obs), n in zip(lay.segments, lay.counts):
        a = t0 if start is None else casadi.MX(nearest_double(start))
        b = t1 if end is None else casadi.MX(nearest_double(end))
        if n > 0:
            span = b - a
            hh = span / n
            s = casadi.DM([[float(j) / n for j in range(n)]])
            T = a + span * s
            Y, R = _forward(k, n)(y, T, hh, pk)
            stored.append((casadi.horzcat(y, Y[:, 0:n - 1]), R, T, s, hh, start, end, n, obs))
            y = Y[:, n - 1]
        else:  # an observation at t0: no steps
            stored.append((None, None, None, None, None, start, end, 0, obs))
        if obs is not None:
            lo, dz, dp = terms[f"obs{obs}"](y[0:nz], pk)
            L = L + lo
            obs_terms[obs] = (dz, terms.scatter(f"obs{obs}", dp, k.npad))
            zobs.append(y[0:nz])
    lT, dzT, dpT = terms["term"](y[0:nz], pk)
    dpT = terms.scatter("term", dpT, k.npad)
    L = L + lT
    Q = y[nz] if g.has_running else casadi.MX(0)
    if g.has_running:
        L = L + Q
    ins = ["i0", "i1", "i2", "i3"]
    out = {"loss": casadi.Function(f"{name}_loss", [p, z0, t0, t1], [L], ins, ["o0"]),
           "forward": casadi.Function(f"{name}_forward", [z0, p, t0, t1],
                                      [y[0:nz], casadi.horzcat(*zobs) if zobs else casadi.MX(nz, 0), Q],
                                      ins, ["o0", "o1", "o2"])}
    ybar = casadi.vertcat(dzT, casadi.MX.ones(naug - nz, 1))
    pbar = dpT
    dt0, dt1 = casadi.MX(0), casadi.MX(0)
    for Y, R, T, s, hh, start, end, n, obs in reversed(stored):
        if obs is not None:
            dz, dp = obs_terms[obs]
            ybar = casadi.vertcat(ybar[0:nz] + dz, ybar[nz:naug] if naug > nz else casadi.MX(0, 1))
            pbar = pbar + dp
        if n == 0:
            continue
        rev = list(range(n - 1, -1, -1))
        om = casadi.DM([[1.0 - float(s[0, j]) for j in rev]])
        carry = casadi.vertcat(ybar, pbar, casadi.MX(0), casadi.MX(0))
        acc = _backward(k, naug, n)(carry, Y[:, rev], T[:, rev], s[:, rev], om, R[:, rev] if k.nres else R, hh,
                                    pk, float(n))
        carry = acc[:, n - 1]
        ybar = carry[0:naug]
        pbar = carry[naug:naug + k.npad]
        if start is None:
            dt0 = carry[naug + k.npad]
        if end is None:
            dt1 = carry[naug + k.npad + 1]
    if obs0 is not None:
        dz, dp = obs_terms[obs0]
        ybar = casadi.vertcat(ybar[0:nz] + dz, ybar[nz:naug] if naug > nz else casadi.MX(0, 1))
        pbar = pbar + dp
    dp_out = pbar if np_ else casadi.MX(0, 1)
    out["grad"] = casadi.Function(f"{name}_grad", [p, z0, t0, t1], [L, dp_out, ybar[0:nz], dt0, dt1],
                                  ins, ["o0", "o1", "o2", "o3", "o4"])
    return out


def _forward(k: Kernels, n: int) -> casadi.Function:
    """n forward steps: (y0, T[1 x n], h, p) -> (Y [naug x n] the states after each step, R [nres x n])."""
    return k.fstep.mapaccum(f"{k.fstep.name()}_acc{n}", n, [0], [0])


def _backward(k: Kernels, naug: int, n: int) -> casadi.Function:
    """The reverse loop over one segment as a mapaccum of one body that applies the step's VJP and
    accumulates θ̄, ā, b̄ in the driver's order."""
    npad, nres = k.npad, k.nres
    c = casadi.MX.sym("c", naug + npad + 2)
    y, t, s, om = casadi.MX.sym("y", naug), casadi.MX.sym("t"), casadi.MX.sym("s"), casadi.MX.sym("om")
    r = casadi.MX.sym("r", nres)
    h, p, n_ = casadi.MX.sym("h"), casadi.MX.sym("p", npad), casadi.MX.sym("n")
    yb, tb, hb, pb = k.bstep(y, t, h, p, r, c[0:naug])
    pacc = c[naug:naug + npad] + pb
    da = c[naug + npad] + (tb * om - hb / n_)
    db = c[naug + npad + 1] + (tb * s + hb / n_)
    body = casadi.Function(f"{k.bstep.name()}_body", [c, y, t, s, om, r, h, p, n_],
                           [casadi.vertcat(yb, pacc, da, db)], _io(9), _io(1, "o"))
    return body.mapaccum(f"{k.bstep.name()}_acc{n}", n, [0], [0])
