"""Golden case files: a model and its oracle reference values, one JSON file per model (a public contract).

``symode oracle export MODEL... --out DIR [--digits D] [--points N --seed S] [--fixed-step SCHEME:STEPS]...``
writes ``DIR/<model name>.json`` (JSON Schema: ``symode/schemas/golden.schema.json``)::

    {"format": "symode-golden", "format_version": 1,
     "model": "logistic",
     "spec": "name = \\"logistic\\"\\n...",          # the model as spec TOML (symode.spec.dump_spec)
     "params": {"r": "1.3", "K": "2"},              # exact decimal strings, in the model's parameter order
     "t0": "0", "t1": "3",
     "z0": ["0.1"],                                 # z0(params): exact decimals (else `digits` digits)
     "digits": 30,
     "reference": {...},                            # the `symode grad MODEL --method oracle --json` object
     "error_bound": "1e-29",                        # relative bound on every reference value
     "conventions": {...},                          # what the values mean (signs, total derivatives)
     "generator": "symode 0.1.0",
     "points": [{"params", "z0", "t0", "t1", "reference", "error_bound",   # one per parameter point;
                 "fixed_step": [{"scheme": "rk4", "steps": 100,           # point 0 repeats the top level
                                 "reference": {...}, "error_bound"}]}],   # (only with --fixed-step)
     "seed": 7}                                     # only with --points N > 1

Point 0 holds the model's own parameter values; with ``--points N`` points 1..N-1 are drawn from ``--seed``
(:func:`point_values`).  A ``fixed_step`` entry is the exact gradient of that scheme with that many steps
(:mod:`symode.interop.discrete`), for implementations that must match a discrete gradient, not the ODE's.
The top-level params/t0/t1/reference/error_bound are point 0's, so readers of the first version of the format
keep working.  The spec text alone rebuilds the model (``symode.spec.load_spec``); params, z0, t0 and t1
repeat its numbers for readers that do not parse TOML.  The values are computed for the model as its spec text
reads back (``load_spec(dump_spec(model))``), so the file's spec and its numbers always belong together.

Every point is a pure function of serializable inputs (:func:`golden_point`: spec text, digits, parameter
values), so the points of an export run as a sweep (:mod:`symode.sweep`): with ``--points`` on a local process
pool by default or on a Dask cluster (``--scheduler tcp://HOST:PORT``); the files are byte-identical whichever
runs them.  Without ``--points`` (one point per model) the oracle runs in the calling process.

Computing (:func:`golden_cases`) and writing (:func:`write_golden`) are separate steps; the command line runs
the first under the time and memory budget of work on untrusted specs (``SYMODE_DERIVE_SECONDS``,
``SYMODE_DERIVE_MEMORY_MB``; a sweep's worker processes inherit the memory limit and die with it).
Writing is all-or-nothing: every model is resolved and computed first, then every file is written to a
temporary file in DIR and only when all were written are they renamed into place (``os.replace``, atomic per
file).  A bad model name, a failed solve or an unwritable directory leaves DIR as it was.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


from .._version import __version__
from ..errors import SpecError, SymodeError
from ..inputs import read_user_file, user_text
from ..model import Model
from ..spec import MODEL_NAME_RE, decimal_text, dump_spec, load_spec
from .engine import oracle_gradient

__all__ = ["GOLDEN_FORMAT", "GOLDEN_FORMAT_VERSION", "golden_case", "golden_case_from_spec", "golden_point",
           "point_values", "check_options", "golden_cases", "export_golden", "check_export", "golden_paths", "write_golden",
           "load_golden", "check_golden", "MAX_POINTS", "MAX_GOLDEN_BYTES"]

GOLDEN_FORMAT = "symode-golden"
GOLDEN_FORMAT_VERSION = 1
#: Most parameter points in one golden file.
MAX_POINTS = 10_000
#: Largest golden file written or read: a spec of at most 1 MB plus the reference values of many points (a file
#: symode would write beyond it is refused before writing: fewer --points per file).
MAX_GOLDEN_BYTES = 256_000_000
_KEYS = ("format", "format_version", "model", "spec", "params", "t0", "t1", "digits", "reference", "error_bound",
         "generator")


#: What the reference values mean, stored in every golden file so that it explains itself to a reader who has
#: never seen symode (the same statements as README.md "Conventions" and symode/symbolic/derive.py).
CONVENTIONS = {
    "problem": "dz/dt = f(z, t, params), z(t0) = z0(params); L = l(z(t1)) + sum_i l_i(z(t_i)) + integral_{t0}^{t1} "
               "r(z, t) dt with the terms of the spec; an observation term is the plain sum of squared errors "
               "sum_j (z_j(t_i) - data_ij)^2 (no 1/2, no weights)",
    "grad": "total dL/dparams: the chain through z0(params) is included",
    "grad_z0": "dL/dz0 with z0 treated as a free input, in the order of the spec's states",
    "grad_t0": "dL/dt0 = -lambda(t0)^T f(z0, t0) - r(z0, t0), lambda = dL/dz(t): observation times stay fixed",
    "grad_t1": "dL/dt1 = dl/dz(z(t1)) f(z(t1), t1) + r(z(t1), t1), observation times fixed; absent where an "
               "observation lies exactly at t1 (one-sided there)",
    "error_bound": "bound on the relative error of every value, relative to max(|value|, 1e-8)",
    "numbers": "decimal strings; spec numbers are exact decimals (0.1 means 1/10)",
}


def _number_text(v, digits: int) -> str:
    """Exact decimal text where the number has a terminating expansion, else ``digits`` significant digits."""
    import mpmath
    import sympy
    v = sympy.nsimplify(v) if not isinstance(v, sympy.Basic) else v
    try:
        return decimal_text(v, "value")
    except SpecError:
        with mpmath.workdps(digits + 10):
            return mpmath.nstr(mpmath.mpf(sympy.N(v, digits + 10)), digits, strip_zeros=False)


def check_options(points, seed, fixed_steps=()) -> tuple:
    """Refuse bad ``--points``/``--seed``/``--fixed-step`` values before any work; returns the parsed fixed-step
    references ((scheme, steps), ...)."""
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_POINTS:
        raise SpecError(f"--points must be an integer from 1 to {MAX_POINTS}, got {points!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"--seed must be a non-negative integer, got {seed!r}")
    return _parse_fixed(fixed_steps)


def point_values(model: Model, points: int, seed: int) -> list[dict]:
    """Parameter points of a golden file: point 0 is the model's own values; points 1..N-1 multiply each value by
    1 + u with u uniform in [-0.25, 0.25] (a value 0 becomes u), rounded to 4 significant digits, from
    ``random.Random(seed)`` (the same points on every platform and Python version).  Decimal strings."""
    import random
    from decimal import Decimal
    check_options(points, seed)
    nominal = {p.name: decimal_text(model.param_values[p], f"params.{p.name}") for p in model.params}
    out = [nominal]
    rng = random.Random(seed)
    for _ in range(points - 1):
        pt = {}
        for name, text in nominal.items():
            u = Decimal(repr(rng.uniform(-0.25, 0.25)))
            v = Decimal(text) * (1 + u) if Decimal(text) != 0 else u
            pt[name] = format(Decimal(format(v, ".4g")).normalize(), "f") if v != 0 else "0"
        out.append(pt)
    return out


def _parse_fixed(fixed_steps) -> tuple:
    out = []
    for item in fixed_steps or ():
        if isinstance(item, str):
            scheme, sep, steps = item.partition(":")
            if not sep or not steps.isdigit() or int(steps) < 1:
                raise SpecError(f"--fixed-step {item!r}: give SCHEME:STEPS, e.g. rk4:100")
            item = (scheme, int(steps))
        out.append((str(item[0]), int(item[1])))
    return tuple(out)


def golden_point(spec_text: str, digits: int, params: dict, fixed_steps: tuple = (), quiet: bool | None = True) -> dict:
    """One point of a golden file (pure: serializable in, serializable out; what a sweep runs per task)."""
    from ..interop.discrete import discrete_gradient
    from ..expr import parse_decimal
    import sympy
    model = load_spec(spec_text)
    model = model.with_values({k: parse_decimal(v, f"params.{k}") for k, v in params.items()})
    values = dict(model.param_values)
    z0 = [_number_text(sympy.sympify(e).xreplace(values), digits) for e in model.z0]
    reference = oracle_gradient(model, digits, quiet=quiet).to_dict()
    reference.pop("stats", None)  # timings differ from run to run; the reference values do not
    point = {"params": dict(params), "z0": z0, "t0": decimal_text(model.t0, "t0"), "t1": decimal_text(model.t1, "t1"),
             "reference": reference, "error_bound": reference["error_bound"]}
    if fixed_steps:
        point["fixed_step"] = []
        for scheme, steps in fixed_steps:
            d = discrete_gradient(model, scheme, steps, digits).to_dict()
            point["fixed_step"].append({"scheme": scheme, "steps": steps, "reference": d,
                                        "error_bound": d["error_bound"]})
    return point


def _case(model: Model, digits: int, points: list, seed, spec: str) -> dict:
    first = points[0]
    case = {"format": GOLDEN_FORMAT, "format_version": GOLDEN_FORMAT_VERSION, "model": model.name, "spec": spec,
            "params": first["params"], "t0": first["t0"], "t1": first["t1"], "z0": first["z0"], "digits": digits,
            "reference": first["reference"], "error_bound": first["error_bound"], "conventions": CONVENTIONS,
            "generator": f"symode {__version__}", "points": points}
    if seed is not None:
        case["seed"] = seed
    return case


def _tasks(model: Model, digits: int, points: int, seed: int, fixed_steps) -> tuple[str, list]:
    check_export([model])
    spec = dump_spec(model)  # refuses a model it cannot write as a readable spec, before any solve
    model = load_spec(spec, source=f"golden spec of {model.name!r}")  # the numbers belong to the spec read back
    decimal_text(model.t0, "t0"), decimal_text(model.t1, "t1")
    return spec, [(spec, digits, pv, _parse_fixed(fixed_steps)) for pv in point_values(model, points, seed)]


def golden_case(model: Model, digits: int = 30, *, quiet: bool | None = None, points: int = 1, seed: int = 0,
                fixed_steps=(), scheduler: str | None = None, workers: int | None = None) -> dict:
    """The golden-case object of ``model`` (see the module docstring); computes the oracle at every point."""
    from ..sweep import run_sweep
    spec, tasks = _tasks(model, digits, points, seed, fixed_steps)
    pts = run_sweep(golden_point, [t + (quiet,) for t in tasks], scheduler=scheduler, workers=workers,
                    label=f"golden {model.name}")
    return _case(model, digits, pts, seed if points > 1 else None, spec)


def golden_case_from_spec(spec_text: str, digits: int = 30, *, quiet: bool | None = True) -> dict:
    """:func:`golden_case` of the model a spec text describes (serializable in, serializable out)."""
    return golden_case(load_spec(spec_text), digits, quiet=quiet)


def golden_cases(models, digits: int = 30, *, quiet: bool | None = None, points: int = 1, seed: int = 0,
                 fixed_steps=(), scheduler: str | None = None, workers: int | None = None) -> list[dict]:
    """Every model's golden case (:func:`golden_case`), their points run as one sweep; writes nothing."""
    models = list(models)
    check_export(models)
    from ..sweep import run_sweep
    specs, tasks, owner = [], [], []
    for k, m in enumerate(models):  # every model's points are checked before any oracle runs
        spec, ts = _tasks(m, digits, points, seed, fixed_steps)
        specs.append(spec)
        tasks += ts
        owner += [k] * len(ts)
    if points == 1 and scheduler is None and workers is None:
        workers = 1  # one point per model: the oracle is fast, a process pool would only add its start-up
    serial = scheduler == "serial" or workers == 1 or len(tasks) == 1
    tasks = [t + (quiet if serial else True,) for t in tasks]  # progress lines of parallel workers would mix
    results = run_sweep(golden_point, tasks, scheduler=scheduler, workers=workers, label="golden points")
    return [_case(m, digits, [r for r, o in zip(results, owner) if o == k], seed if points > 1 else None, spec)
            for k, (m, spec) in enumerate(zip(models, specs))]


