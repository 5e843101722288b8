"""Network models in derivation documents: the model from a ```` ```spec ```` block, claims in matrix form.

A document may declare its model as a spec does, in a fenced ``spec`` block holding the TOML of a spec file
(``[network]``, vector and matrix parameters, ``[defs]``, the loss, the values; README "spec" section).  The
document then knows, besides the scalar names of the spec's elements (``z_0``, ``W1_0_1``), the arrays:

* the spec's vectors and matrices (``z``, ``W1``, ``b1``, ...) and its named terms (``a1``, ``h1``);
* ``lambda_z`` (the adjoint of the state z, shaped like it) and ``mu_W1`` (the parameter quadrature of W1);
* ``z(T)``, ``lambda_z(T)``: their values along the solution at time T;
* ``dL/dW1`` (shaped like W1), ``dL/dz0`` (the initial state of z, a free input), and the rates
  ``dz/dt``, ``dlambda_z/dt``, ``dmu_W1/dt`` of the matrix-form derivation (``derive(model).matrix``:
  -(∂f/∂z)ᵀλ = -W1ᵀ(σ'(a1) ⊙ W2ᵀλ), -(∂f/∂W1)ᵀλ = -(σ'(a1) ⊙ W2ᵀλ) zᵀ, ...).

Array expressions use numpy's meanings (``@`` the matrix product, ``* + -`` element-wise, ``[a, b]`` a column)
and two more functions: ``transpose(x)`` and ``dtanh``, ``dsigmoid``, ``dsoftplus``, ``drelu`` (σ' element-wise).
A claim whose sides are arrays is checked element by element (each element as a scalar claim, with every step
of the scalar checks) and is TRUE when every element is, FALSE when one is.
"""
from __future__ import annotations

import sympy

from ..arrays import node as N
from ..arrays.algebra import ArrayAlgebra
from ..errors import SpecError, VerificationError

#: σ' of each activation, as a claim function name -> the activation.
DERIVATIVES = {"d" + a: a for a in ("tanh", "sigmoid", "softplus", "relu")}


class VerifyAlgebra(ArrayAlgebra):
    """The spec's array algebra with ``transpose`` and the activations' derivatives."""

    functions = ArrayAlgebra.functions | {"transpose"} | set(DERIVATIVES)

    def call(self, name: str, x):
        if name == "transpose":
            return _plain(N.transpose(x)) if isinstance(x, N.Node) else x
        if name in DERIVATIVES:
            return _plain(N.dfunc(DERIVATIVES[name], x))
        return super().call(name, x)


def _plain(value):
    return value.attr if isinstance(value, N.Node) and value.op == "scalar" else value


def as_matrix(value) -> sympy.Matrix:
    """The SymPy matrix of an array (a 1x1 matrix for a scalar)."""
    return N.expand(value) if isinstance(value, N.Node) else sympy.Matrix([[sympy.sympify(value)]])


def literal(matrix: sympy.Matrix, name: str):
    """An array node whose elements are the given expressions (a scalar for a 1x1 matrix)."""
    r, c = matrix.shape
    if (r, c) == (1, 1):
        return matrix[0, 0]
    return N.leaf(N.Group(name, "value", (r,) if c == 1 else (r, c), tuple(matrix)))


def elementwise(value, fn, name: str):
    """``fn`` applied to every element of ``value`` (an array or a scalar)."""
    if isinstance(value, N.Node):
        return literal(as_matrix(value).applyfunc(fn), name)
    return fn(value)


def declare_spec(env, text: str, line: int, problems: list, Problem) -> None:
    """The document's model from a spec block: its scalar names, arrays, model lines and values."""
    from ..spec import load_spec
    where = f"{env.path}:{line}"
    clash = [k for k in ("time", "states", "params") if any(v == k for v in env.kinds.values())]
    if env.spec_model is not None or clash or env.ode or env.interval is not None:
        problems.append(Problem(env.path, line, "```spec", f"{where}: a ```spec block declares the whole model: "
                                                          f"give one, and no 'time:', 'states:', 'params:', "
                                                          f"'ode:' or 'interval:' lines besides it"))
        return
    try:
        M = load_spec(text, source=where)
    except SpecError as exc:
        problems.append(Problem(env.path, line, "```spec", f"{where}: the spec is invalid: {exc}"))
        return
    t0, t1 = sympy.Symbol("t0", real=True), sympy.Symbol("t1", real=True)
    names = [M.t.name, "t0", "t1", *(s.name for s in M.states), *(p.name for p in M.params)]
    taken = [n for n in names if env.known(n)]
    if taken:
        problems.append(Problem(env.path, line, "```spec", f"{where}: {', '.join(taken)} would be declared twice "
                                                          f"(by the spec and by a ```symbols block)"))
        return
    env.spec_model = M
    env.time = M.t
    for sym, kind in [(M.t, "time"), (t0, "interval"), (t1, "interval"), *((s, "states") for s in M.states),
                      *((p, "params") for p in M.params)]:
        env.symbols[sym.name], env.kinds[sym.name], env.lines[sym.name] = sym, kind, line
    env.interval = (t0, t1)
    env.ode = {s.name: (line, f) for s, f in zip(M.states, M.rhs)}
    env.init = {s.name: (line, z0) for s, z0 in zip(M.states, M.z0)}
    env.terminal = (line, M.terminal) if M.terminal is not None else None
    env.observations = [(line, o.time, o.term) for o in M.observations]
    env.running = M.running
    env.values = {**M.param_values, t0: M.t0, t1: M.t1}
    env.value_line = line
    if M.structure is not None:
        for g in M.structure.groups:
            if g.is_array:
                env.arrays[g.name] = N.leaf(g)
                env.array_groups[g.name] = g
        for name, node in M.structure.defs:
            if isinstance(node, N.Node) and not env.known(name):
                env.arrays[name] = node


