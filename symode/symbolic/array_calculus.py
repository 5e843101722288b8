"""Derivatives of array expressions, kept as array expressions (matrix calculus on :mod:`symode.arrays.node`).

:func:`vjp` is reverse mode: for outputs y_k with seeds w_k (same shapes) it gives, for every requested target x
(an array group or a scalar symbol), the array Σ_k (∂y_k/∂x)ᵀ w_k shaped like x.  :func:`jvp` is forward mode:
for tangents ẋ of the targets it gives each output's Σ_x (∂y/∂x) ẋ.  The rules, per operation (adjoint ȳ of
an output y; ⊙ the element-wise product):

    y = A·B          Ā += ȳ Bᵀ,   B̄ += Aᵀ ȳ                    ẏ = Ȧ B + A Ḃ
    y = σ(x)         x̄ += σ'(x) ⊙ ȳ                             ẏ = σ'(x) ⊙ ẋ
    y = x1 ⊙ x2 ...  x̄i += ȳ ⊙ Π_{j≠i} xj (summed where xi is a broadcast scalar)
    y = x1 + x2 ...  x̄i += ȳ (summed where xi is a broadcast scalar)
    y = x**c         x̄ += c x**(c-1) ⊙ ȳ
    y = xᵀ, sum(x), x[i, j], [x1, x2 ...]: the transpose, broadcast, scatter and index of ȳ

A scalar node's SymPy expression is differentiated by SymPy (``diff``) in each symbol it uses; a symbol that is
an element of an array (``z_0``) contributes at its position.  So λ̇ = -(∂f/∂z)ᵀλ for f = W2·tanh(W1·z + b1) + b2
comes out as -W1ᵀ(tanh'(a) ⊙ W2ᵀλ) with a = W1·z + b1: matrices, never their elements.  Structural zeros are
None and never built.
"""
from __future__ import annotations

from typing import Iterable

import sympy

from ..arrays import node as N
from ..errors import DerivationError

__all__ = ["vjp", "jvp", "element_owner"]


