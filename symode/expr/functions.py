"""The one table of supported functions, and the registry of each backend's implementations of them.

:data:`FUNCTIONS` has one :class:`Function` per function symode knows: its name, arity, the SymPy function
that builds it, its derivative, its domain and its kinks.  The spec grammar (``parse_expression``) reads it,
and so does every backend, which registers its implementation of each function NEXT TO its own code, by
name, with :func:`register_backend`:

==========  ==========================================  ===================================================
backend     where it registers                          what it must cover
==========  ==========================================  ===================================================
``casadi``  :mod:`symode.casadi.translate`              every primitive (an entry with a SymPy ``head``)
``heyoka``  :mod:`symode.oracle.heyoka_engine`          every primitive
``taylor``  the oracle's Taylor tape                    every primitive
``mpmath``  the text evaluator of the singularity check  every function a spec may call (``grammar``)
==========  ==========================================  ===================================================

Two kinds of entry:

* a *primitive* builds a SymPy node of its own class (``head``: ``sympy.sin``, ``sympy.Abs``, ``sympy.Pow``);
  the backends that translate SymPy trees (CasADi, heyoka, the Taylor tape) implement that head;
* a *composite* (``head`` None) is built from other entries: ``sqrt(x) = x**(1/2)``,
  ``sigmoid(x) = 1/(1 + exp(-x))``, ``softplus(x) = log(1 + exp(x))``; no tree backend ever sees it, but the
  text evaluator, which reads the expression as written, does.

A backend that cannot implement a function says so with :class:`Unsupported` and the reason, and refuses it
at run time with its own error.  Adding a function is therefore one entry here and one entry per backend;
``tests/test_functions.py`` fails, naming the backend, where a backend has neither an implementation nor an
explicit refusal.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import sympy

__all__ = ["Domain", "Function", "FUNCTIONS", "ALLOWED_FUNCTIONS", "BACKEND_COVERAGE", "Unsupported",
           "register_backend", "registered", "missing_implementations", "by_head", "kink_switches"]


@dataclass(frozen=True)
class Domain:
    """Where a function is real and finite: ``interval`` in words ("(0, oo)", "[-1, 1]"), used in messages,
    and ``contains(*args)``, the exact test at a point (mpmath or exact numbers), or None where no point a
    spec can write lies outside (tan's poles pi/2 + k pi are irrational)."""

    interval: str
    contains: Callable[..., bool] | None = None


REALS = Domain("(-oo, oo)")


@dataclass(frozen=True)
class Function:
    """One supported function.

    ``name``: the name a spec calls it by (``abs``) or, for a function only derivatives produce, SymPy's
    (``sign``, ``Heaviside``, ``Max``); ``arity``: the number of arguments, None for two or more (Max, Min);
    ``sympy_function``: builds the SymPy expression from the arguments; ``head``: the SymPy class of that
    expression, None for a composite (see the module docstring); ``derivative``: the partial derivatives, one
    per argument, as SymPy's ``diff`` gives them for real arguments; ``domain``: where the function is real
    and finite; ``kinks``: the expressions whose zeros are its non-smooth points (None: smooth on its
    domain); ``grammar``: a spec may call it; ``note``: what else to know.
    """

    name: str
    arity: int | None
    sympy_function: Callable[..., sympy.Expr]
    head: type | None
    derivative: Callable[..., tuple]
    domain: Domain = REALS
    kinks: Callable[..., tuple] | None = None
    grammar: bool = False
    note: str = ""

    @property
    def primitive(self) -> bool:
        return self.head is not None


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-x))


def _softplus(x: sympy.Expr) -> sympy.Expr:
    return sympy.log(1 + sympy.exp(x))


def _first(x, *rest) -> tuple:
    """The switch of abs, sign and Heaviside: the first argument (Heaviside's second is its value at 0)."""
    return (x,)


def _pairs(*args) -> tuple:
    """The switches of Max and Min: the difference of every pair of arguments."""
    return tuple(args[i] - args[j] for i in range(len(args)) for j in range(i + 1, len(args)))


