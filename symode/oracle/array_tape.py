"""The oracle's tape for array expressions: a structured right-hand side compiled with its matrix products.

:class:`ArrayTaylorSystem` is a :class:`~symode.oracle.tape.TaylorSystem` whose right-hand side is given as
array expressions (:mod:`symode.arrays.node`): the right-hand sides of a network model, of its adjoint and of its
forward sensitivities as the matrix-form derivation writes them.  Each array is a list of tape nodes (row-major);
a product A·x with A constant (a weight matrix, its transpose, or a direction) is ONE tape operation
``matvec`` whose recurrence is

    o_i[k] = Σ_j A_ij x_j[k]            (A_ij = the order-0 coefficient of a constant node)

so a layer costs one pass over its weights per Taylor order, with no per-weight tape operation.  Element-wise
operations become one tape operation per element through the scalar emitters (a function's definition, e.g.
sigmoid(x) = 1/(1 + exp(-x)), and its derivative are compiled exactly as in the scalar tape); products of two
varying arrays (λ hᵀ in dL/dW2) are per-element products.
"""
from __future__ import annotations

from collections.abc import Sequence
from operator import mul

import sympy

from ..arrays import node as N
from ..errors import DerivationError
from .recurrences import recurrence
from .tape import TaylorSystem

__all__ = ["ArrayTaylorSystem"]


@recurrence("matvec")
def _matvec(op, cx):
    """o = A x for a constant matrix A: ``op.extra = (rows, cols)``, ``op.ins`` = A's nodes (row-major) then x's."""
    fsum, S = cx.B.fsum, cx.S
    rows, cols = op.extra
    a_nodes, x_nodes = op.ins[:rows * cols], op.ins[rows * cols:]
    X = [S[j] for j in x_nodes]
    O = [S[i] for i in op.outs]
    A = [[S[a_nodes[i * cols + j]] for j in range(cols)] for i in range(rows)]
    rows_now: list = []

    def f0():
        rows_now[:] = [[a[0] for a in row] for row in A]  # the constants, read once per step
        x0 = [x[0] for x in X]
        for o, row in zip(O, rows_now):
            o[0] = fsum(map(mul, row, x0))

    def fk(k):
        xk = [x[k] for x in X]
        for o, row in zip(O, rows_now):
            o[k] = fsum(map(mul, row, xk))
    return f0, fk


class _Linear:
    """Quadrature states y' = c(t) (one tape node each): y(t + h) = y(t) + Σ_{k<K} c[k] h^(k+1)/(k+1)."""

    def __init__(self, states: list[int], nodes: list[int]):
        self.states, self.nodes = states, nodes

    def increments(self, S, hp, K, B) -> list:
        w = [hp[k + 1] / (k + 1) for k in range(K)]
        return [B.fsum(map(mul, S[n][:K], w)) for n in self.nodes]

    def top_norms(self, S, K) -> tuple:
        return (max(abs(S[n][K - 2]) for n in self.nodes) / (K - 1),
                max(abs(S[n][K - 1]) for n in self.nodes) / K)


class _Outer:
    """A block of quadrature states Y' = c·u vᵀ (u, v columns of tape nodes, c a constant node), the rate of
    dL/dW for a weight matrix W.  Over a step, with the truncated series of u and v,

        ΔY_ij = c Σ_{a+b<K} u_i[a] v_j[b] h^(a+b+1)/(a+b+1) = c Σ_a u_i[a] P_aj,  P_aj = Σ_b w_(a+b) v_j[b]

    (w_m = h^(m+1)/(m+1)): K²·cols + rows·cols·K multiplications, instead of the rows·cols·K²/2 of convolving
    every element's product series on the tape."""

    def __init__(self, states: list[int], u: list[int], v: list[int], coef: int):
        self.states, self.u, self.v, self.coef = states, u, v, coef

    def increments(self, S, hp, K, B) -> list:
        w = [hp[m + 1] / (m + 1) for m in range(K)]
        V = [S[j][:K] for j in self.v]
        P = [[B.fsum(map(mul, w[a:K], vj[:K - a])) for vj in V] for a in range(K)]  # K x cols
        cols = list(zip(*P))  # per column j: P_aj over a
        c = S[self.coef][0]
        return [c * B.fsum(map(mul, S[i][:K], col)) for i in self.u for col in cols]

    def top_norms(self, S, K) -> tuple:
        """Upper bounds of max |Y[n]| for n = K-1, K: |c| Σ_a max_i |u_i[a]| max_j |v_j[n-1-a]| / n."""
        mu_ = [max(abs(S[i][a]) for i in self.u) for a in range(K)]
        mv = [max(abs(S[j][a]) for j in self.v) for a in range(K)]
        c = abs(S[self.coef][0])
        return tuple(c * sum(mu_[a] * mv[n - 1 - a] for a in range(n)) / n for n in (K - 1, K))