def derived_arrays(env) -> None:
    """After the model is built: the adjoint and quadrature arrays (``lambda_z``, ``mu_W1``)."""
    for g in list(env.array_groups.values()):
        prefix = "lambda" if g.kind == "state" else "mu"
        name = f"{prefix}_{g.name}"
        els = [env.symbols.get(f"{prefix}_{e.name}") for e in g.elements]
        if None in els or env.known(name) or name in env.arrays:
            continue
        group = N.Group(name, "adjoint" if prefix == "lambda" else "quadrature", g.dims, tuple(els))
        env.arrays[name] = N.leaf(group)
        env.array_groups[name] = group


def solution_array(env, name: str, T, after: bool):
    """``name(T)`` for an array of the model (its elements' solution values)."""
    model = env.model
    g = env.array_groups[name]
    fns = model.fn_after if after else model.fn
    return literal(sympy.Matrix(g.shape[0], g.shape[1], [fns[e.name](T) for e in g.elements]), f"{name}({T})")


def array_derivative(env, n: str, s: str, field: str):
    """``dN/dS`` where N or S is an array: the matrix-form rates, dL/dP, dL/dz0; None when neither is."""
    model = env.model
    if n == "L" and model is not None and env.symbols.get("L") is model.loss:
        g = env.array_groups.get(s) or (env.array_groups.get(s[:-1]) if s.endswith("0") else None)
        if g is None or g.kind not in ("param", "state"):
            return None
        if g.kind == "param" and s == g.name:
            return literal(g.matrix().applyfunc(lambda e: model.gradient(e.name, field)), f"dL/d{s}")
        if g.kind == "state" and s == g.name + "0":
            i0 = [z.name for z in model.states]
            return literal(g.matrix().applyfunc(lambda e: model.quantity(f"dL/d{e.name}0", "initial",
                                                                          i0.index(e.name))), f"dL/d{s}")
        return None
    if n not in env.array_groups:
        if n in env.arrays:
            raise VerificationError(f"{field}: d{n}/d{s}: derivatives of array terms are not taken; state the claim "
                                    f"with the derivative written out")
        return None
    if env.time is None or s != env.time.name or env.spec_model is None:
        raise VerificationError(f"{field}: d{n}/d{s}: of an array, only the rate d{n}/d{env.time} is derived")
    from ..symbolic.derive import derive
    M = env.spec_model
    d = derive(M).matrix
    g = env.array_groups[n]
    states = [x.name for x in d.state_groups]
    params = [p.name for p in d.param_groups]
    if g.kind == "state":
        return d.f[states.index(n)]
    if g.kind == "adjoint":
        return _renamed(d.adjoint_rhs[states.index(n[len("lambda_"):])], d, env)
    if g.kind == "quadrature":
        return _renamed(N.neg(d.param_rate[params.index(n[len("mu_"):])]), d, env)
    raise VerificationError(f"{field}: d{n}/d{s} is not derived")


def _renamed(node, d, env):
    """A node of the matrix derivation with its λ symbols as the document's (same names, asserted)."""
    for g in d.lam:
        for e in g.elements:
            if env.symbols.get(e.name) != e:
                raise VerificationError(f"the matrix derivation names an adjoint element {e.name}, which the "
                                        f"document does not have")
    return node


def split_claim(lhs, rhs, field: str) -> tuple[sympy.Matrix, sympy.Matrix]:
    """Both sides of an array claim as matrices of the same shape (a scalar side is a 1x1 matrix)."""
    L, R = as_matrix(lhs), as_matrix(rhs)
    if L.shape != R.shape:
        shape = "x".join(map(str, L.shape)), "x".join(map(str, R.shape))
        raise VerificationError(f"{field}: the left side is a {shape[0]} array and the right side a {shape[1]} one")
    return L, R