def _others(args: tuple, i: int) -> tuple:
    return args[:i] + args[i + 1:]


def _inv_sqrt(w: sympy.Expr) -> sympy.Expr:
    return 1 / sympy.sqrt(w)


_TABLE = (
    # -- the spec grammar, in the order the README lists it ------------------------------------------------
    Function("sin", 1, sympy.sin, sympy.sin, lambda x: (sympy.cos(x),), grammar=True),
    Function("cos", 1, sympy.cos, sympy.cos, lambda x: (-sympy.sin(x),), grammar=True),
    Function("tan", 1, sympy.tan, sympy.tan, lambda x: (sympy.tan(x) ** 2 + 1,),
             Domain("x != pi/2 + k*pi"), grammar=True),
    Function("exp", 1, sympy.exp, sympy.exp, lambda x: (sympy.exp(x),), grammar=True),
    Function("log", 1, sympy.log, sympy.log, lambda x: (1 / x,), Domain("(0, oo)", lambda x: x > 0),
             grammar=True),
    Function("sqrt", 1, sympy.sqrt, None, lambda x: (1 / (2 * sympy.sqrt(x)),),
             Domain("[0, oo)", lambda x: x >= 0), grammar=True, note="x**(1/2): a power"),
    Function("tanh", 1, sympy.tanh, sympy.tanh, lambda x: (1 - sympy.tanh(x) ** 2,), grammar=True),
    Function("sinh", 1, sympy.sinh, sympy.sinh, lambda x: (sympy.cosh(x),), grammar=True),
    Function("cosh", 1, sympy.cosh, sympy.cosh, lambda x: (sympy.sinh(x),), grammar=True),
    Function("atan", 1, sympy.atan, sympy.atan, lambda x: (1 / (x**2 + 1),), grammar=True),
    Function("asinh", 1, sympy.asinh, sympy.asinh, lambda x: (_inv_sqrt(x**2 + 1),), grammar=True),
    Function("sigmoid", 1, _sigmoid, None, lambda x: (sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2,), grammar=True,
             note="1/(1 + exp(-x))"),
    Function("softplus", 1, _softplus, None, lambda x: (sympy.exp(x) / (1 + sympy.exp(x)),), grammar=True,
             note="log(1 + exp(x))"),
    Function("abs", 1, sympy.Abs, sympy.Abs, lambda x: (sympy.sign(x),), kinks=_first, grammar=True,
             note="d|x|/dx = sign(x), 0 at 0 (SymPy's convention)"),
    # -- what derivatives of the grammar produce -------------------------------------------------------------
    Function("sign", 1, sympy.sign, sympy.sign, lambda x: (2 * sympy.DiracDelta(x),), kinks=_first,
             note="sign(0) = 0; derivative of abs"),
    Function("Heaviside", 1, sympy.Heaviside, sympy.Heaviside, lambda x: (sympy.DiracDelta(x),), kinks=_first,
             note="an optional second argument is the value at 0 (SymPy's H0, default 1/2); derivative of Max/Min"),
    Function("Max", None, sympy.Max, sympy.Max,
             lambda *a: tuple(sympy.Heaviside(a[i] - sympy.Max(*_others(a, i))) for i in range(len(a))),
             kinks=_pairs),
    Function("Min", None, sympy.Min, sympy.Min,
             lambda *a: tuple(sympy.Heaviside(sympy.Min(*_others(a, i)) - a[i]) for i in range(len(a))),
             kinks=_pairs),
    # -- the power operator ** -------------------------------------------------------------------------------
    Function("pow", 2, sympy.Pow, sympy.Pow, lambda x, y: (y * x ** (y - 1), x**y * sympy.log(x)),
             Domain("x > 0; x = 0 with y >= 0; x < 0 with an integer y",
                    lambda x, y: x > 0 or (x == 0 and y >= 0) or (x < 0 and y == int(y))),
             note="written x**y; integer, rational and real exponents"),
    # -- inverse functions the oracle's integrators support (not in the spec grammar) ------------------------
    Function("asin", 1, sympy.asin, sympy.asin, lambda x: (_inv_sqrt(1 - x**2),),
             Domain("[-1, 1]", lambda x: -1 <= x <= 1)),
    Function("acos", 1, sympy.acos, sympy.acos, lambda x: (-_inv_sqrt(1 - x**2),),
             Domain("[-1, 1]", lambda x: -1 <= x <= 1)),
    Function("atanh", 1, sympy.atanh, sympy.atanh, lambda x: (1 / (1 - x**2),),
             Domain("(-1, 1)", lambda x: -1 < x < 1)),
    Function("acosh", 1, sympy.acosh, sympy.acosh, lambda x: (_inv_sqrt(x**2 - 1),),
             Domain("[1, oo)", lambda x: x >= 1)),
)

