"""Tests of the one table of supported functions (symode.expr.FUNCTIONS) and of every backend's registration.

Independent references: SymPy's own ``diff`` for the table's derivatives; mpmath's functions for the
domains and for the values each backend computes (at 40 digits); the spec parser's own refusals for what the
grammar accepts.
"""
from __future__ import annotations

import importlib

import casadi
import mpmath
import pytest
import sympy

from symode.errors import DerivationError, SpecError, TranslationError
from symode.expr import (
    ALLOWED_FUNCTIONS, FUNCTIONS, Unsupported, kink_switches, missing_implementations, parse_expression,
    register_backend, registered,
)
from symode.expr.functions import _REGISTRY

#: Tolerances, each with its reason (relative to max(1, |reference|)).
TOL = {
    # the table's derivative against SymPy's diff, both evaluated by mpmath at 40 digits: they are the same
    # function, so only the rounding of the two evaluations separates them
    "derivative": mpmath.mpf("1e-35"),
    # CasADi float64 on an exact double input against mpmath at 40 digits: one libm call (glibc: <= 2 ulps),
    # or a few correctly rounded operations for pow: well inside 1e-14
    "casadi": mpmath.mpf("1e-14"),
    # the Taylor oracle at digits=30 promises 30 correct digits
    "taylor": mpmath.mpf("1e-30"),
    # the text evaluator (mpmath at 40 digits) against SymPy's evaluation of the same function at 45 digits:
    # one mpmath function call, correct to about the working precision
    "text_evaluator": mpmath.mpf("1e-35"),
}

#: The backends and the modules that register them: every one must cover the table.
BACKENDS = {
    "casadi": "symode.casadi.translate",
    "heyoka": "symode.oracle.heyoka_engine",
    "taylor": "symode.oracle.tape",
    "mpmath": "symode.check.singularities",
}

x, y, w = sympy.symbols("x y w", real=True)

#: Sample arguments inside each domain and away from every kink (the kinks of abs, sign, Heaviside are at 0,
#: those of Max/Min where arguments are equal), as exact rationals.
R = sympy.Rational
SAMPLES = {
    "(-oo, oo)": [(R(3, 10),), (R(-17, 10),), (R(23, 10),)],
    "x != pi/2 + k*pi": [(R(3, 10),), (R(-11, 10),), (R(29, 10),)],
    "(0, oo)": [(R(3, 10),), (R(17, 10),), (R(9, 2),)],
    "[0, oo)": [(R(3, 10),), (R(17, 10),), (R(9, 2),)],
    "[-1, 1]": [(R(3, 10),), (R(-7, 10),), (R(9, 10),)],
    "(-1, 1)": [(R(3, 10),), (R(-7, 10),), (R(9, 10),)],
    "[1, oo)": [(R(13, 10),), (R(17, 10),), (R(9, 2),)],
}
TWO_ARGS = [(R(3, 10), R(7, 10)), (R(17, 10), R(-1, 2)), (R(9, 4), R(23, 10))]


def samples(f):
    if f.arity is None or f.arity == 2:
        return TWO_ARGS
    return SAMPLES[f.domain.interval]


def arguments(f):
    return (x, y) if f.arity is None or f.arity == 2 else (x,)


def mp(v) -> mpmath.mpf:
    return mpmath.mpf(sympy.N(v, 45)._mpf_) if v != 0 else mpmath.mpf(0)


def rel(a, b):
    return abs(a - b) / max(1, abs(b))


# -- the registry: every backend covers every function ------------------------------------------------------------
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_every_backend_implements_every_function(backend):
    importlib.import_module(BACKENDS[backend])
    assert backend in registered(), f"backend {backend} did not register its functions"
    missing = missing_implementations(backend)
    assert not missing, (f"backend {backend} ({BACKENDS[backend]}) has no implementation or explicit "
                         f"Unsupported(...) for: {', '.join(missing)}")


def test_every_registered_backend_is_checked():
    for module in BACKENDS.values():
        importlib.import_module(module)
    assert set(registered()) <= set(BACKENDS), "a backend registered functions without a test checking it"


def test_a_missing_function_is_named_and_a_typo_refused():
    # the check the test above relies on: a backend lacking one function is reported with that function
    everything = {f.name: object() for f in FUNCTIONS.values() if f.primitive}
    try:
        register_backend("toy", "primitives", {k: v for k, v in everything.items() if k != "tanh"})
        assert missing_implementations("toy") == ["tanh"]
        register_backend("toy", "primitives", {**everything, "tanh": Unsupported("no reason")})
        assert missing_implementations("toy") == []
        with pytest.raises(ValueError, match="sinn"):
            register_backend("toy", "primitives", {**everything, "sinn": object()})
        with pytest.raises(ValueError, match="covers"):
            register_backend("toy", "all", everything)
    finally:
        _REGISTRY.pop("toy", None)


