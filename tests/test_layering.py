"""The layering rules of docs/design.md, checked on every import statement of the package (lazy imports inside
functions included): a layer uses only the layers its rule names.

The reference is the table below, which docs/design.md states in words; a new dependency between layers is a
design decision, made by editing both.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "symode"

# errors, _version, lru; the neutral helpers suggest (names for messages) and supervise (process lifetimes)
BASE = {"errors", "_version", "lru", "suggest", "supervise"}
#: layer (first component below symode) -> the layers it may import (besides itself and BASE)
ALLOWED = {
    "errors": set(), "_version": set(), "lru": set(), "suggest": set(), "supervise": set(),
    "expr": set(),
    # reading user files (bounded, regular files only), writing exact numbers as readable text, output targets
    "inputs": {"expr"}, "number_text": {"expr"}, "outputs": set(),
    # array expressions (the matrix form of a model): the model's vocabulary, below the model
    "arrays": {"expr", "inputs"},
    "model": {"expr", "arrays"},
    "result": set(),
    "route": set(),
    "plots": set(),
    "spec": {"expr", "inputs", "model", "arrays", "number_text"},
    "library": {"expr", "model", "spec"},
    # derivations know no numeric backend, so the oracle and CasADi can be checked against them
    "symbolic": {"expr", "model", "arrays"},
    # the reference shares no code with what it checks: no CasADi, no codegen, no check (sweep: an executor)
    "oracle": {"expr", "inputs", "model", "result", "route", "spec", "symbolic", "arrays", "sweep"},
    # float64 routes: no oracle, no codegen, no check
    "casadi": {"expr", "model", "result", "route", "registry", "symbolic", "arrays"},
    # the compiled discrete route and the handle return GradResults and declare a route
    # a dense network's step is written from its array nodes (arrays/layers.py), as casadi/ translates them
    "codegen": {"arrays", "expr", "model", "casadi", "library", "symbolic", "result", "route"},
    "registry": {"route"},
    "methods": {"model", "registry", "result"},
    "schema": {"registry"},
    # judges routes by what they declare
    "check": {"casadi", "expr", "methods", "model", "registry", "result", "route", "symbolic"},
    # symbolic verdicts first; claims about a model's solution that SymPy cannot prove go through the oracle
    # (compute(model, "oracle") and its Taylor integrator), never a float64 route; a ```spec block is read by the
    # spec parser and its arrays checked in matrix form
    "verify": {"expr", "model", "symbolic", "oracle", "methods", "arrays", "spec"},
    # training refits models: a structured model's fit is built from its array nodes (arrays/, like model); its
    # default gradient is the compiled discrete adjoint (codegen's handle)
    "train": {"arrays", "casadi", "check", "codegen", "expr", "library", "methods", "model", "oracle", "plots",
              "registry", "result", "route", "symbolic"},
    "demo": {"check", "codegen", "library", "methods", "plots", "symbolic", "train", "verify"},
    # runs independent cases serially, on a process pool or a Dask cluster: knows nothing of what it runs
    "sweep": set(),
    # other libraries on symode's models: export, adapters (registered routes), audits, exact discrete references
    "interop": {"arrays", "casadi", "expr", "library", "methods", "model", "oracle", "plots", "registry", "result",
                "route", "spec", "sweep", "symbolic"},
    # symode as a test oracle for other projects: comparisons, references, the pytest plugin
    "testing": {"casadi", "check", "codegen", "expr", "inputs", "library", "methods", "model", "oracle", "registry",
                "result", "spec", "symbolic"},
    "cli": None,  # anything: nothing imports the command line
    "__init__": None,  # the public names
}
#: (importing module, imported module) pairs that break the table, each with its reason
EXCEPTIONS = {
    ("symode.methods", "symode.check.compare"):
        "compute() flags a kink at the evaluation point with check's singularity analysis",
    ("symode.methods", "symode.check.kinks"):
        "compute() flags kinks the solution crosses inside the interval with check's kink analysis",
    ("symode.oracle.routes", "symode.verify.features"):
        "the oracle locates narrow features in time of a model (a spike exp(-1e10*(t - 0.3)**2) its Taylor steps "
        "would pass over) with the verifier's rigorous search in flint ball arithmetic (verify/balls.py), which "
        "has no home below; it shares no code with the float64 routes the oracle checks",
    ("symode.oracle.export", "symode.interop.discrete"):
        "golden files carry the exact discrete gradients of fixed-step schemes (--fixed-step), computed in interop "
        "because they evaluate the CasADi routes' grid and tableaux in high precision",
}


@functools.lru_cache(maxsize=None)
def _imports() -> tuple:
    """(module, imported symode module) for every import statement in the package."""
    out = []
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        mod = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        pkg = mod if parts[-1] == "__init__" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("symode"):
                    continue
                # `from .. import plots` imports the module symode.plots
                subs = [f"{target}.{a.name}" for a in node.names
                        if (PACKAGE.parent / f"{target}.{a.name}".replace(".", "/")).with_suffix(".py").exists()
                        or (PACKAGE.parent / f"{target}.{a.name}".replace(".", "/")).is_dir()]
                out += [(mod, t) for t in (subs or [target])]
            elif isinstance(node, ast.Import):
                out += [(mod, a.name) for a in node.names if a.name.startswith("symode")]
    return tuple(out)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_layer_is_in_the_table():
    layers = {_layer(m) for m, _ in _imports()} | {_layer(t) for _, t in _imports()}
    assert layers <= set(ALLOWED), sorted(layers - set(ALLOWED))


def test_no_layer_imports_one_it_may_not():
    bad = []
    for mod, target in _imports():
        src, dst = _layer(mod), _layer(target)
        allowed = ALLOWED[src]
        if allowed is None or dst == src or dst in BASE or dst in allowed:
            continue
        if (mod, target) not in EXCEPTIONS:
            bad.append(f"{mod} imports {target}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("pair", sorted(EXCEPTIONS))
def test_each_listed_exception_still_exists(pair):
    # an exception that is gone must leave the list, so the list stays the true set of exceptions
    assert pair in set(_imports()), pair


def test_nothing_imports_the_command_line_and_inner_modules_not_the_package():
    for mod, target in _imports():
        assert _layer(target) != "cli" or _layer(mod) == "cli", (mod, target)
        # the version and every other name come from their own modules, not from symode/__init__.py
        assert target != "symode" or mod == "symode", (mod, target)
