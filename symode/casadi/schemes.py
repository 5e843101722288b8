"""Runge-Kutta schemes as data: Butcher tableaux.

A tableau (A, b, c) with s stages defines one step of size h from (t, z) for dz/dt = f(z, t, p):

    K_i    = f(z + h * sum_j A[i][j] K_j,  t + c_i h,  p)      i = 1..s
    z_next = z + h * sum_i b_i K_i

The scheme is explicit when A is strictly lower triangular (each K_i needs only K_1..K_{i-1}), otherwise
implicit (the K_i solve a nonlinear system).  Every tableau satisfies the row-sum condition
c_i = sum_j A[i][j] (stages are evaluated at the time their state approximates) and consistency
sum_i b_i = 1 (order >= 1).

Coefficients are exact: ``fractions.Fraction`` for rationals, and SymPy expressions for the irrational
entries of Gauss-Legendre methods (1/4 - sqrt(3)/6 has no Fraction; storing it exactly lets the order
conditions be checked exactly and lets :meth:`Tableau.as_floats` give the correctly rounded double of each
entry rather than the result of float arithmetic on rounded parts).  Floats are accepted in user tableaux
(e.g. copied from a paper), and the conditions are then checked to a few rounding errors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import sympy

from symode.errors import SpecError

__all__ = ["Tableau", "SCHEMES", "get_scheme", "Coefficient"]

Coefficient = Fraction | sympy.Expr | float


def _normalize(value, where: str):
    """Exact Fraction where possible; SymPy irrational constants kept; floats kept (finite only)."""
    if isinstance(value, bool):
        raise SpecError(f"tableau entry {where} is a boolean; give a number")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"tableau entry {where} is {value}; give a finite number")
        return value
    if isinstance(value, sympy.Rational):
        return Fraction(int(value.p), int(value.q))
    if isinstance(value, sympy.Expr):
        if not value.is_number or value.free_symbols or value.is_real is not True:
            raise SpecError(f"tableau entry {where} = {value} is not a real constant; give a number")
        return value
    raise SpecError(f"tableau entry {where} has type {type(value).__name__}; give a Fraction, int, float or "
                    "SymPy constant")


def _is_zero(x) -> bool:
    if isinstance(x, sympy.Expr):
        return sympy.simplify(x) == 0
    return x == 0


def _close(x, y, scale) -> bool:
    """Exact equality for exact entries; a few rounding errors' tolerance when floats are involved."""
    if isinstance(x, float) or isinstance(y, float):
        return abs(float(x) - float(y)) <= 8 * 2.0 ** -52 * max(1.0, float(scale))
    return _is_zero(sympy.nsimplify(x - y) if isinstance(x - y, sympy.Expr) else x - y)


@dataclass(frozen=True)
class Tableau:
    """A Butcher tableau; validated on construction (raises :class:`SpecError`)."""

    name: str
    A: tuple[tuple[Coefficient, ...], ...]
    b: tuple[Coefficient, ...]
    c: tuple[Coefficient, ...]
    order: int
    implicit: bool

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise SpecError("tableau name must be a non-empty string")
        try:
            rows = [list(row) for row in self.A]
            b = list(self.b)
            c = list(self.c)
        except TypeError as exc:
            raise SpecError(f"tableau '{self.name}': A must be a sequence of rows, b and c sequences") from exc
        s = len(b)
        if s == 0:
            raise SpecError(f"tableau '{self.name}': b is empty; a scheme needs at least one stage")
        if len(c) != s or len(rows) != s or any(len(row) != s for row in rows):
            raise SpecError(f"tableau '{self.name}': shapes disagree: b has {s} entries, c has {len(c)}, A has "
                            f"{len(rows)} rows of lengths {[len(r) for r in rows]}; A must be {s}x{s}")
        A = tuple(tuple(_normalize(v, f"A[{i}][{j}]") for j, v in enumerate(row)) for i, row in enumerate(rows))
        b = tuple(_normalize(v, f"b[{i}]") for i, v in enumerate(b))
        c = tuple(_normalize(v, f"c[{i}]") for i, v in enumerate(c))
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 1:
            raise SpecError(f"tableau '{self.name}': order must be an integer >= 1, got {self.order!r}")
        if not isinstance(self.implicit, bool):
            raise SpecError(f"tableau '{self.name}': implicit must be True or False")
        for i in range(s):
            row_sum = sum(A[i], Fraction(0))
            scale = sum(abs(float(a)) for a in A[i])
            if not _close(row_sum, c[i], scale):
                raise SpecError(f"tableau '{self.name}': row-sum condition fails in row {i}: "
                                f"c[{i}] = {c[i]} but sum_j A[{i}][j] = {row_sum}")
        if not _close(sum(b, Fraction(0)), Fraction(1), sum(abs(float(x)) for x in b)):
            raise SpecError(f"tableau '{self.name}': consistency fails: sum(b) = {sum(b, Fraction(0))}, "
                            "must be 1")
        strictly_lower = all(_is_zero(A[i][j]) for i in range(s) for j in range(i, s))
        if strictly_lower == self.implicit:
            raise SpecError(f"tableau '{self.name}': implicit={self.implicit} but A is "
                            f"{'' if strictly_lower else 'not '}strictly lower triangular; a scheme is "
                            "explicit exactly when A is strictly lower triangular")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)

    @property
    def stages(self) -> int:
        return len(self.b)

    def as_floats(self) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...], tuple[float, ...]]:
        """(A, b, c) as the correctly rounded doubles of the exact entries."""
        from symode.casadi.translate import nearest_double

        A = tuple(tuple(nearest_double(v) for v in row) for row in self.A)
        return A, tuple(nearest_double(v) for v in self.b), tuple(nearest_double(v) for v in self.c)


