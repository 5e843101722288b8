"""The oracle's tape: a SymPy right-hand side compiled to a flat list of elementary operations.

:class:`TaylorSystem` runs ``sympy.cse`` on the right-hand side and walks the result, emitting one
:class:`_Op` per elementary operation on numbered nodes.  Each function of the table
(:data:`symode.expr.FUNCTIONS`) is compiled by its emitter in :data:`TAYLOR_FUNCTIONS` (registered next to
this backend, by name) into tape operations; each tape operation has a Taylor-coefficient recurrence in
:mod:`symode.oracle.recurrences` (``RECURRENCES``, keyed by the operation's ``op``).  Nodes that depend
only on parameters and constants are marked constant: their operations run once per integration.

Tape operations (``op``: inputs -> outputs):

``lin``       sum of the first ``extra`` inputs minus the rest
``mul``/``div``/``sq``  a*b, a/b, a*a
``sqrt``, ``pow`` (constant real exponent), ``exp``, ``log``
``sincos``/``sinhcosh``  a -> (sin a, cos a) / (sinh a, cosh a)
``tan``/``tanh``  a -> (tan a, 1 + tan**2) / (tanh a, 1 - tanh**2)
``ainv``      (a, w) -> atan/asinh/asin/acos/atanh/acosh of a, with c' = ±a'/w
``side``      tracks which side of 0 the argument of abs/sign/Heaviside is on
``abs``       |a| = side * a;  ``step``: sign(a), Heaviside(a, H0), constant within a step
"""
from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import sympy

from symode.errors import DerivationError
from symode.expr import FUNCTIONS, register_backend

__all__ = ["TaylorSystem", "TAYLOR_FUNCTIONS"]



class _Op:
    """One tape instruction: ``outs = op(ins)``; ``label`` names the user-level function in messages and
    ``expr`` (a SymPy expression, possibly holding cse symbols) is the sub-expression it computes."""

    __slots__ = ("op", "outs", "ins", "extra", "label", "expr")

    def __init__(self, op, outs, ins, extra=None, label=None, expr=None):
        self.op, self.outs, self.ins, self.extra = op, tuple(outs), tuple(ins), extra
        self.label = label or op
        self.expr = expr

    def __repr__(self):
        return f"_Op({self.op}, outs={self.outs}, ins={self.ins}, extra={self.extra!r}, label={self.label})"




