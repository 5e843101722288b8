"""A model's right-hand side read back as a stack of dense layers, when it is one.

A ``[network]`` section (:mod:`.network`) -- or the same expression written by hand in ``[defs]`` -- gives
the right-hand side of its vector state z (size D) as array nodes of the form

    x_0 = z,   a_k = W_k·x_{k-1} [+ b_k] [+ Wt_k·t],   x_k = σ_k(a_k)   (k = 1..L),   dz/dt = x_L

with W_k an (out × in) parameter matrix, b_k and Wt_k parameter vectors of length out, t the model's time
symbol and σ_k an element-wise activation of :data:`ACTIVATIONS` or none (the identity).  :func:`dense_stack`
recognises that form from the nodes alone and returns its layers; any other right-hand side (another
operation, a parameter used as a scalar factor, a skip connection, a second state, a running cost) gives
None, and whoever asked uses the general path.  The recognition is exact: the layers describe the same
expression, element for element (:func:`stack_node` rebuilds it, and the tests compare the two).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import node as N

__all__ = ["ACTIVATIONS", "DenseLayer", "dense_stack", "stack_node"]

#: Element-wise activations a dense stack may use (the network section's, less the identity, which is no node).
ACTIVATIONS = ("tanh", "sigmoid", "softplus", "relu")


@dataclass(frozen=True)
class DenseLayer:
    """a = W·x [+ b] [+ wt·t], x_out = activation(a) (activation None: the identity)."""

    weight: N.Group             # (out, in) parameter matrix, row-major in θ
    bias: N.Group | None        # (out,) parameter vector
    time_weight: N.Group | None  # (out,) parameter vector multiplying t
    activation: str | None

    @property
    def n_out(self) -> int:
        return self.weight.dims[0]

    @property
    def n_in(self) -> int:
        return self.weight.dims[1]


def _param(n: N.Node, rank: int, size: int | None = None) -> N.Group | None:
    """The parameter group of leaf ``n`` if it has ``rank`` dimensions (and ``size`` rows), else None."""
    if n.op != "leaf" or n.attr.kind != "param" or len(n.attr.dims) != rank:
        return None
    return n.attr if size is None or n.attr.dims[0] == size else None


def _affine(pre: N.Node, t) -> tuple | None:
    """(W, input node, b, wt) of ``pre`` = W·x [+ b] [+ wt·t] (terms in any order), or None."""
    terms = pre.args if pre.op == "add" else (pre,)
    products = [a for a in terms if a.op == "matmul"]
    if len(products) != 1:
        return None
    W = _param(products[0].args[0], 2)
    if W is None:
        return None
    x, out = products[0].args[1], W.dims[0]
    bias = time_weight = None
    for a in terms:
        if a is products[0]:
            continue
        if bias is None and _param(a, 1, out) is not None:
            bias = a.attr
        elif (time_weight is None and a.op == "mul" and len(a.args) == 2 and a.args[0].op == "scalar"
              and a.args[0].attr == t and _param(a.args[1], 1, out) is not None):
            time_weight = a.args[1].attr
        else:
            return None
    return W, x, bias, time_weight


def dense_stack(structure, t) -> tuple[DenseLayer, ...] | None:
    """The layers of ``structure``'s right-hand side (a :class:`~symode.model.Structure`; ``t`` the model's time
    symbol), first layer first, or None when it is not a dense stack of one vector state (module docstring)."""
    if structure is None or structure.running is not None:
        return None
    states = structure.state_groups
    if len(states) != 1 or len(states[0].dims) != 1 or len(structure.rhs) != 1:
        return None
    state = N.leaf(states[0])
    node = structure.rhs[0]
    if not isinstance(node, N.Node) or node.shape != state.shape:
        return None
    layers = []
    while node != state:
        activation = None
        if node.op == "func":
            if node.attr not in ACTIVATIONS:
                return None
            activation, node = node.attr, node.args[0]
        parts = _affine(node, t)
        if parts is None:
            return None
        W, x, bias, time_weight = parts
        if x.shape != (W.dims[1], 1):
            return None  # pragma: no cover  (matmul checked the shapes when the node was built)
        layers.append(DenseLayer(W, bias, time_weight, activation))
        node = x
    if not layers:
        return None
    return tuple(reversed(layers))


def stack_node(layers, state: N.Group, t) -> N.Node:
    """The right-hand side node that ``layers`` describe (the inverse of :func:`dense_stack`)."""
    x = N.leaf(state)
    for layer in layers:
        terms = [N.matmul(N.leaf(layer.weight), x)]
        if layer.bias is not None:
            terms.append(N.leaf(layer.bias))
        if layer.time_weight is not None:
            terms.append(N.mul(N.leaf(layer.time_weight), t))
        a = N.add(*terms)
        x = a if layer.activation is None else N.func(layer.activation, a)
    return x
