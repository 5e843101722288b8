"""SymPy expressions -> Python source for an array framework (first stage of the export: text only).

:func:`model_source` turns a :class:`~symode.model.Model` into the text of one Python module for a backend
(PyTorch or JAX, :data:`BACKENDS`), defining pure functions of float64 arrays::

    rhs(t, z, p)        dz/dt = f(z, t, θ)          z[..., j] is state j, p[k] parameter k (model order)
    z0(p)               z(t0) = z0(θ)
    terminal(z, p)      ℓ(z(t1), θ)                 (only where the model has a terminal term)
    running(t, z, p)    r(z, t, θ)                  (only where the model has a running cost)
    observation_<i>(z, p)   ℓ_i(z(t_i), θ)          (one per observation, i = 0, 1, ...)

plus the constants ``T0``, ``T1``, ``OBSERVATION_TIMES``, ``THETA`` (nominal θ), ``NZ``, ``NP`` as floats.

How an expression becomes text (a small emitter, the same table-driven walk as
:mod:`symode.casadi.translate`):

* every distinct sub-expression becomes one local ``_k = ...`` (post-order; structurally equal sub-trees are
  emitted once), so a DAG stays a DAG;
* exact numbers become the nearest double (:func:`symode.casadi.translate.nearest_double`: correctly rounded,
  never a silent 0 or inf), exactly as every float64 route in symode rounds them;
* a product with a rational coefficient p/q is ``(p * rest) / q`` (one rounding for ``x/10``, not two),
  negative integer powers go to a denominator, ``x**2`` is ``x * x``, ``x**(1/2)`` is ``sqrt``;
* functions go through the backend's module map (``torch.tanh`` / ``jnp.tanh`` ...); an operation outside
  :data:`OPERATIONS` raises :class:`~symode.errors.TranslationError` naming it, never an approximation.

User-chosen names never reach the code: states, parameters and time are addressed by index (``z[..., 0]``,
``p[1]``); names appear only in comments, and only when they are plain identifiers.  The text is a pure
function of the model and the backend (byte-deterministic; no time stamps), so it can be written to a file,
reviewed, and compiled: :func:`compile_source` executes it in a fresh namespace holding only the backend module.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import sympy

from .._version import __version__
from ..casadi.translate import nearest_double
from ..errors import TranslationError
from ..model import Model
from .emit_arrays import ARRAY_PRELUDES

__all__ = ["Backend", "BACKENDS", "OPERATIONS", "model_source", "model_module", "compile_source", "compiled_module",
           "source_hash"]

_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Backend:
    """How one array framework spells the operations the emitter needs.

    ``module`` is the import line's name (``torch`` / ``jnp``); ``functions`` maps a SymPy function class to
    the framework function; ``prelude`` defines the helpers ``_stack(values, like)`` (an array of the entries,
    broadcast together, numbers turned into arrays shaped like ``like``'s batch) and ``_scalar(v, like)``.
    """

    name: str
    import_line: str
    module: str
    functions: Mapping[type, str]
    maximum: str
    minimum: str
    where: str
    prelude: str
    #: how a leaf is read from its argument: "{v}[..., {i}]" (arrays with batch dimensions) or "{v}[{i}]"
    index: str = "{v}[..., {i}]"
    #: numbers as exact values (``_q(p, q)`` rationals, ``_K(i)`` other constants) instead of nearest doubles
    exact: bool = False


def _functions(mod: str) -> dict:
    if mod == "_d":
        return {f: f"_d.{f.__name__.lower()}" for f in (sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tan,
                                                        sympy.sinh, sympy.cosh, sympy.tanh, sympy.atan,
                                                        sympy.asinh, sympy.Abs, sympy.sign)}
    return {sympy.exp: f"{mod}.exp", sympy.log: f"{mod}.log", sympy.sin: f"{mod}.sin", sympy.cos: f"{mod}.cos",
            sympy.tan: f"{mod}.tan", sympy.sinh: f"{mod}.sinh", sympy.cosh: f"{mod}.cosh",
            sympy.tanh: f"{mod}.tanh", sympy.atan: f"{mod}.atan" if mod == "torch" else f"{mod}.arctan",
            sympy.asinh: f"{mod}.asinh" if mod == "torch" else f"{mod}.arcsinh", sympy.Abs: f"{mod}.abs",
            sympy.sign: f"{mod}.sign"}


_TORCH_PRELUDE = '''
def _as(v, like):
    if isinstance(v, torch.Tensor):
        return v
    return torch.full(like.shape[:-1], float(v), dtype=like.dtype, device=like.device)


def _stack(values, like):
    return torch.stack(torch.broadcast_tensors(*[_as(v, like) for v in values]), dim=-1)


def _scalar(v, like):
    return _as(v, like)
'''

_JAX_PRELUDE = '''
def _as(v, like):
    return jnp.broadcast_to(jnp.asarray(v, dtype=like.dtype), like.shape[:-1]) if not hasattr(v, "shape") else v


def _stack(values, like):
    return jnp.stack(jnp.broadcast_arrays(*[_as(v, like) for v in values]), axis=-1)


def _scalar(v, like):
    return _as(v, like)
'''

_EXACT_PRELUDE = '''
def _stack(values, like):
    return list(values)


def _scalar(v, like):
    return v
'''

#: The backends the export knows.  Both compute in float64 (the caller passes float64 arrays; JAX needs
#: ``jax_enable_x64``, which :mod:`symode.interop.jax_export` switches on).
BACKENDS: dict[str, Backend] = {
    "torch": Backend("torch", "import torch", "torch", _functions("torch"), "torch.maximum", "torch.minimum",
                     "torch.where", _TORCH_PRELUDE),
    "jax": Backend("jax", "import jax.numpy as jnp", "jnp", _functions("jnp"), "jnp.maximum", "jnp.minimum",
                   "jnp.where", _JAX_PRELUDE),
    # internal: exact numbers, scalar leaves, functions from a namespace ``_d`` the caller provides (the
    # high-precision discrete reference evaluates this with dual numbers over mpmath, symode.interop.discrete)
    "exact": Backend("exact", "", "_d", _functions("_d"), "_d.maximum", "_d.minimum", "_d.where",
                     _EXACT_PRELUDE, index="{v}[{i}]", exact=True),
}


class _Writer:
    """Emits the body of one function: locals for sub-expressions, leaves by index."""

    def __init__(self, backend: Backend, leaves: Mapping[sympy.Symbol, str], constants: list):
        self.b = backend
        self.leaves = dict(leaves)
        self.lines: list[str] = []
        self.memo: dict = {}
        self.constants = constants

    def number(self, value) -> str:
        if self.b.exact:
            value = sympy.sympify(value)
            if value.is_Rational:
                return f"_q({int(value.p)}, {int(value.q)})"
            if value not in self.constants:
                self.constants.append(value)
            return f"_K({self.constants.index(value)})"
        x = nearest_double(value)
        text = repr(x)
        return f"({text})" if x < 0 else text

    def local(self, code: str) -> str:
        name = f"_{len(self.lines)}"
        self.lines.append(f"    {name} = {code}")
        return name

    def emit(self, root: sympy.Expr) -> str:
        """The code naming ``root``'s value (a local, a leaf, or a number literal); iterative post-order."""
        stack = [root]
        while stack:
            node = stack[-1]
            if node in self.memo:
                stack.pop()
                continue
            children, build = _plan(node, self)
            pending = [c for c in children if c not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            self.memo[node] = build([self.memo[c] for c in children])
            stack.pop()
        return self.memo[root]


def _plan_mul(expr, w: _Writer):
    num, den, coeff = [], [], sympy.Integer(1)
    for a in expr.args:
        if a.is_Rational or isinstance(a, sympy.Float):
            coeff *= a
        elif isinstance(a, sympy.Pow) and isinstance(a.exp, sympy.Integer) and a.exp < 0:
            den.append(a.base if a.exp == -1 else sympy.Pow(a.base, -a.exp, evaluate=False))
        else:
            num.append(a)
    n = len(num)

    def build(codes):
        nums, dens = list(codes[:n]), list(codes[n:])
        pre, post = "", ""
        if isinstance(coeff, sympy.Rational) and abs(coeff.p) < 2**53 and coeff.q < 2**53:
            if coeff.p == -1:
                pre = "-"
            elif coeff.p != 1:
                nums.insert(0, w.number(coeff.p))
            if coeff.q != 1:
                dens.insert(0, w.number(coeff.q))
        else:
            nums.insert(0, w.number(coeff))
        top = " * ".join(nums) if nums else "1.0"
        code = f"{pre}{top}" if not dens else f"{pre}({top}) / ({' * '.join(dens)})"
        return w.local(code)
    return num + den, build


def _plan_pow(expr, w: _Writer):
    base, e = expr.args
    if isinstance(e, sympy.Integer):
        k = int(e)
        if k == 0:
            return (), lambda c: "1.0"
        if k == 1:
            return (base,), lambda c: c[0]
        if k == 2:
            return (base,), lambda c: w.local(f"{c[0]} * {c[0]}")
        if k == -1:
            return (base,), lambda c: w.local(f"1.0 / {c[0]}")
        return (base,), lambda c: w.local(f"{c[0]} ** {k}")
    if e == sympy.Rational(1, 2):
        return (base,), lambda c: w.local(f"{w.b.module}.sqrt({c[0]})")
    if e.is_number and w.b.exact:
        x = w.number(e)
        return (base,), lambda c: w.local(f"{w.b.module}.power({c[0]}, {x})")
    if e.is_number:
        x = w.number(e)
        return (base,), lambda c: w.local(f"{c[0]} ** {x}")
    if base is sympy.E:
        return (e,), lambda c: w.local(f"{w.b.functions[sympy.exp]}({c[0]})")
    return (base, e), lambda c: w.local(f"{c[0]} ** {c[1]}")


def _plan_add(expr, w: _Writer):
    return expr.args, lambda c: w.local(" + ".join(c))


def _plan_function(expr, w: _Writer):
    fn = w.b.functions.get(type(expr))
    if fn is None or len(expr.args) != 1:
        raise TranslationError(f"no {w.b.name} translation for {type(expr).__name__} (in {_short(expr)})")
    return expr.args, lambda c: w.local(f"{fn}({c[0]})")


def _plan_minmax(expr, w: _Writer):
    fn = w.b.maximum if isinstance(expr, sympy.Max) else w.b.minimum

    def build(c):
        acc = c[0]
        for x in c[1:]:
            acc = w.local(f"{fn}(_scalar({acc}, z_like), _scalar({x}, z_like))")
        return acc
    return expr.args, build


def _plan_heaviside(expr, w: _Writer):
    x = expr.args[0]
    h0 = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
    if not h0.is_number:
        raise TranslationError(f"no {w.b.name} translation for Heaviside with a symbolic value at 0")
    v0 = w.number(h0)
    return (x,), lambda c: w.local(f"{w.b.where}({c[0]} > 0, 1.0, {w.b.where}({c[0]} < 0, 0.0, {v0}))")


def _plan_symbol(expr, w: _Writer):
    if expr not in w.leaves:
        raise TranslationError(f"free symbol {str(expr)!r} is not an input of this function")
    return (), lambda c: w.leaves[expr]


def _plan_number(expr, w: _Writer):
    return (), lambda c: w.number(expr)


#: SymPy head -> planner (children, build).  Anything else is refused with a TranslationError.
OPERATIONS: dict[type, Callable] = {
    sympy.Add: _plan_add, sympy.Mul: _plan_mul, sympy.Pow: _plan_pow,
    sympy.Max: _plan_minmax, sympy.Min: _plan_minmax, sympy.Heaviside: _plan_heaviside,
    **{f: _plan_function for f in _functions("torch")},
}


def _plan(node, w: _Writer):
    if isinstance(node, sympy.Symbol):
        return _plan_symbol(node, w)
    if node.is_number and not isinstance(node, sympy.Function):
        return _plan_number(node, w)
    planner = OPERATIONS.get(type(node))
    if planner is None:
        name = getattr(getattr(node, "func", None), "__name__", type(node).__name__)
        raise TranslationError(f"no {w.b.name} translation for {name!r} (in {_short(node)}); supported: "
                               + ", ".join(sorted(k.__name__ for k in OPERATIONS)))
    return planner(node, w)


def _short(expr, limit: int = 80) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _comment(sym: sympy.Symbol) -> str:
    return f"  # {sym.name}" if _SAFE_NAME.match(sym.name) else ""


def _function(backend: Backend, name: str, args: str, doc: str, exprs: Sequence, leaves: dict,
              vector: bool, like: str, constants: list, model: Model | None = None) -> list[str]:
    """One ``def``: bind the leaves used, emit every expression, return a stacked vector or one scalar.

    With ``model`` (a structured model), ``exprs`` are its array values (:mod:`symode.interop.emit_arrays`):
    a vector result concatenates the flattened arrays, a scalar one is element (0, 0) of a 1x1 array."""
    w = _Writer(backend, {s: code for s, (code, _) in leaves.items()}, constants)
    if model is None:
        results = [w.emit(sympy.sympify(e)) for e in exprs]
        used = set().union(*(sympy.sympify(e).free_symbols for e in exprs)) if exprs else set()
    else:
        from .emit_arrays import array_function, scalar_symbols
        results = [array_function(w, model, e, like) for e in exprs]
        used = scalar_symbols(exprs)
    binds = [f"    {code} = {src}{_comment(s)}" for s, (code, src) in leaves.items() if s in used]
    body = [f"def {name}({args}):", f'    """{doc}"""', f"    z_like = {like}", *binds, *w.lines]
    if model is not None:
        body.append(f"    return _flatcat([{', '.join(results)}], z_like)" if vector else
                    f"    return _scalar({results[0]}[..., 0, 0], z_like)")
    elif vector:
        body.append(f"    return _stack([{', '.join(results)}], z_like)")
    else:
        body.append(f"    return _scalar({results[0]}, z_like)")
    return body


def _functions_of(model: Model, b: Backend, leaves: tuple, constants: list) -> list[list[str]]:
    """The module's functions: from the scalar form, or (a structured model, torch/JAX) from its arrays."""
    zp, p_leaves, t_leaf = leaves
    st = model.structure if b.name in ("torch", "jax") else None
    pick = (lambda arrays, scalars: arrays) if st is not None else (lambda arrays, scalars: scalars)
    kw = {"model": model} if st is not None else {}
    terminal = st.terminal if st is not None else model.terminal
    running = st.running if st is not None else model.running
    obs = ([(tm, v) for tm, v in st.observations] if st is not None else
           [(o.time, o.term) for o in model.observations])
    funcs = [_function(b, "rhs", "t, z, p", "dz/dt = f(z, t, p)", pick(st and st.rhs, model.rhs),
                       {**zp, **t_leaf}, True, "z", constants, **kw)]
    # z0 has no state argument: its batch shape is p's, so the helpers are shaped after p
    funcs.append(_function(b, "z0", "p", "z(t0) = z0(p)", pick(st and st.z0, model.z0), p_leaves, True, "p",
                           constants, **kw))
    if terminal is not None:
        funcs.append(_function(b, "terminal", "z, p", "terminal loss l(z(t1), p)", [terminal], zp, False, "z",
                               constants, **kw))
    if running is not None:
        funcs.append(_function(b, "running", "t, z, p", "running cost r(z, t, p)", [running], {**zp, **t_leaf},
                               False, "z", constants, **kw))
    for i, (time, term) in enumerate(obs):
        funcs.append(_function(b, f"observation_{i}", "z, p", f"observation term {i} at t = "
                               f"{nearest_double(time)!r}", [term], zp, False, "z", constants, **kw))
    return funcs


def model_source(model: Model, backend: str) -> str:
    """The Python module text of ``model`` for ``backend`` ("torch" or "jax"); see the module docstring."""
    return model_module(model, backend)[0]


def model_module(model: Model, backend: str) -> tuple[str, list]:
    """(module text, constants): ``constants`` lists the non-rational numbers an exact backend's ``_K(i)``
    refers to (empty for the float backends, whose numbers are literals)."""
    try:
        b = BACKENDS[backend]
    except KeyError:
        raise TranslationError(f"unknown export backend {backend!r}; choose one of {', '.join(BACKENDS)}") \
            from None
    constants: list = []
    z_leaves = {s: (f"z_{i}", b.index.format(v="z", i=i)) for i, s in enumerate(model.states)}
    p_leaves = {s: (f"p_{k}", b.index.format(v="p", i=k)) for k, s in enumerate(model.params)}
    t_leaf = {model.t: ("t_", "t")}
    zp = {**z_leaves, **p_leaves}
    arrays = model.structure is not None and b.name in ARRAY_PRELUDES
    lines = [f"# Generated by symode {__version__} from model {model.name!r} "
             f"(fingerprint {model.fingerprint()[:16]}); do not edit.",
             "# Every function takes and returns float64 arrays; see symode.interop.emit for the conventions.",
             b.import_line, "", "", b.prelude.strip("\n"), "", "",
             *([ARRAY_PRELUDES[b.name].strip("\n"), "", ""] if arrays else []),
             f"NZ = {model.nz}", f"NP = {model.np}",
             f"T0 = {nearest_double(model.t0)!r}", f"T1 = {nearest_double(model.t1)!r}",
             f"OBSERVATION_TIMES = ({''.join(repr(nearest_double(o.time)) + ', ' for o in model.observations)})",
             f"THETA = ({''.join(repr(nearest_double(v)) + ', ' for v in model.theta)})", ""]
    for f in _functions_of(model, b, (zp, p_leaves, t_leaf), constants):
        lines += f + ["", ""]
    return "\n".join(lines).rstrip("\n") + "\n", constants


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_COMPILED_LOCK = threading.Lock()
_COMPILED: dict = {}


def compiled_module(model: Model, backend: str, modules: dict) -> dict:
    """The namespace of :func:`model_source` compiled with ``modules`` (e.g. ``{"torch": torch}``), once per
    (model fingerprint, backend): the functions ``rhs``, ``z0``, ... and the constants."""
    key = (model.fingerprint(), backend)
    with _COMPILED_LOCK:
        ns = _COMPILED.get(key)
    if ns is None:
        ns = compile_source(model_source(model, backend), {**modules, "__name__": f"symode_export_{key[0][:16]}"})
        with _COMPILED_LOCK:
            _COMPILED[key] = ns
    return ns


def compile_source(text: str, namespace: dict) -> dict:
    """Execute generated module text (never user text: see the module docstring) in ``namespace``."""
    code = compile(text, f"<symode-export {source_hash(text)[:16]}>", "exec")
    exec(code, namespace)  # noqa: S102 -- the text is symode's own output, names are indices
    return namespace