class TaylorSystem:
    """A right-hand side ``dy/dt = rhs(states, t, params)`` compiled to a tape of elementary operations.

    ``states``: the state symbols ``y``; ``rhs``: one SymPy expression per state; ``t``: the time symbol
    (it may appear in ``rhs``: non-autonomous systems are fine); ``params``: symbols whose values are
    given to :func:`integrate`.  Raises :class:`DerivationError` naming any operation or symbol outside
    the supported table (``+ - * /``, integer and constant real powers, exp, log, sin, cos, tan, sinh,
    cosh, tanh, sqrt, atan, asinh, asin, acos, atanh, acosh, Abs, sign, Heaviside, Max, Min,
    rational/float constants, pi, E).

    Non-smooth operations.  ``Abs(x)``, ``sign(x)`` and ``Heaviside(x, H0)`` are exact piecewise: within a
    step their argument keeps one side of 0 (the integrator lands a step on every zero crossing), so
    ``|x| = s x``, ``sign(x) = s`` and ``Heaviside(x) = (0 if s < 0 else 1)`` with ``s`` the side.  At an
    argument that is exactly 0 and stays 0, SymPy's values are kept: ``sign(0) = 0``,
    ``Heaviside(0, H0) = H0`` (``H0 = 1/2`` by default).  ``Max(x, y) = (x + y + |x - y|)/2`` and
    ``Min(x, y) = (x + y - |x - y|)/2`` (more arguments are folded pairwise).
    """

    def __init__(self, states: Sequence[sympy.Symbol], rhs: Sequence[sympy.Expr], t: sympy.Symbol,
                 params: Sequence[sympy.Symbol] = ()):
        self.states = tuple(states)
        self.t = t
        self.params = tuple(params)
        rhs = list(rhs)
        if len(rhs) != len(self.states):
            raise DerivationError(f"rhs has {len(rhs)} expressions for {len(self.states)} states; give one per state")
        if not self.states:
            raise DerivationError("the system has no states")
        syms = list(self.states) + [t] + list(self.params)
        for s in syms:
            if not isinstance(s, sympy.Symbol):
                raise DerivationError(f"{s!r} is not a sympy.Symbol; states, t and params must be symbols")
        if len(set(syms)) != len(syms):
            raise DerivationError("states, t and params must be distinct symbols")
        for i, e in enumerate(rhs):
            if isinstance(e, int) and not isinstance(e, bool):
                rhs[i] = sympy.Integer(e)
            elif not isinstance(e, sympy.Expr):
                raise DerivationError(f"rhs[{i}] is a {type(e).__name__}, not a sympy expression")
        self.rhs = tuple(rhs)
        self._start_tape()

        # cse symbols are Dummies, so they never collide with user symbols.
        repl, reduced = sympy.cse(self.rhs, symbols=(sympy.Dummy() for _ in iter(int, 1)), order="none")
        self._cse_back = dict(repl)  # to print a tape operation's expression in the user's symbols
        for sym, expr in repl:
            self._symbol_node[sym] = self._node(expr)
        self.rhs_nodes = [self._node(e) for e in reduced]
        self.n_nodes = len(self._is_const)
        self.const_ops = [o for o in self._ops if all(self._is_const[i] for i in o.outs)]
        self.main_ops = [o for o in self._ops if not all(self._is_const[i] for i in o.outs)]

    def _start_tape(self) -> None:
        """The empty tape: one node per state, then t, then one (constant) node per parameter."""
        self._is_const: list[bool] = []
        self._literals: list[tuple[int, object]] = []  # (node, exact Fraction or SymPy constant)
        self._literal_memo: dict = {}
        self._ops: list[_Op] = []
        self._memo: dict = {}
        self._pair_memo: dict = {}
        self._symbol_node: dict = {}
        for s in self.states + (self.t,):
            self._symbol_node[s] = self._new_node(False)
        for p in self.params:
            self._symbol_node[p] = self._new_node(True)
        self.n_states = len(self.states)
        self.t_node = self.n_states

    # ---- building -----------------------------------------------------------------------------
    def _new_node(self, const: bool) -> int:
        self._is_const.append(const)
        return len(self._is_const) - 1

    def _emit(self, op: str, ins, n_out: int = 1, extra=None, label=None, expr=None) -> tuple[int, ...]:
        const = all(self._is_const[i] for i in ins)
        outs = tuple(self._new_node(const) for _ in range(n_out))
        self._ops.append(_Op(op, outs, ins, extra, label, expr))
        return outs

    def describe(self, op: _Op, limit: int = 80) -> str:
        """The expression a tape operation computes, in the user's symbols (shortened past ``limit``)."""
        e = op.expr
        if e is None:
            return op.label
        for _ in range(len(self._cse_back) + 1):  # undo cse, innermost symbols last
            inner = [s for s in e.free_symbols if s in self._cse_back]
            if not inner:
                break
            e = e.xreplace({s: self._cse_back[s] for s in inner})
        text = str(e)
        return text if len(text) <= limit else text[:limit - 3] + "..."

    def _side(self, a: int) -> None:
        """Emit (once per argument node) the op that tracks which side of 0 a non-constant ``a`` is on."""
        key = ("side", a)
        if key not in self._pair_memo and not self._is_const[a]:
            self._pair_memo[key] = self._emit("side", (a,))

    def _literal(self, value) -> int:
        key = value if isinstance(value, Fraction) else ("sym", value)
        if key not in self._literal_memo:
            n = self._new_node(True)
            self._literals.append((n, value))
            self._literal_memo[key] = n
        return self._literal_memo[key]

    def _mul2(self, a: int, b: int) -> int:
        return self._emit("mul", (a, b))[0]

    def _product(self, nodes: list[int]) -> int | None:
        """Product of nodes, constants first so that they fold into one constant node."""
        consts = [n for n in nodes if self._is_const[n]]
        vars_ = [n for n in nodes if not self._is_const[n]]
        out = None
        for n in consts + vars_:
            out = n if out is None else self._mul2(out, n)
        return out

    def _int_power(self, a: int, n: int) -> int:
        """a**n for an integer n >= 1 by binary powering (squares and products; fine at a = 0)."""
        result = None
        base = a
        while True:
            if n & 1:
                result = base if result is None else self._mul2(result, base)
            n >>= 1
            if not n:
                return result
            base = self._emit("sq", (base,))[0]

    def _node(self, e) -> int:
        if e in self._memo:
            return self._memo[e]
        n = self._build(e)
        self._memo[e] = n
        return n

    def _build(self, e) -> int:
        if isinstance(e, sympy.Symbol):
            if e in self._symbol_node:
                return self._symbol_node[e]
            raise DerivationError(f"symbol {e} in the right-hand side is not a state, a parameter or the "
                                  f"time symbol {self.t}; declare it as a parameter")
        if isinstance(e, sympy.Rational):
            return self._literal(Fraction(int(e.p), int(e.q)))
        if isinstance(e, sympy.Float):
            if not e.is_finite:
                raise DerivationError(f"the constant {e} in the right-hand side is not finite")
            r = sympy.Rational(e)  # exact binary value: Float(0.1) stays 0.1000000000000000055511...
            return self._literal(Fraction(int(r.p), int(r.q)))
        if isinstance(e, sympy.NumberSymbol):  # pi, E, EulerGamma, Catalan, GoldenRatio ...
            return self._literal(e)
        if e.is_Number or e is sympy.I or isinstance(e, sympy.core.numbers.ImaginaryUnit):
            raise DerivationError(f"the constant {e} in the right-hand side is not a finite real number")
        if isinstance(e, sympy.Add):
            pos, neg = [], []
            for term in e.args:
                c, rest = term.as_coeff_Mul()
                if c.is_Number and c.is_negative:
                    neg.append(self._node(-term))
                else:
                    pos.append(self._node(term))
            return self._emit("lin", tuple(pos) + tuple(neg), extra=len(pos))[0]
        if isinstance(e, sympy.Mul):
            num, den = [], []
            for f in e.args:
                if isinstance(f, sympy.Pow) and f.exp.is_Number and f.exp.is_negative and f.exp.is_Rational:
                    den.append(self._node(sympy.Pow(f.base, -f.exp)))
                else:
                    num.append(self._node(f))
            a = self._product(num)
            if not den:
                return a
            b = self._product(den)
            if a is None:
                a = self._literal(Fraction(1))
            return self._emit("div", (a, b), expr=e)[0]
        emit = _EMITTERS.get(type(e))
        if emit is not None:
            return emit(self, e)
        if isinstance(e, sympy.Function):
            if len(e.args) != 1:
                raise DerivationError(f"{type(e).__name__} with {len(e.args)} arguments in {e} is not supported "
                                      f"by the Taylor integrator; supported: {', '.join(_SUPPORTED)}")
            raise DerivationError(f"function {type(e).__name__} in {e} is not supported by the Taylor integrator; "
                                  f"supported: {', '.join(_SUPPORTED)}")
        raise DerivationError(f"operation {type(e).__name__} in {e} is not supported by the Taylor integrator; "
                              f"supported: {', '.join(_SUPPORTED)}")

    def _abs(self, a: int) -> int:
        self._side(a)
        return self._emit("abs", (a,), label="Abs")[0]

    def __repr__(self):
        return (f"TaylorSystem({self.n_states} states, {len(self.params)} params, "
                f"{len(self.main_ops)} tape ops + {len(self.const_ops)} constant ops)")