def combined(verdicts: list, shape: tuple, corrected: str = ""):
    """One verdict for a claim in matrix form from its elements' ((i, j), Verdict) pairs: FALSE when one
    element is (that element's counterexample), TRUE when every element is (by the weakest evidence among
    them: symbolic, then the oracle, then numeric), else UNDECIDED (the first reason)."""
    from .claims import Verdict
    size = f"{shape[0]}x{shape[1]}"
    for (i, j), v in verdicts:
        if v.status == "FALSE":
            v.detail = f"element [{i}, {j}] of the {size} array: {v.detail}"
            v.corrected = corrected or v.corrected
            return v
    for (i, j), v in verdicts:
        if v.status != "TRUE":
            v.detail = f"element [{i}, {j}] of the {size} array: {v.detail}"
            return v
    rank = {"symbolic": 0, "oracle": 1, "numeric": 2}
    worst = max(verdicts, key=lambda iv: rank.get(iv[1].method.split(",")[0], 3))[1]
    counts: dict = {}
    for _, v in verdicts:
        counts[v.method] = counts.get(v.method, 0) + 1
    how = ", ".join(f"{n} {m}" for m, n in counts.items())
    return Verdict("TRUE", worst.method, f"all {len(verdicts)} elements of the {size} array are TRUE ({how}); "
                                         f"the weakest: {worst.detail}", points=worst.points, digits=worst.digits)


def node_text(value) -> str:
    """An array expression in the document's syntax (``@``, ``transpose``, ``dtanh``, ...); raises
    :class:`~symode.verify.printer.Unprintable` for forms the claim grammar has no text for."""
    from .printer import Unprintable, document_syntax
    if not isinstance(value, N.Node):
        return document_syntax(value)

    def sub(n) -> str:
        text = node_text(n)
        atomic = n.op in ("leaf", "stack", "func", "dfunc", "T", "sum", "index", "broadcast") or \
            (n.op == "scalar" and n.attr.is_Atom and not (n.attr.is_Number and n.attr < 0))
        return text if atomic else f"({text})"
    op, a = value.op, value.args
    if op == "mul" and a[0].op == "scalar" and a[0].attr == -1:
        rest = a[1:]
        return "-" + (sub(rest[0]) if len(rest) == 1 else "*".join(sub(x) for x in rest))
    if op == "leaf":
        if value.attr.kind == "value":
            raise Unprintable("an array of computed elements")
        return value.attr.name
    if op == "scalar":
        return document_syntax(value.attr)
    if op in ("add", "mul"):
        return (" + " if op == "add" else "*").join(sub(x) for x in a)
    if op == "power":
        return f"{sub(a[0])}**{document_syntax(value.attr)}"
    if op == "func":
        return f"{value.attr}({node_text(a[0])})"
    if op == "dfunc" and "d" + value.attr in DERIVATIVES:
        return f"d{value.attr}({node_text(a[0])})"
    if op == "matmul":
        return f"{sub(a[0])} @ {sub(a[1])}"
    if op == "T":
        return f"transpose({node_text(a[0])})"
    if op == "sum":
        return f"sum({node_text(a[0])})"
    if op == "index":
        return f"{sub(a[0])}[{value.attr[0]}, {value.attr[1]}]"
    if op == "stack":
        return "[" + ", ".join(node_text(x) for x in a) + "]"
    if op == "broadcast":
        return node_text(a[0])
    raise Unprintable(f"the array operation {op}")


def matrix_reference(env, lhs_text: str) -> str:
    """The reference of a claim in matrix form as text of the claim grammar, for a FALSE verdict's corrected
    right-hand side: the matrix derivation's rate for ``dN/dt``, ∫ (∂f/∂P)ᵀλ dt (plus the loss's own ∂ℓ/∂P
    and z0-chain terms, in matrix form) for ``dL/dP``; "" where there is none."""
    from .grammar import DERIV_RE
    from .printer import Unprintable
    m = DERIV_RE.fullmatch(lhs_text.strip())
    if not m or env.spec_model is None:
        return ""
    n, s = m.groups()
    try:
        if n in env.array_groups:
            return node_text(array_derivative(env, n, s, "corrected"))
        g = env.array_groups.get(s)
        if n != "L" or g is None or g.kind != "param":
            return ""
        from ..symbolic.derive import derive
        d = derive(env.spec_model).matrix
        k = [p.name for p in d.param_groups].index(s)
        t0, t1, t = env.interval[0], env.interval[1], env.time
        parts = [f"integral({node_text(d.param_rate[k])}, {t}, {t0}, {t1})"]
        if not _zero(d.terminal_grads[1][k]):
            parts.append(f"at({node_text(d.terminal_grads[1][k])}, {t1})")
        for (when, _), (_, grads) in zip(d.structure.observations, d.observation_grads):
            if not _zero(grads[k]):
                parts.append(f"at({node_text(grads[k])}, {when})")
        if not _zero(d.z0_chain[k]):
            parts.append(f"at({node_text(d.z0_chain[k])}, {t0})")
        return " + ".join(parts)
    except (Unprintable, VerificationError, ValueError):
        return ""


def _zero(n) -> bool:
    return N.is_zero(n) or (n.op == "broadcast" and N.is_zero(n.args[0]))


def elements_text(matrix) -> str:
    """A column of expressions as a vector literal ``[a, b]`` of the claim grammar ("" for other shapes or
    elements without text)."""
    from .printer import Unprintable, document_syntax
    if matrix.shape[1] != 1 or matrix.shape[0] < 2:
        return ""
    try:
        return "[" + ", ".join(document_syntax(e) for e in matrix) + "]"
    except Unprintable:
        return ""
