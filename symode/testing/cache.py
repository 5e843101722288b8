"""Oracle references cached on disk, keyed by the model's hash and the digits (the pytest plugin's store).

``cached_reference(model, digits)`` returns the oracle's :class:`~symode.result.GradResult` for ``model``,
computing it once and storing it as ``<cache>/references/<sha256 of (fingerprint, digits, symode version)>.json``
in symode's per-user cache directory (:func:`symode.codegen.build.cache_dir`: ``$SYMODE_CACHE_DIR``, else the
XDG cache, mode 0700).  A stored file is used only when its recorded fingerprint, digits and symode version equal
the request's and its values parse; anything else (a different oracle version, a damaged or foreign file) is
recomputed and replaced.  Files are written to a temporary name and renamed into place (atomic), so a reader
never sees half a file and concurrent test processes at worst compute the same reference twice.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import mpmath

from .._version import __version__
from ..model import Model
from ..result import GradResult

__all__ = ["cached_reference", "reference_path", "CACHE_FORMAT"]

CACHE_FORMAT = "symode-reference-cache-1"


def reference_path(model: Model, digits: int, root: Path | None = None) -> Path:
    from ..codegen.build import cache_dir
    key = hashlib.sha256(f"{CACHE_FORMAT}\n{model.fingerprint()}\n{digits}\n{__version__}".encode()).hexdigest()
    return (Path(root) if root is not None else cache_dir()) / "references" / f"{key[:32]}.json"


def _parse(data: dict, model: Model, digits: int) -> GradResult | None:
    """The stored result, or None where the file does not describe exactly this request."""
    if not (isinstance(data, dict) and data.get("format") == CACHE_FORMAT
            and data.get("fingerprint") == model.fingerprint() and data.get("digits") == digits
            and data.get("symode") == __version__):
        return None
    r = data.get("result")
    try:
        with mpmath.workdps(digits + 10):
            mp = lambda s: mpmath.mpf(s)  # noqa: E731 -- parsed at the stored precision
            grad = {k: mp(v) for k, v in r["grad"].items()}
            if list(grad) != model.param_names:
                return None
            return GradResult(model=r["model"], method=r["method"], loss=mp(r["loss"]), grad=grad,
                              grad_z0=[mp(v) for v in r["grad_z0"]], grad_t0=mp(r["grad_t0"]),
                              grad_t1=mp(r["grad_t1"]) if "grad_t1" in r else None, digits=r["digits"],
                              error_bound=r["error_bound"])
    except (KeyError, TypeError, ValueError):
        return None


def cached_reference(model: Model, digits: int = 30, *, root: Path | None = None,
                     stats: dict | None = None) -> GradResult:
    """The oracle result of ``model`` at ``digits`` digits, from the disk cache when it holds it (see the module
    docstring).  ``stats``, if given, counts ``hits`` and ``misses``."""
    path = reference_path(model, digits, root)
    try:
        cached = _parse(json.loads(path.read_text(encoding="utf-8")), model, digits)
    except (OSError, ValueError):
        cached = None
    if cached is not None:
        if stats is not None:
            stats["hits"] = stats.get("hits", 0) + 1
        return cached
    from ..oracle.engine import oracle_gradient
    result = oracle_gradient(model, digits, quiet=True)
    if stats is not None:
        stats["misses"] = stats.get("misses", 0) + 1
    d = result.to_dict()
    d.pop("stats", None)
    text = json.dumps({"format": CACHE_FORMAT, "fingerprint": model.fingerprint(), "digits": digits,
                       "symode": __version__, "result": d}, indent=1) + "\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:  # a read-only cache costs a recomputation next time, never a failed test
        try:
            os.unlink(tmp)
        except OSError:
            pass
    # the stored text is what later runs read: return the same values they will see
    return _parse(json.loads(text), model, digits) or result