# --------------------------------------------------------------------------------------------------
# The emitters: how each function of the table becomes tape operations
# --------------------------------------------------------------------------------------------------

def _unary(emit):
    """The emitter of a one-argument function: the argument's node first, then ``emit(system, e, a)``."""
    def emitter(system: TaylorSystem, e) -> int:
        if len(e.args) != 1:
            raise DerivationError(f"{type(e).__name__} with {len(e.args)} arguments in {e} is not supported by "
                                  f"the Taylor integrator; supported: {', '.join(_SUPPORTED)}")
        return emit(system, e, system._node(e.args[0]))
    return emitter


def _single(op: str, n_out: int = 1, with_expr: bool = False):
    """A function that is one tape operation ``op`` of its argument (its first output is the value)."""
    def emit(system: TaylorSystem, e, a: int) -> int:
        return system._emit(op, (a,), n_out, expr=e if with_expr else None)[0]
    return _unary(emit)


def _pair(op: str, index: int):
    """sin/cos (sinh/cosh): one ``op`` computes both; a second call on the same argument reuses it."""
    def emit(system: TaylorSystem, e, a: int) -> int:
        key = (op, a)
        if key not in system._pair_memo:
            system._pair_memo[key] = system._emit(op, (a,), 2)
        return system._pair_memo[key][index]
    return _unary(emit)


def _sign(system: TaylorSystem, e, a: int) -> int:
    system._side(a)
    return system._emit("step", (a,), extra=(-1, 0, 1), label="sign", expr=e)[0]


def _ainv(system: TaylorSystem, e, a: int) -> int:
    """atan, asinh, asin, acos, atanh, acosh: c' = sign * a' / w with w built on the tape from a (w = 1 + a**2,
    sqrt(1 + a**2), sqrt(1 - a**2), 1 - a**2, sqrt(a**2 - 1)); w[0] != 0 is the domain condition."""
    f = type(e)
    name = f.__name__
    one = system._literal(Fraction(1))
    sq = system._emit("sq", (a,))[0]
    if f in (sympy.atan, sympy.asinh):
        w = system._emit("lin", (one, sq), extra=2)[0]
    elif f is sympy.acosh:
        w = system._emit("lin", (sq, one), extra=1)[0]
    else:
        w = system._emit("lin", (one, sq), extra=1)[0]
    if f in (sympy.asinh, sympy.asin, sympy.acos, sympy.acosh):
        # internal: a domain failure here is reported as the argument of `name` leaving its domain
        w = system._emit("sqrt", (w,), label=name, extra=("internal", name, a), expr=e)[0]
    return system._emit("ainv", (a, w), 1, extra=(name, -1 if f is sympy.acos else 1), label=name, expr=e)[0]