class ArrayTaylorSystem(TaylorSystem):
    """A tape from array expressions.

    ``states``: the state symbols; ``values``: the right-hand side, one array node or scalar SymPy expression
    per block, whose elements (row-major) follow the states in order; ``t``: the time symbol; ``params``: symbols
    given values at integration time; ``groups``: how the element symbols of the arrays map to states and
    parameters (each group's elements must be among ``states`` or ``params``); ``quadratures``: how many of the
    last values are quadratures (their states feed nothing back: advanced over each step from the series of
    their integrand, :class:`_Outer` for c·u vᵀ, :class:`_Linear` otherwise).
    """

    def __init__(self, states: Sequence[sympy.Symbol], values: Sequence, t: sympy.Symbol,
                 params: Sequence[sympy.Symbol] = (), groups: Sequence[N.Group] = (), quadratures: int = 0):
        self.states, self.t, self.params = tuple(states), t, tuple(params)
        self.rhs = ()
        self._cse_back = {}
        self._start_tape()
        self._groups = {g: [self._symbol_node[e] for e in g.elements] for g in groups}
        self._arrays: dict = {}
        self._bound: dict = {}  # tape node -> the Dummy that stands for it inside a scalar expression
        rhs_nodes = []
        values = list(values)
        split = len(values) - quadratures
        for v in values[:split]:
            rhs_nodes.extend(self.array(v))
        self.rhs_nodes = rhs_nodes
        self.quadratures = []
        k = len(rhs_nodes)
        for v in values[split:]:
            q = self._quadrature(v, k)
            self.quadratures.append(q)
            k += len(q.states)
        if k != self.n_states:
            raise DerivationError(f"the right-hand side has {k} elements for {self.n_states} states")
        self.n_nodes = len(self._is_const)
        self.const_ops = [o for o in self._ops if all(self._is_const[i] for i in o.outs)]
        self.main_ops = [o for o in self._ops if not all(self._is_const[i] for i in o.outs)]

    def _quadrature(self, v, first: int):
        """The quadrature block for value ``v`` (states from index ``first``): an outer product c·u vᵀ, else
        element by element."""
        coef, body = sympy.Integer(1), v
        if isinstance(v, N.Node) and v.op == "mul" and len(v.args) == 2 and v.args[0].op == "scalar":
            coef, body = v.args[0].attr, v.args[1]
        if (isinstance(body, N.Node) and body.op == "matmul" and body.args[1].op == "T"
                and body.args[0].shape[1] == 1 and body.args[1].args[0].shape[1] == 1):
            u, w = self.array(body.args[0]), self.array(body.args[1].args[0])
            c = self._node(sympy.sympify(coef))
            if self._is_const[c]:
                return _Outer(list(range(first, first + len(u) * len(w))), u, w, c)
        nodes = self.array(v)
        return _Linear(list(range(first, first + len(nodes))), nodes)

    # ---- scalar pieces ---------------------------------------------------------------------------------------
    def _dummy(self, node: int) -> sympy.Dummy:
        d = self._bound.get(node)
        if d is None:
            d = self._bound[node] = sympy.Dummy(f"n{node}", real=True)
            self._symbol_node[d] = node
        return d

    def _apply(self, expr_of, nodes: list[int]) -> list[int]:
        """``expr_of(x)`` (a SymPy expression in one symbol) compiled at each of ``nodes``."""
        return [self._node(expr_of(self._dummy(n))) for n in nodes]

    def _tanh_slope(self, node: int) -> int:
        """1 - tanh(x)**2 at tape node x: the second output of the ``tanh`` operation computing tanh(x)."""
        t = self._node(sympy.tanh(self._dummy(node)))
        for o in reversed(self._ops):
            if o.op == "tanh" and o.outs[0] == t:
                return o.outs[1]
        return self._node(1 - sympy.tanh(self._dummy(node)) ** 2)  # pragma: no cover - tanh of a constant

    def _sum(self, nodes: list[int]) -> int:
        return nodes[0] if len(nodes) == 1 else self._emit("lin", tuple(nodes), extra=len(nodes))[0]

    # ---- arrays ----------------------------------------------------------------------------------------------
    def array(self, value) -> list[int]:
        """The tape nodes of an array node's elements, row-major (a scalar expression: one node)."""
        if not isinstance(value, N.Node):
            return [self._node(sympy.sympify(value))]
        for n in N.walk([value]):
            if n not in self._arrays:
                self._arrays[n] = self._one(n, [self._arrays[a] for a in n.args])
        return self._arrays[value]

    def _one(self, n: N.Node, a: list[list[int]]) -> list[int]:
        op, (r, c) = n.op, n.shape
        size = r * c
        if op == "leaf":
            return self._groups[n.attr]
        if op == "scalar":
            return [self._node(n.attr)]
        if op in ("add", "mul"):
            parts = [x * size if len(x) == 1 else x for x in a]  # a scalar operand broadcasts
            if op == "add":
                return [self._sum([p[i] for p in parts]) for i in range(size)]
            return [self._product([p[i] for p in parts]) for i in range(size)]
        if op == "power":
            return self._apply(lambda x: x ** n.attr, a[0])
        if op == "func":
            return self._apply(N.FUNCTIONS[n.attr], a[0])
        if op == "dfunc":
            if n.attr == "tanh":  # tanh' = 1 - tanh²: the tanh operation's second output, no extra convolution
                return [self._tanh_slope(i) for i in a[0]]
            return self._apply(lambda x: N.function_derivative(n.attr, x), a[0])
        if op == "matmul":
            return self._matmul(n.args[0].shape, n.args[1].shape, a[0], a[1])
        if op == "T":
            rr, cc = n.args[0].shape
            return [a[0][j * cc + i] for i in range(cc) for j in range(rr)]
        if op == "sum":
            return [self._sum(a[0])]
        if op == "index":
            i, j = n.attr
            return [a[0][i * n.args[0].shape[1] + j]]
        if op == "stack":
            return [x[0] for x in a]
        if op == "broadcast":
            return a[0] * size
        if op == "scatter":
            zero = self._node(sympy.Integer(0))
            out = [zero] * size
            out[n.attr[0] * c + n.attr[1]] = a[0][0]
            return out
        raise DerivationError(f"internal: no tape for the array operation {op!r}")  # pragma: no cover

    def _matmul(self, sa, sb, A: list[int], B: list[int]) -> list[int]:
        (r, m), (_, c) = sa, sb
        out = [None] * (r * c)
        if all(self._is_const[i] for i in A):  # a constant matrix: one matvec per column of B
            for j in range(c):
                col = [B[k * c + j] for k in range(m)]
                res = self._emit("matvec", tuple(A) + tuple(col), r, extra=(r, m), label="matrix product")
                for i in range(r):
                    out[i * c + j] = res[i]
            return out
        for i in range(r):  # products of varying arrays (outer products such as λ hᵀ): element by element
            for j in range(c):
                out[i * c + j] = self._sum([self._product([A[i * m + k], B[k * c + j]]) for k in range(m)])
        return out