#: Every supported function by name, in the order above (the grammar's first).
FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}

#: Functions an expression in a spec may call (each with exactly one positional argument).
ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(f.name for f in _TABLE if f.grammar)

#: What each kind of backend must cover: a SymPy-tree backend every primitive, a text backend the grammar.
BACKEND_COVERAGE: dict[str, Callable[[Function], bool]] = {
    "primitives": lambda f: f.primitive,
    "grammar": lambda f: f.grammar,
}

_KINK_HEADS = {f.head: f for f in _TABLE if f.kinks is not None and f.head is not None}


def kink_switches(node: sympy.Basic) -> tuple | None:
    """The expressions whose zeros are the non-smooth points of ``node`` (abs, sign, Heaviside: the argument;
    Max, Min: the pairwise differences), or None when ``node`` is no kinked function of the table."""
    f = _KINK_HEADS.get(type(node))
    return None if f is None else f.kinks(*node.args)


class Unsupported:
    """A backend's explicit refusal of one function, with the reason (the backend raises its own error)."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self):
        return f"Unsupported({self.reason!r})"


_REGISTRY: dict[str, tuple[str, dict]] = {}


def register_backend(backend: str, covers: str, implementations: Mapping[str, object]) -> dict:
    """Record ``backend``'s implementation of each function (by :data:`FUNCTIONS` name) and return them.

    ``covers`` is a key of :data:`BACKEND_COVERAGE`.  A value is the backend's own implementation (whatever
    its translator calls) or an :class:`Unsupported`.  A name outside the table is a ValueError at import
    (a typo must not register silently); a function the backend must cover but does not is listed by
    :func:`missing_implementations` (and a test fails naming the backend).
    """
    if covers not in BACKEND_COVERAGE:
        raise ValueError(f"backend {backend!r}: covers={covers!r}; choose one of {sorted(BACKEND_COVERAGE)}")
    unknown = sorted(set(implementations) - set(FUNCTIONS))
    if unknown:
        raise ValueError(f"backend {backend!r} registers {', '.join(unknown)}, not in the function table "
                         f"(symode.expr.FUNCTIONS)")
    table = dict(implementations)
    _REGISTRY[backend] = (covers, table)
    return table


def registered() -> dict[str, dict]:
    """The implementations of every backend registered so far (importing a backend's module registers it)."""
    return {name: table for name, (_, table) in _REGISTRY.items()}


def missing_implementations(backend: str) -> list[str]:
    """The functions ``backend`` must cover but has neither implemented nor refused (empty when complete)."""
    covers, table = _REGISTRY[backend]
    need = BACKEND_COVERAGE[covers]
    return [f.name for f in _TABLE if need(f) and f.name not in table]


def by_head(implementations: Mapping[str, object]) -> dict[type, object]:
    """{SymPy head: implementation} for the supported primitives among ``implementations``."""
    return {FUNCTIONS[n].head: impl for n, impl in implementations.items()
            if FUNCTIONS[n].primitive and not isinstance(impl, Unsupported)}