def export_golden(models, out_dir, digits: int = 30, *, quiet: bool | None = None, points: int = 1, seed: int = 0,
                  fixed_steps=(), scheduler: str | None = None, workers: int | None = None) -> list[Path]:
    """Compute every model's golden case, then write them all to ``out_dir`` (all or nothing).

    ``models``: :class:`Model` objects (resolve names first, e.g. with ``symode.library.resolve_model``).
    Returns the paths written.  Raises a :class:`SymodeError` (and writes nothing) on any failure.
    """
    models = list(models)
    check_export(models)
    return write_golden(golden_cases(models, digits, quiet=quiet, points=points, seed=seed, fixed_steps=fixed_steps,
                                     scheduler=scheduler, workers=workers), out_dir)


def golden_paths(models, out_dir) -> list[Path]:
    """The files :func:`export_golden` would write for ``models``."""
    return [Path(out_dir) / f"{m.name}.json" for m in models]


def check_export(models) -> None:
    """Refuse an empty or ambiguous model list (each golden file is named after its model) before any work."""
    models = list(models)
    if not models:
        raise SpecError("no models given to export")
    names = [m.name for m in models]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"model name(s) {', '.join(dup)} given more than once; each golden file is named after "
                        f"its model")
    for m in models:
        if not isinstance(m.name, str) or not MODEL_NAME_RE.fullmatch(m.name):
            raise SpecError(f"model name {m.name!r} cannot name a golden file; use 1-64 ASCII letters, digits, "
                            "'_' and '-', starting with a letter")