def _F(text: str) -> Fraction:
    return Fraction(text)


def _tableau(name, A, b, c, order, implicit):
    A = [[_F(x) if isinstance(x, str) else x for x in row] for row in A]
    return Tableau(name, tuple(map(tuple, A)), tuple(_F(x) if isinstance(x, str) else x for x in b),
                   tuple(_F(x) if isinstance(x, str) else x for x in c), order, implicit)


_R3_6 = sympy.sqrt(3) / 6  # Gauss-Legendre 2-stage nodes are 1/2 -+ sqrt(3)/6

SCHEMES: dict[str, Tableau] = {
    t.name: t
    for t in [
        # explicit (forward) Euler
        _tableau("euler", [["0"]], ["1"], ["0"], 1, False),
        # explicit midpoint rule (Runge 1895)
        _tableau("midpoint", [["0", "0"], ["1/2", "0"]], ["0", "1"], ["0", "1/2"], 2, False),
        # the classic Runge-Kutta method
        _tableau("rk4",
                 [["0", "0", "0", "0"], ["1/2", "0", "0", "0"], ["0", "1/2", "0", "0"], ["0", "0", "1", "0"]],
                 ["1/6", "1/3", "1/3", "1/6"], ["0", "1/2", "1/2", "1"], 4, False),
        # Kutta's 3/8 rule (torchdiffeq's method="rk4" is this one)
        _tableau("rk38",
                 [["0", "0", "0", "0"], ["1/3", "0", "0", "0"], ["-1/3", "1", "0", "0"], ["1", "-1", "1", "0"]],
                 ["1/8", "3/8", "3/8", "1/8"], ["0", "1/3", "2/3", "1"], 4, False),
        # Dormand-Prince 5(4): the 5th-order solution weights, used here at fixed steps (no error
        # estimate).  The 7th stage (FSAL) has weight 0; it is kept so the data is the published tableau.
        _tableau("dopri5",
                 [["0"] * 7,
                  ["1/5"] + ["0"] * 6,
                  ["3/40", "9/40"] + ["0"] * 5,
                  ["44/45", "-56/15", "32/9"] + ["0"] * 4,
                  ["19372/6561", "-25360/2187", "64448/6561", "-212/729"] + ["0"] * 3,
                  ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"] + ["0"] * 2,
                  ["35/384", "0", "500/1113", "125/192", "-2187/6784", "11/84", "0"]],
                 ["35/384", "0", "500/1113", "125/192", "-2187/6784", "11/84", "0"],
                 ["0", "1/5", "3/10", "4/5", "8/9", "1", "1"], 5, False),
        # backward (implicit) Euler
        _tableau("backward_euler", [["1"]], ["1"], ["1"], 1, True),
        # implicit midpoint rule (1-stage Gauss-Legendre)
        _tableau("implicit_midpoint", [["1/2"]], ["1"], ["1/2"], 2, True),
        # 2-stage Gauss-Legendre (Hammer-Hollingsworth 1955), order 4
        _tableau("gauss2",
                 [[Fraction(1, 4), sympy.Rational(1, 4) - _R3_6], [sympy.Rational(1, 4) + _R3_6, Fraction(1, 4)]],
                 [Fraction(1, 2), Fraction(1, 2)],
                 [sympy.Rational(1, 2) - _R3_6, sympy.Rational(1, 2) + _R3_6], 4, True),
    ]
}


def get_scheme(name_or_tableau) -> Tableau:
    """The tableau called ``name_or_tableau`` in :data:`SCHEMES`, or a user :class:`Tableau` (validated on
    construction).  Unknown names raise :class:`SpecError` listing the known ones."""
    if isinstance(name_or_tableau, Tableau):
        return name_or_tableau
    if isinstance(name_or_tableau, str):
        try:
            return SCHEMES[name_or_tableau]
        except KeyError:
            from ..suggest import choose
            raise SpecError(f"unknown scheme {name_or_tableau!r}{choose(name_or_tableau, SCHEMES)}") from None
    raise SpecError(f"scheme must be a scheme name ({', '.join(SCHEMES)}) or a Butcher tableau object, "
                    f"not {type(name_or_tableau).__name__}")