# -- the table itself ---------------------------------------------------------------------------------------------
def test_grammar_is_the_parsers():
    names = {"x": x}
    for f in FUNCTIONS.values():
        if f.grammar:
            assert parse_expression(f"{f.name}(x)", names, "e") == f.sympy_function(x), f.name
        else:
            with pytest.raises(SpecError, match="unknown function"):
                parse_expression(f"{f.name}(x)", names, "e")
    assert ALLOWED_FUNCTIONS == tuple(f.name for f in FUNCTIONS.values() if f.grammar)


ARITHMETIC = (sympy.Add, sympy.Mul, sympy.Pow, sympy.Symbol, sympy.Rational, sympy.Integer, sympy.Number)


def _outside_table(expr) -> set[str]:
    heads = {f.head for f in FUNCTIONS.values() if f.primitive}
    return {type(n).__name__ for n in sympy.preorder_traversal(expr)
            if not isinstance(n, ARITHMETIC) and type(n) not in heads}


def test_heads_and_composites():
    for f in FUNCTIONS.values():
        built = f.sympy_function(*arguments(f))
        if f.primitive:
            assert type(built) is f.head, f.name
        else:  # a composite is built from the table's primitives only: no backend needs an entry for it
            assert not _outside_table(built), (f.name, _outside_table(built))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_derivative_is_sympys(name):
    f = FUNCTIONS[name]
    args = arguments(f)
    partials = f.derivative(*args)
    assert len(partials) == len(args)
    for i, arg in enumerate(args):
        reference = sympy.diff(f.sympy_function(*args), arg)
        for point in samples(f):
            sub = dict(zip(args, point))
            with mpmath.workdps(40):
                got, ref = mp(partials[i].xreplace(sub)), mp(reference.xreplace(sub))
                assert rel(got, ref) < TOL["derivative"], (name, arg, point, got, ref)


def test_derivatives_of_the_grammar_stay_in_the_table():
    # the sensitivity and adjoint systems contain first derivatives of the model: every backend must be able
    # to translate them, so they may use only the table's primitives (abs -> sign)
    for f in FUNCTIONS.values():
        if f.grammar:
            for d in f.derivative(*arguments(f)):
                assert not _outside_table(d), (f.name, d)


MPMATH = {"log": mpmath.log, "sqrt": mpmath.sqrt, "asin": mpmath.asin, "acos": mpmath.acos,
          "atanh": mpmath.atanh, "acosh": mpmath.acosh, "pow": mpmath.power}
PROBES = [-3, -1, R(-1, 2), 0, R(1, 2), 1, 3]


def _finite_real(fn, *args) -> bool:
    try:
        with mpmath.workdps(30):
            v = fn(*[mpmath.mpf(a.p) / a.q if isinstance(a, sympy.Rational) else mpmath.mpf(a) for a in args])
    except (ZeroDivisionError, ValueError):
        return False
    return isinstance(v, mpmath.mpf) and mpmath.isfinite(v)


def test_domains_agree_with_mpmath():
    checked = set()
    for f in FUNCTIONS.values():
        if f.domain.contains is None:
            continue
        checked.add(f.name)
        probes = [(p, q) for p in PROBES for q in (-2, R(-1, 2), 0, R(1, 3), 2)] if f.arity == 2 else \
            [(p,) for p in PROBES]
        for args in probes:
            inside = f.domain.contains(*args)
            assert inside == _finite_real(MPMATH[f.name], *args), (f.name, args, inside)
    assert checked == set(MPMATH)


def test_kink_switches():
    assert kink_switches(sympy.Abs(x - 1)) == (x - 1,)
    assert kink_switches(sympy.Heaviside(x, R(1, 2))) == (x,)
    # Max/Min: every pairwise difference, in either sign (SymPy orders the arguments its own way)
    unsigned = lambda switches: {frozenset((s, -s)) for s in switches}  # noqa: E731
    pairs = unsigned((x - y, x - w, y - w))
    assert unsigned(kink_switches(sympy.Max(x, y, w))) == pairs == unsigned(kink_switches(sympy.Min(x, y, w)))
    assert kink_switches(sympy.sin(x)) is None


def test_the_spec_writer_round_trips_every_grammar_function():
    from symode.spec import expr_to_text
    for name in ALLOWED_FUNCTIONS:
        e = FUNCTIONS[name].sympy_function(x + 1)
        assert parse_expression(expr_to_text(e), {"x": x}, "e") == e, name


