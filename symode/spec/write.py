"""Writing specs: a model back to spec TOML text, and exact numbers and expressions as spec text."""
from __future__ import annotations

import json
from decimal import Decimal, localcontext

import sympy

from ..arrays import node as N
from ..errors import SpecError
from ..expr import FUNCTIONS, parse_decimal
from ..model import Model, squared_error_terms
from ..number_text import integer_text

__all__ = ["dump_spec", "decimal_text", "expr_to_text"]


# -- writing specs ------------------------------------------------------------------------------------------------
#: SymPy functions written back under their own name: the grammar's primitives whose SymPy class has the
#: grammar name (sin ... asinh; Abs is written "abs" by the printer; sqrt, sigmoid and softplus are powers,
#: exp and log in SymPy and are written as such).
_DUMP_FUNCS = {f.name for f in FUNCTIONS.values() if f.grammar and f.primitive and f.head.__name__ == f.name}


def decimal_text(v, field: str) -> str:
    """Exact decimal text of a rational number with a terminating expansion (else SpecError).

    Used wherever symode writes numbers for others to read (spec files, golden files): the text parses back
    to exactly the same rational.
    """
    if not isinstance(v, sympy.Rational):
        raise SpecError(f"{field}: {v} is not a rational number; exact decimals only")
    q = r = int(v.q)
    for f in (2, 5):
        while r % f == 0:
            r //= f
    if r != 1:
        raise SpecError(f"{field}: {v} has no finite decimal expansion; exact decimals only")
    # exact: q divides a power of ten no larger than q**2, and the context gets enough digits for that
    with localcontext() as ctx:
        ctx.prec = len(str(abs(int(v.p)))) + 2 * len(str(q)) + 5
        text = format((Decimal(int(v.p)) / Decimal(q)).normalize(), "f")
    parse_decimal(text, field)  # what symode writes it must read back: the reader's caps, the reader's message
    return text


def expr_to_text(expr, field: str = "expression", symbol_text: dict | None = None) -> str:
    """Spec-grammar text of a SymPy expression (round-trips through :func:`symode.expr.parse_expression`).

    Refuses anything the grammar cannot express exactly (binary floats, constants such as pi, other functions).
    ``symbol_text`` gives the text of some symbols (an array's element ``z_0`` is written ``z[0]``); ``Max(x, 0)``
    is written ``relu(x)``.
    """
    symbol_text = symbol_text or {}
    from sympy.printing.str import StrPrinter

    class _Printer(StrPrinter):
        def _print_Integer(self, e):
            return integer_text(e.p)

        def _print_Rational(self, e):
            return f"{integer_text(e.p)}/{integer_text(e.q)}"

        def _print_Float(self, e):
            raise SpecError(f"{field}: the binary float {e} cannot be written exactly; use sympy.Rational")

        def _print_Abs(self, e):
            return f"abs({self._print(e.args[0])})"

        def _print_Function(self, e):
            name = type(e).__name__
            if name not in _DUMP_FUNCS:
                raise SpecError(f"{field}: the function {name!r} is not in the spec grammar")
            return f"{name}({self._print(e.args[0])})"

        def _print_Exp1(self, e):
            return "exp(1)"

        def _print_NumberSymbol(self, e):
            raise SpecError(f"{field}: the constant {e} is not in the spec grammar")

        _print_Pi = _print_NumberSymbol

        def _print_ImaginaryUnit(self, e):
            raise SpecError(f"{field}: complex numbers are not in the spec grammar")

        def _print_Symbol(self, e):
            return symbol_text.get(e, e.name)

        def _print_Max(self, e):
            if len(e.args) == 2 and 0 in e.args:
                return f"relu({self._print(e.args[1] if e.args[0] == 0 else e.args[0])})"
            raise SpecError(f"{field}: Max of {e.args} is not in the spec grammar (only relu(x) = Max(x, 0))")

    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Function, sympy.Abs)) and not isinstance(node, sympy.Abs) \
                and type(node).__name__ not in _DUMP_FUNCS:
            raise SpecError(f"{field}: the function {type(node).__name__!r} is not in the spec grammar")
    return _Printer({"order": "none"}).doprint(expr)


def _toml_str(s: str) -> str:
    # JSON's string escapes (\\, \", \n, \uXXXX) are all valid TOML basic-string escapes
    return json.dumps(s, ensure_ascii=True)


