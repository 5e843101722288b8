"""The spec's ``[network]`` section: a dense feed-forward network as the right-hand side of a vector state.

    [network]
    hidden = [64]               # widths of the hidden layers ([] gives the linear model W1·z + b1)
    activation = "tanh"         # one for every hidden layer, or a list with one per layer
    output_activation = "identity"
    time_input = false          # true: the first layer also sees t through a weight vector Wt1
    state = "z"                 # optional: the vector state it drives (default: the only state)

gives, for hidden widths H1 ... H_{L-1} and the state z of size D,

    a1 = W1·z + b1 (+ Wt1·t),   h1 = σ1(a1),   a_k = W_k·h_{k-1} + b_k,   h_k = σ_k(a_k),
    dz/dt = σ_out(W_L·h_{L-1} + b_L)

with parameters W_k (out × in matrix) and b_k (vector), which the spec gives in ``[params]`` or its
``params_file``; their shapes are checked.  Activations: tanh, sigmoid (1/(1+e^-x)), softplus (log(1+e^x)),
relu (max(x, 0): a kink at 0, flagged where an evaluation sits on it) and identity.
"""
from __future__ import annotations

from ..errors import SpecError
from . import node as N

ACTIVATIONS = ("tanh", "sigmoid", "softplus", "relu", "identity")
_KEYS = {"hidden", "activation", "output_activation", "time_input", "state"}
#: Most hidden layers and the widest layer accepted (far beyond what a dense network in an ODE needs).
MAX_LAYERS, MAX_WIDTH = 32, 65536


def _activation(value, field: str) -> str:
    if value not in ACTIVATIONS:
        raise SpecError(f"{field}: unknown activation {value!r}; choose one of {', '.join(ACTIVATIONS)}")
    return value


def network_rhs(table, state: N.Group, params: dict[str, N.Group], taken: set, t):
    """``(defs, rhs)`` for a ``[network]`` table: named layer terms and the column node dz/dt.

    ``params`` maps parameter names to their groups; ``taken`` holds every declared name (the layer terms get
    names a1, h1, ... not among them); ``t`` is the model's time symbol (a time input multiplies it).
    """
    if not isinstance(table, dict):
        raise SpecError("network: expected a table ([network])")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise SpecError(f"network: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}")
    hidden = table.get("hidden")
    if not isinstance(hidden, list) or not all(type(h) is int and 1 <= h <= MAX_WIDTH for h in hidden):
        raise SpecError(f"network.hidden: give a list of hidden layer widths (integers 1..{MAX_WIDTH}), e.g. [64]")
    if len(hidden) > MAX_LAYERS:
        raise SpecError(f"network.hidden: at most {MAX_LAYERS} hidden layers")
    act = table.get("activation", "tanh")
    acts = act if isinstance(act, list) else [act] * len(hidden)
    if len(acts) != len(hidden):
        raise SpecError(f"network.activation: {len(acts)} activations for {len(hidden)} hidden layers")
    acts = [_activation(a, f"network.activation[{i}]") for i, a in enumerate(acts)]
    out_act = _activation(table.get("output_activation", "identity"), "network.output_activation")
    time_input = table.get("time_input", False)
    if not isinstance(time_input, bool):
        raise SpecError("network.time_input: expected true or false")
    D = state.shape[0]
    widths = [D, *hidden, D]
    defs = []
    x = N.leaf(state)
    for k in range(1, len(widths)):
        W = _param(params, f"W{k}", (widths[k], widths[k - 1]), f"layer {k}")
        b = _param(params, f"b{k}", (widths[k],), f"layer {k}")
        a = N.add(N.matmul(W, x), b)
        if k == 1 and time_input:
            a = N.add(a, N.mul(_param(params, "Wt1", (widths[1],), "the time input"), t))
        last = k == len(widths) - 1
        act_k = out_act if last else acts[k - 1]
        if last:
            x = N.func(act_k, a)
            break
        a_name = N.fresh_name(f"a{k}", taken)
        defs.append((a_name, a))
        x = N.func(act_k, a)
        if act_k != "identity":
            defs.append((N.fresh_name(f"h{k}", taken), x))
    return defs, x


def _param(params: dict, name: str, dims: tuple, what: str) -> N.Node:
    g = params.get(name)
    shape_text = "x".join(map(str, dims))
    kind = "matrix" if len(dims) == 2 else "vector"
    if g is None:
        raise SpecError(f"network: {what} needs the parameter {name} (a {shape_text} {kind}); give it in [params] "
                        f"or in the params_file")
    if tuple(g.dims) != dims:
        got = "x".join(map(str, g.dims)) or "scalar"
        raise SpecError(f"params.{name}: the network's {what} needs a {shape_text} {kind}, got {got}")
    return N.leaf(g)