def element_owner(groups: Iterable[N.Group]) -> dict:
    """Element symbol -> (group, i, j) for every array group (scalars map to themselves)."""
    out = {}
    for g in groups:
        cols = g.shape[1]
        for k, e in enumerate(g.elements):
            out[e] = (g, k // cols, k % cols)
    return out


def _acc(store: dict, key, value) -> None:
    if value is None:
        return
    store.setdefault(key, []).append(value)


def _sum(values: list | None):
    if not values:
        return None
    return values[0] if len(values) == 1 else N.add(*values)


def _unbroadcast(value: N.Node, shape) -> N.Node:
    """Sum ``value`` down to a scalar where the operand it belongs to was a broadcast scalar."""
    return N.total(value) if shape == (1, 1) and value.shape != (1, 1) else value


def vjp(pairs: Iterable[tuple[N.Node, N.Node]], owner: dict) -> dict:
    """Σ_k (∂y_k/∂x)ᵀ w_k for the ``(y_k, w_k)`` pairs, for every group and scalar symbol x they depend on.

    ``owner`` maps element symbols to ``(group, i, j)`` (:func:`element_owner`); every other symbol is a scalar
    target.  Returns {group or symbol: node} (scalars as scalar nodes); targets with zero derivative are absent.
    """
    pairs = [(N.lift(y), N.lift(w)) for y, w in pairs]
    adj: dict = {}
    for y, w in pairs:
        _acc(adj, y, w)
    order = N.walk([y for y, _ in pairs])
    out: dict = {}
    for n in reversed(order):
        a = _sum(adj.pop(n, None))
        if a is None:
            continue
        _backward(n, a, adj, out, owner)
    return {k: _sum(v) for k, v in out.items()}


def _backward(n: N.Node, a: N.Node, adj: dict, out: dict, owner: dict) -> None:
    """Add node ``n``'s contributions (adjoint ``a``) to its arguments' adjoints (the rules above)."""
    op, x = n.op, n.args
    if op == "leaf":
        _acc(out, n.attr, a)
    elif op == "scalar":
        for s in sorted(n.attr.free_symbols, key=sympy.default_sort_key):
            d = sympy.diff(n.attr, s)
            if d == 0:
                continue
            where = owner.get(s)
            if where is None or not where[0].is_array:
                _acc(out, s if where is None else where[0], N.mul(a, d))
            else:
                g, i, j = where
                _acc(out, g, N.scatter(N.mul(a, d), i, j, g.shape))
    elif op == "add":
        for arg in x:
            _acc(adj, arg, _unbroadcast(a, arg.shape))
    elif op == "mul":
        for k, arg in enumerate(x):
            _acc(adj, arg, _unbroadcast(N.mul(a, *x[:k], *x[k + 1:]), arg.shape))
    elif op == "power":
        _acc(adj, x[0], N.mul(a, n.attr, N.power(x[0], n.attr - 1)))
    elif op == "func":
        _acc(adj, x[0], N.mul(N.dfunc(n.attr, x[0]), a))
    elif op == "matmul":
        A, B = x
        _acc(adj, A, N.matmul(a, N.transpose(B)))
        _acc(adj, B, N.matmul(N.transpose(A), a))
    elif op == "T":
        _acc(adj, x[0], N.transpose(a))
    elif op == "sum":
        _acc(adj, x[0], N.broadcast(a, x[0].shape))
    elif op == "index":
        _acc(adj, x[0], N.scatter(a, *n.attr, x[0].shape))
    elif op == "stack":
        for i, arg in enumerate(x):
            _acc(adj, arg, N.index(a, i))
    elif op == "broadcast":
        _acc(adj, x[0], N.total(a))
    elif op == "scatter":
        _acc(adj, x[0], N.index(a, *n.attr))
    else:  # dfunc: a second derivative, which no derived quantity needs
        raise DerivationError(f"no reverse-mode rule for the array operation {op!r}")


def jvp(outputs: Iterable[N.Node], tangents: dict, owner: dict) -> list:
    """Σ_x (∂y/∂x) ẋ for each output y; ``tangents`` maps groups and scalar symbols to ẋ (missing ones are 0).

    Returns one node per output, or None where the directional derivative is structurally zero.
    """
    outputs = [N.lift(y) for y in outputs]
    tan: dict = {}
    for n in N.walk(outputs):
        tan[n] = _forward(n, tan, tangents, owner)
    return [tan[y] for y in outputs]


def _scalar_tangent(s, tangents: dict, owner: dict):
    where = owner.get(s)
    if where is None or not where[0].is_array:
        return tangents.get(s if where is None else where[0])
    g, i, j = where
    t = tangents.get(g)
    return None if t is None else N.index(t, i, j)


def _forward(n: N.Node, tan: dict, tangents: dict, owner: dict):
    op, x = n.op, n.args
    t = [tan[arg] for arg in x]
    if op == "leaf":
        return tangents.get(n.attr)
    if op == "scalar":
        terms = []
        for s in sorted(n.attr.free_symbols, key=sympy.default_sort_key):
            ts = _scalar_tangent(s, tangents, owner)
            d = sympy.diff(n.attr, s) if ts is not None else 0
            if d != 0:
                terms.append(N.mul(d, ts))
        return _sum(terms)
    if all(v is None for v in t):
        return None
    if op == "add":
        return _sum([v if v.shape == n.shape else N.broadcast(v, n.shape) for v in t if v is not None])
    if op == "mul":
        return _sum([N.mul(*x[:k], v, *x[k + 1:]) for k, v in enumerate(t) if v is not None])
    if op == "power":
        return N.mul(n.attr, N.power(x[0], n.attr - 1), t[0])
    if op == "func":
        return N.mul(N.dfunc(n.attr, x[0]), t[0])
    if op == "matmul":
        return _sum([v for v in (None if t[0] is None else N.matmul(t[0], x[1]),
                                 None if t[1] is None else N.matmul(x[0], t[1])) if v is not None])
    one = {"T": lambda v: N.transpose(v), "sum": lambda v: N.total(v), "index": lambda v: N.index(v, *n.attr),
           "broadcast": lambda v: N.broadcast(v, n.shape), "scatter": lambda v: N.scatter(v, *n.attr, n.shape)}
    if op in one:
        return one[op](t[0])
    if op == "stack":
        return N.stack([N.scalar(0) if v is None else v for v in t])
    raise DerivationError(f"no forward-mode rule for the array operation {op!r}")