# -- each backend does what it registered ----------------------------------------------------------------------
def _supported(backend):
    importlib.import_module(BACKENDS[backend])
    table = registered()[backend]
    ok = [FUNCTIONS[n] for n, impl in table.items() if FUNCTIONS[n].primitive and not isinstance(impl, Unsupported)]
    return ok, [FUNCTIONS[n] for n, impl in table.items() if isinstance(impl, Unsupported)]


def test_casadi_computes_what_it_registers():
    from symode.casadi.translate import to_casadi
    ok, refused = _supported("casadi")
    for f in ok:
        args = arguments(f)
        syms = [casadi.SX.sym(str(a)) for a in args]
        fn = casadi.Function("f", syms, to_casadi([f.sympy_function(*args)], dict(zip(args, syms))))
        for point in samples(f):
            got = float(fn(*[float(p) for p in point]))
            with mpmath.workdps(40):
                ref = mp(f.sympy_function(*point))
                assert rel(mpmath.mpf(got), ref) < TOL["casadi"], (f.name, point, got, ref)
    for f in refused:
        with pytest.raises(TranslationError, match=f.head.__name__):
            to_casadi([f.sympy_function(*arguments(f))], {x: casadi.SX.sym("x"), y: casadi.SX.sym("y")})


def test_taylor_computes_what_it_registers():
    # z' = f(params), z(0) = 0  =>  z(1) = f(params): the integrator evaluates f exactly once per step
    from symode.oracle.tape import TaylorSystem
    from symode.oracle.taylor import integrate, to_mpf
    z, t = sympy.symbols("z t", real=True)
    ok, refused = _supported("taylor")
    assert not refused
    for f in ok:
        args = arguments(f)
        system = TaylorSystem([z], [f.sympy_function(*args)], t, list(args))
        point = samples(f)[0]
        got = to_mpf(integrate(system, [0], 0, [1], list(point), digits=30)[0][0])
        with mpmath.workdps(40):
            ref = mp(f.sympy_function(*point))
            assert rel(got, ref) < TOL["taylor"], (f.name, got, ref)
    with pytest.raises(DerivationError, match="erf"):
        TaylorSystem([z], [sympy.erf(z)], t)


def test_heyoka_translates_what_it_registers():
    from symode.oracle import heyoka_engine
    if not heyoka_engine.available():
        pytest.skip("heyoka built without heyoka.real (MPFR)")
    ok, refused = _supported("heyoka")
    z, t = sympy.symbols("z t", real=True)
    tr = heyoka_engine._Translator([z], [x, y], t, 128, "exact")
    for f in ok:
        tr(f.sympy_function(*arguments(f)))  # no TranslationError
    for f in refused:
        with pytest.raises(TranslationError, match=f.head.__name__):
            tr(f.sympy_function(*arguments(f)))


def test_mpmath_text_evaluator_computes_what_it_registers():
    # the text evaluator of the singularity check, on each grammar function inside and outside its domain
    from symode.check.singularities import _strict_eval
    from symode.expr import parse_written
    for name in ALLOWED_FUNCTIONS:
        f = FUNCTIONS[name]
        written = parse_written(f"{name}(x)", {"x": x}, "e")
        for (point,) in samples(f):
            findings: list = []
            with mpmath.workdps(40):
                got = _strict_eval(written, {"x": mp(point)}, findings)
                ref = mp(f.sympy_function(point))
                assert not findings and rel(got, ref) < TOL["text_evaluator"], (name, point, got, ref, findings)
        if f.domain.contains is not None:  # a point outside the domain is a finding naming the function
            findings = []
            with mpmath.workdps(40):
                got = _strict_eval(written, {"x": mpmath.mpf(-1)}, findings)
            assert findings == [(f"{name}(x)", f"{name} of a negative number -1.0")] and mpmath.isnan(got)


def test_soft_keyword_names_in_the_text_evaluator():
    # "match", "case" and "type" are soft keywords: the parser reads them under mangled names; the text
    # evaluator once looked the mangled name up in the point and failed with a KeyError
    from symode.check.compare import removed_singularities
    found = removed_singularities("0*log(match) + type", {"match": 0, "type": 2})
    assert len(found) == 1 and "log of 0 in `log(match)`" in found[0]


def test_the_readme_lists_the_grammar():
    # the README is the user's contract: its list of callable functions is the table's, in the table's order
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = re.search(r"parentheses and the functions\s+`([a-z ]+)`", readme)
    assert listed is not None and tuple(listed.group(1).split()) == ALLOWED_FUNCTIONS
