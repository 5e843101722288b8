"""The tail of an "unknown name" message: the valid names, and the closest one (``difflib``).

    raise SpecError(f"unknown scheme {name!r}{choose(name, SCHEMES)}")
    # -> unknown scheme 'rk5'; choose from euler, midpoint, rk4, ... (did you mean 'rk4'?)
"""
from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["did_you_mean", "choose"]

#: At most this many valid names are listed (a model may have thousands of parameters).
MAX_LISTED = 40


def did_you_mean(name, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``name``, or ``""`` when none is close."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def choose(name, choices: Iterable[str], *, verb: str = "choose from") -> str:
    """``"; choose from a, b, c (did you mean 'b'?)"``: the valid names (at most :data:`MAX_LISTED`) and the
    closest one."""
    choices = [str(c) for c in choices]
    if not choices:
        return "; there are none"
    listed = ", ".join(choices[:MAX_LISTED]) + (f", ... ({len(choices)} in all)" if len(choices) > MAX_LISTED else "")
    return f"; {verb} {listed}{did_you_mean(name, choices)}"