def _heaviside(system: TaylorSystem, e) -> int:
    """Heaviside(x, H0): 0 for x < 0, H0 at x = 0 (SymPy's default H0 = 1/2), 1 for x > 0."""
    x = e.args[0]
    h0 = e.args[1] if len(e.args) > 1 else sympy.Heaviside(0)
    if not isinstance(h0, sympy.Rational):
        raise DerivationError(f"Heaviside in {e} has the value {h0} at 0, not a rational number; the "
                              f"Taylor integrator supports Heaviside(x) and Heaviside(x, H0) with a number H0")
    a = system._node(x)
    system._side(a)
    return system._emit("step", (a,), extra=(0, Fraction(int(h0.p), int(h0.q)), 1), label="Heaviside", expr=e)[0]


def _max_min(system: TaylorSystem, e) -> int:
    """Max/Min folded pairwise: max(x, y) = (x + y + |x - y|)/2, min(x, y) = (x + y - |x - y|)/2."""
    is_max = isinstance(e, sympy.Max)
    half = system._literal(Fraction(1, 2))
    args = [system._node(x) for x in e.args]
    out = args[0]
    for y in args[1:]:
        d = system._emit("lin", (out, y), extra=1)[0]
        ad = system._abs(d)
        s = system._emit("lin", (out, y, ad), extra=3 if is_max else 2)[0]
        out = system._product([half, s])
    return out


def _pow(system: TaylorSystem, e) -> int:
    """Integer powers by squaring, x**(±1/2) by sqrt, constant real powers by ``pow``, varying exponents as
    exp(x log b)."""
    base, ex = e.args
    if ex.is_Integer:
        n = int(ex)
        if n == 0:
            return system._literal(Fraction(1))
        if n > 0:
            return system._int_power(system._node(base), n)
        return system._emit("div", (system._literal(Fraction(1)), system._int_power(system._node(base), -n)),
                            expr=e)[0]
    if ex == sympy.Rational(1, 2):
        return system._emit("sqrt", (system._node(base),), expr=e)[0]
    if ex == sympy.Rational(-1, 2):
        s = system._emit("sqrt", (system._node(base),), expr=sympy.sqrt(base))[0]
        return system._emit("div", (system._literal(Fraction(1)), s), expr=e)[0]
    b = system._node(base)
    x = system._node(ex)
    if system._is_const[x]:
        return system._emit("pow", (b, x), label="real power", expr=e)[0]
    if base is sympy.E:
        return system._emit("exp", (x,))[0]
    lb = system._emit("log", (b,), label="real power", expr=e)[0]  # b**x = exp(x log b): needs b > 0
    return system._emit("exp", (system._mul2(x, lb),))[0]


#: The Taylor tape's implementation of each function of the table (:data:`symode.expr.FUNCTIONS`), by name:
#: an emitter ``(system, expression) -> node`` that appends the function's tape operations.
TAYLOR_FUNCTIONS = register_backend("taylor", "primitives", {
    "sin": _pair("sincos", 0),
    "cos": _pair("sincos", 1),
    "tan": _single("tan", 2),    # second output: u = 1 + tan**2
    "exp": _single("exp"),
    "log": _single("log", with_expr=True),
    "tanh": _single("tanh", 2),  # second output: u = 1 - tanh**2
    "sinh": _pair("sinhcosh", 0),
    "cosh": _pair("sinhcosh", 1),
    "atan": _unary(_ainv),
    "asinh": _unary(_ainv),
    "abs": _unary(lambda system, e, a: system._abs(a)),
    "sign": _unary(_sign),
    "Heaviside": _heaviside,
    "Max": _max_min,
    "Min": _max_min,
    "pow": _pow,
    "asin": _unary(_ainv),
    "acos": _unary(_ainv),
    "atanh": _unary(_ainv),
    "acosh": _unary(_ainv),
})
_EMITTERS = {FUNCTIONS[name].head: emit for name, emit in TAYLOR_FUNCTIONS.items()}
#: What the integrator supports, for messages.
_SUPPORTED = ("+", "-", "*", "/", "integer power", "real power",
              *(FUNCTIONS[name].head.__name__ for name in TAYLOR_FUNCTIONS if name != "pow"))
