"""The array form of the export: a structured (network) model's expressions as matrix operations, not scalars.

A structured model (:attr:`symode.model.Model.structure`) keeps its states and parameters as vectors and
matrices and its right-hand side as an array expression (:mod:`symode.arrays.node`): W2·tanh(W1·z + b1) + b2.
:func:`array_function` emits such an expression for torch or JAX with the matrix structure intact -- one ``@``
per matrix product, whole-array element-wise functions -- so the exported code grows with the number of array
operations, not with the number of weights.  The emitted functions keep the flat interface of
:mod:`symode.interop.emit` (``z[..., k]``, ``p[..., k]`` in the model's flat order, row-major inside a matrix).

Values: every array node is a tensor of shape ``(..., rows, cols)`` (a column vector ``(..., n, 1)``, a scalar
``(..., 1, 1)``), leading dimensions a batch; a group is a reshaped slice of the flat vector (``_grp``); a
``scalar`` node (a SymPy expression in element symbols, t and numbers) goes through the scalar emitter and is
lifted to ``(..., 1, 1)`` (``_lift``).  An element-wise function emits its scalar meaning (the parser's
definition: sigmoid(x) = 1/(1 + e^-x), softplus(x) = log(1 + e^x)) on the whole array, so both forms compute the
same formula; ``relu`` is max(x, 0).  ``dfunc`` and ``scatter`` (derivation-only operations) are refused.
"""
from __future__ import annotations

import sympy

from ..errors import TranslationError

__all__ = ["ARRAY_PRELUDES", "array_function", "scalar_symbols"]

ARRAY_PRELUDES = {
    "torch": '''
def _grp(v, offset, rows, cols):
    return v[..., offset:offset + rows * cols].reshape(*v.shape[:-1], rows, cols)


def _lift(x, like):
    if not isinstance(x, torch.Tensor):
        x = torch.full(like.shape[:-1], float(x), dtype=like.dtype, device=like.device)
    return x[..., None, None]


def _flatcat(values, like):
    batch = like.shape[:-1]
    return torch.cat([v.expand(*batch, *v.shape[-2:]).reshape(*batch, -1) for v in values], dim=-1)
''',
    "jax": '''
def _grp(v, offset, rows, cols):
    return v[..., offset:offset + rows * cols].reshape(v.shape[:-1] + (rows, cols))


def _lift(x, like):
    return jnp.asarray(x, dtype=like.dtype)[..., None, None]


def _flatcat(values, like):
    batch = like.shape[:-1]
    return jnp.concatenate([jnp.broadcast_to(v, batch + v.shape[-2:]).reshape(batch + (-1,)) for v in values],
                           axis=-1)
''',
}

_OPS = {
    "torch": {"T": "{0}.transpose(-1, -2)", "sum": "{0}.sum(dim=(-2, -1), keepdim=True)",
              "stack": "torch.cat([{all}], dim=-2)", "relu": "torch.relu({0})",
              "broadcast": "{0}.expand(*{0}.shape[:-2], {r}, {c})"},
    "jax": {"T": "jnp.swapaxes({0}, -1, -2)", "sum": "jnp.sum({0}, axis=(-2, -1), keepdims=True)",
            "stack": "jnp.concatenate([{all}], axis=-2)", "relu": "jnp.maximum({0}, 0.0)",
            "broadcast": "jnp.broadcast_to({0}, {0}.shape[:-2] + ({r}, {c}))"},
}


def _group_offsets(model) -> dict:
    """Group -> (vector name, offset) in the flat z / p."""
    out, offs = {}, {"state": 0, "param": 0}
    for g in model.structure.groups:
        out[g] = ("z" if g.kind == "state" else "p", offs[g.kind])
        offs[g.kind] += g.size
    return out


def array_function(writer, model, value, like: str) -> str:
    """Emit ``value`` (an array node or a scalar SymPy expression) with ``writer`` (a scalar-emitter
    ``_Writer`` of the function being built); returns the code naming a ``(..., rows, cols)`` value."""
    from ..arrays import node as N
    if not isinstance(value, N.Node):
        return writer.local(f"_lift({writer.emit(sympy.sympify(value))}, {like})")
    b = writer.b.name
    if b not in _OPS:
        raise TranslationError(f"no array form for the {b} backend")
    ops = _OPS[b]
    offsets = _group_offsets(model)
    memo: dict = {}
    for n in N.walk([value]):
        a = [memo[x] for x in n.args]
        op = n.op
        if op == "leaf":
            vec, off = offsets[n.attr]
            code = f"_grp({vec}, {off}, {n.shape[0]}, {n.shape[1]})"
        elif op == "scalar":
            code = f"_lift({writer.emit(n.attr)}, {like})"
        elif op in ("add", "mul"):
            code = (" + " if op == "add" else " * ").join(a)
        elif op == "power":
            code = f"{a[0]} ** {writer.number(n.attr)}"
        elif op == "func":
            code = _func(writer, n.attr, a[0], ops)
        elif op == "matmul":
            code = f"{a[0]} @ {a[1]}"
        elif op == "index":
            i, j = n.attr
            code = f"{a[0]}[..., {i}:{i + 1}, {j}:{j + 1}]"
        elif op in ("T", "sum"):
            code = ops[op].format(a[0])
        elif op == "stack":
            code = ops["stack"].format(all=", ".join(a))
        elif op == "broadcast":
            code = ops["broadcast"].format(a[0], r=n.shape[0], c=n.shape[1])
        else:
            raise TranslationError(f"no export for the array operation {op!r} (it appears in derivations only)")
        memo[n] = code if op == "func" else writer.local(code)  # a function's code is already a local
    return memo[value]


def scalar_symbols(values) -> set:
    """The scalar symbols the emitted code reads one by one: those inside ``scalar`` nodes and scalar values
    (a group's elements are read as a whole array by ``_grp``, never bound one by one)."""
    from ..arrays import node as N
    out: set = set()
    for v in values:
        if v is None:
            continue
        if not isinstance(v, N.Node):
            out |= sympy.sympify(v).free_symbols
            continue
        for n in N.walk([v]):
            if n.op == "scalar":
                out |= n.attr.free_symbols
    return out


def _func(writer, name: str, arg: str, ops: dict) -> str:
    from ..arrays.node import FUNCTIONS
    if name == "relu":
        return ops["relu"].format(arg)
    u = sympy.Dummy("u", real=True)
    writer.leaves[u] = arg
    return writer.emit(FUNCTIONS[name](u))
