"""What a command may write: never one of its own inputs, and an existing file only with ``--force``.

:func:`check_targets` is called before any work starts with every path a command is about to write (or
replace) and every file it reads.  A target that *is* an input, or a directory that *contains* one (replacing
it would delete the input), is refused even with ``--force``; a target that already exists is refused unless
``force``.  The message names the option, the path and what to do.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import SpecError

__all__ = ["check_targets", "check_plot_dir", "input_paths"]


def _real(path) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _same_or_inside(inp: Path, target: Path) -> bool:
    """True if ``inp`` is ``target`` (same file, also through links) or lies inside the directory ``target``."""
    try:
        if os.path.exists(inp) and os.path.exists(target) and os.path.samefile(inp, target):
            return True
    except OSError:
        pass
    inp, target = _real(inp), _real(target)
    return inp == target or target in inp.parents


def input_paths(*candidates) -> list[Path]:
    """The existing files among ``candidates`` (model names that are not files, and None, are skipped)."""
    out = []
    for c in candidates:
        if c is None:
            continue
        for item in (c if isinstance(c, (list, tuple)) else [c]):
            if item is not None and os.path.isfile(os.fspath(item)):
                out.append(Path(item))
    return out


def check_targets(targets: Iterable, *, option: str, force: bool, inputs: Iterable = ()) -> None:
    """Refuse (SpecError) to write any of ``targets`` that is, or contains, one of ``inputs``; refuse an existing
    target unless ``force``.  ``option`` names the option that chose the targets (``--out``)."""
    inputs = [Path(i) for i in inputs]
    for target in targets:
        target = Path(target)
        for inp in inputs:
            if _same_or_inside(inp, target):
                what = "is" if _real(inp) == _real(target) else "contains"
                raise SpecError(f"{option} {target} {what} the input {inp}: writing it would destroy the input; "
                                "choose another output")
        if os.path.lexists(target) and not force:
            raise SpecError(f"{option} {target} already exists; pass --force to replace it, or choose another "
                            "output")


def check_plot_dir(directory, *, force: bool, option: str = "--plot") -> None:
    """Before any work: a picture directory must be absent, empty, or replaced with ``force`` (the names of the
    pictures depend on what runs, so a directory that already holds files is refused as a whole)."""
    if directory is None:
        return
    d = Path(directory)
    if os.path.lexists(d) and not d.is_dir():
        raise SpecError(f"{option} {d} exists and is not a directory; choose a directory for the pictures")
    if d.is_dir() and any(d.iterdir()) and not force:
        raise SpecError(f"{option} {d} already holds files; pass --force to replace the pictures in it, or choose "
                        "a new directory")
