"""Golden case files: a model and its oracle reference values, one JSON file per model (a public contract).

``symode oracle export MODEL... --out DIR [--digits D]`` writes ``DIR/<model name>.json``::

    {"format": "symode-golden", "format_version": 1,
     "model": "logistic",
     "spec": "name = \\"logistic\\"\\n...",          # the model as spec TOML (symode.spec.dump_spec)
     "params": {"r": "1.3", "K": "2"},              # exact decimal strings, in the model's parameter order
     "t0": "0", "t1": "3",
     "digits": 30,
     "reference": {...},                            # the `symode grad MODEL --method oracle --json` object
     "error_bound": "1e-29",                        # relative bound on every reference value
     "generator": "symode 0.1.0"}

The spec text alone rebuilds the model (``symode.spec.load_spec``); params, t0 and t1 repeat its numbers for
readers that do not parse TOML.  :func:`golden_case` is a pure function of serializable inputs (spec text,
digits), so a batch export can be farmed out to a distributed engine unchanged.

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

__all__ = ["GOLDEN_FORMAT", "GOLDEN_FORMAT_VERSION", "golden_case", "golden_case_from_spec", "export_golden",
           "check_export", "golden_paths", "write_golden", "load_golden", "check_golden"]

GOLDEN_FORMAT = "symode-golden"
GOLDEN_FORMAT_VERSION = 1
#: Largest golden file read (one holds a spec of at most 1 MB plus its reference values).
MAX_GOLDEN_BYTES = 4_000_000
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


def golden_case(model: Model, digits: int = 30, *, quiet: bool | None = None) -> dict:
    """The golden-case object of ``model`` (see the module docstring); computes the oracle.

    The values are computed for the model as its spec text reads back (``load_spec(dump_spec(model))``), so
    the file's spec and its numbers always belong together; :func:`dump_spec` refuses a model it cannot write
    as a readable spec before any solve starts.
    """
    check_export([model])
    spec = dump_spec(model)
    model = load_spec(spec, source=f"golden spec of {model.name!r}")
    params = {p.name: decimal_text(model.param_values[p], f"params.{p.name}") for p in model.params}
    t0, t1 = decimal_text(model.t0, "t0"), decimal_text(model.t1, "t1")
    result = oracle_gradient(model, digits, quiet=quiet)
    reference = result.to_dict()
    reference.pop("stats", None)  # timings differ from run to run; the reference values do not
    return {"format": GOLDEN_FORMAT, "format_version": GOLDEN_FORMAT_VERSION, "model": model.name, "spec": spec,
            "params": params, "t0": t0, "t1": t1, "digits": digits, "reference": reference,
            "error_bound": reference["error_bound"], "conventions": CONVENTIONS,
            "generator": f"symode {__version__}"}


def golden_case_from_spec(spec_text: str, digits: int = 30, *, quiet: bool | None = True) -> dict:
    """:func:`golden_case` of the model a spec text describes (serializable in, serializable out)."""
    return golden_case(load_spec(spec_text), digits, quiet=quiet)


def export_golden(models, out_dir, digits: int = 30, *, quiet: bool | None = None) -> list[Path]:
    """Compute every model's golden case, then write them all to ``out_dir`` (all or nothing).

    ``models``: :class:`Model` objects (resolve names first, e.g. with ``symode.library.resolve_model``).
    Returns the paths written.  Raises a :class:`SymodeError` (and writes nothing) on any failure.
    """
    check_export(models)
    return write_golden([golden_case(m, digits, quiet=quiet) for m in models], out_dir)


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
    return data