def write_golden(cases: list, out_dir) -> list[Path]:
    """Write computed golden cases (:func:`golden_case`) to ``out_dir``, all or nothing; return the paths."""
    texts = [json.dumps(c, indent=2) + "\n" for c in cases]
    for case, text in zip(cases, texts):  # whatever symode writes, load_golden reads: check before writing
        if len(text.encode("utf-8")) > MAX_GOLDEN_BYTES:
            raise SpecError(f"the golden file of {case['model']!r} would exceed {MAX_GOLDEN_BYTES} bytes; export "
                            f"fewer --points per file (nothing was written)")
        check_golden(json.loads(text), f"golden file of {case['model']!r}")
    out = Path(out_dir)
    for case in cases:  # a target that cannot be replaced would fail half-way through the renames: refuse first
        target = out / f"{case['model']}.json"
        if target.exists() and not target.is_file() and not target.is_symlink():  # os.replace swaps a link
            raise SymodeError(f"cannot write golden files to {out}: {target} exists and is not a regular file "
                              f"(nothing was written)")
    temps: list[str] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for case, text in zip(cases, texts):
            # a fresh hidden name in DIR (same file system, so os.replace is atomic); "x" never clobbers,
            # and a plain open keeps the user's umask (mkstemp would make the file private)
            tmp = str(out / f".{case['model']}.json.{os.getpid()}.{secrets.token_hex(6)}.tmp")
            with open(tmp, "x", encoding="utf-8") as fh:
                temps.append(tmp)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        paths = []
        for case, tmp in zip(cases, temps):
            target = out / f"{case['model']}.json"
            os.replace(tmp, target)
            paths.append(target)
        temps = []
        return paths
    except OSError as exc:
        raise SymodeError(f"cannot write golden files to {out}: {exc.strerror or exc}; choose a writable "
                          f"--out directory (nothing was written)") from None
    finally:
        for tmp in temps:  # only left over on failure
            try:
                os.unlink(tmp)
            except OSError:
                pass