def dump_spec(model: Model) -> str:
    """The model as spec TOML text: ``load_spec(dump_spec(m))`` gives a model with the same fingerprint.

    Observation terms are written as data when they have the default squared-error form, else as ``terms``
    (one expression per time).  A structured model is written with its arrays, named terms and matrix
    expressions (a ``[network]`` as the named terms it stands for).  Numbers beyond the reader's caps in a
    number-only field, or anything else :func:`load_spec` would refuse, raise :class:`SpecError`: the text is
    read back before it is returned, so symode never writes a spec it cannot read.
    """
    text = _spec_text(model)
    from .parse import load_spec
    try:
        load_spec(text, source="<written spec>")
    except SpecError as exc:
        raise SpecError(f"model {model.name!r} cannot be written as a spec that reads back: {exc}") from None
    return text


def _spec_text(model: Model) -> str:
    from .write_arrays import NodeText, element_texts
    st = model.structure
    write = NodeText(element_texts(model.groups), "expression")
    lines = [f"name = {_toml_str(model.name)}"]
    if model.description:
        lines.append(f"description = {_toml_str(model.description)}")
    sgroups = [g for g in model.groups if g.kind == "state"]
    lines.append("states = [" + ", ".join(_toml_str(g.name) if not g.is_array else
                                          f"{{name = {_toml_str(g.name)}, size = {g.size}}}" for g in sgroups) + "]")
    rhs, z0 = (st.rhs, st.z0) if st is not None else (model.rhs, model.z0)
    for key, values in (("rhs", rhs), ("z0", z0)):
        if st is not None and key == "rhs":  # named terms first: the right-hand sides use their names
            for n, v in st.defs:
                write.named[v] = n
        items = []
        for i, v in enumerate(values):
            write.field = f"{key}[{i}]"
            if isinstance(v, N.Node) and v.op == "stack":
                items.append("[" + ", ".join(_toml_str(write(x)) for x in v.args) + "]")
            else:
                items.append(_toml_str(write(v)))
        lines.append(f"{key} = [" + ", ".join(items) + "]")
    lines.append(f"t0 = {_toml_str(decimal_text(model.t0, 't0'))}")
    lines.append(f"t1 = {_toml_str(decimal_text(model.t1, 't1'))}")
    lines += ["", "[params]"]
    pv = model.param_values
    for g in model.groups:
        if g.kind != "param":
            continue
        vals = [_toml_str(decimal_text(pv[e], f"params.{e.name}")) for e in g.elements]
        if not g.is_array:
            lines.append(f"{g.name} = {vals[0]}")
        elif len(g.dims) == 1:
            lines.append(f"{g.name} = [" + ", ".join(vals) + "]")
        else:
            c = g.shape[1]
            lines.append(f"{g.name} = [" + ", ".join("[" + ", ".join(vals[r * c:(r + 1) * c]) + "]"
                                                  for r in range(g.shape[0])) + "]")
    if st is not None and st.defs:
        lines += ["", "[defs]"]
        write.named = {}
        for n, v in st.defs:
            write.field = f"defs.{n}"
            lines.append(f"{n} = {_toml_str(write(v))}")
            write.named[v] = n
    lines += ["", "[loss]"]
    terminal, running = (st.terminal, st.running) if st is not None else (model.terminal, model.running)
    for key, v in (("terminal", terminal), ("running", running)):
        if v is not None:
            write.field = f"loss.{key}"
            lines.append(f"{key} = {_toml_str(write(v))}")
    if model.observation_times:
        values = [v for _, v in st.observations] if st is not None else [o.term for o in model.observations]
        rows = [None if isinstance(v, N.Node) else _sse_row(model, v) for v in values]
        lines += ["", "[loss.observations]"]
        lines.append("times = [" + ", ".join(_toml_str(decimal_text(tm, "loss.observations.times"))
                                             for tm in model.observation_times) + "]")
        if all(r is not None for r in rows):
            lines.append("data = [" + ", ".join("[" + ", ".join(_toml_str(decimal_text(v, f"loss.observations.data[{i}]"))
                                                                for v in r) + "]" for i, r in enumerate(rows)) + "]")
        else:
            terms = []
            for i, v in enumerate(values):
                write.field = f"loss.observations.terms[{i}]"
                terms.append(_toml_str(write(v)))
            lines.append("terms = [" + ", ".join(terms) + "]")
    return "\n".join(lines) + "\n"


def _sse_row(model: Model, term):
    """The data row d if ``term`` is exactly Σ_j (z_j - d_j)², else None."""
    row = []
    for z in model.states:
        c = sympy.diff(term, z).subs({s: 0 for s in model.states})  # = -2 d_j for the SSE form
        row.append(-c / 2)
    candidate = squared_error_terms(model.states, [row])[0]
    return row if sympy.expand(candidate - term) == 0 else None