def load_golden(path) -> dict:
    """Read a golden file and check its format (keys, version, that its spec parses to the named model)."""
    p = Path(path)
    text = user_text(read_user_file(p, "golden file", MAX_GOLDEN_BYTES), str(p))
    try:
        data = json.loads(text, parse_constant=lambda name: _refuse_constant(p, name))
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}: not JSON ({exc})") from None
    except (RecursionError, ValueError) as exc:  # absurd nesting; an integer past Python's 4300-digit limit
        raise SpecError(f"{p}: not a golden file ({type(exc).__name__}: {exc})") from None
    return check_golden(data, str(p))


def _refuse_constant(p: Path, name: str):
    raise SpecError(f"{p}: {name} is not a number symode writes; this is not a golden file from symode")


def check_golden(data, p: str) -> dict:
    """Check a golden object read from ``p`` (keys, version, that its spec parses to the named model)."""
    if not isinstance(data, dict) or data.get("format") != GOLDEN_FORMAT:
        raise SpecError(f"{p}: not a symode golden file (format must be {GOLDEN_FORMAT!r})")
    if data.get("format_version") != GOLDEN_FORMAT_VERSION:
        raise SpecError(f"{p}: golden format version {data.get('format_version')!r} is not supported "
                        f"(this symode reads version {GOLDEN_FORMAT_VERSION})")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise SpecError(f"{p}: missing key(s) {', '.join(missing)}")
    model = load_spec(data["spec"], source=f"{p} (spec)")
    if model.name != data["model"]:
        raise SpecError(f"{p}: the spec describes model {model.name!r}, the file says {data['model']!r}")
    points = data.get("points", [])
    if not isinstance(points, list):
        raise SpecError(f"{p}: points must be a list of parameter points")
    for i, pt in enumerate(points):
        missing = [k for k in ("params", "t0", "t1", "reference") if not isinstance(pt, dict) or k not in pt]
        if missing:
            raise SpecError(f"{p}: points[{i}] lacks {', '.join(missing)}")
        if list(pt["params"]) != model.param_names:
            raise SpecError(f"{p}: points[{i}] gives parameters {', '.join(pt['params'])}; the spec declares "
                            f"{', '.join(model.param_names)}")
    return data
