"""Render derived equations as plain text, LaTeX or Markdown (pure functions: equations in, text out)."""
from __future__ import annotations

from typing import Iterable

import sympy

FORMATS = ("text", "latex", "markdown")


def _text(e) -> str:
    return sympy.pretty(e, use_unicode=True, wrap_line=False)


def _eq_text(eq) -> str:
    lhs, rhs = _text(eq.lhs).splitlines(), _text(eq.rhs).splitlines()
    # align the two pictures on their middle line so "=" sits between them
    h = max(len(lhs), len(rhs))
    lw = max(len(s) for s in lhs)

    def pad(lines, height):
        top = (height - len(lines)) // 2
        return [""] * top + lines + [""] * (height - len(lines) - top)

    lhs, rhs = pad(lhs, h), pad(rhs, h)
    mid = (h - 1) // 2
    return "\n".join(f"{a.ljust(lw)} {'=' if i == mid else ' '} {b}".rstrip() for i, (a, b) in enumerate(zip(lhs, rhs)))


def render(equations: Iterable, fmt: str = "text", title: str | None = None) -> str:
    """All ``equations`` in format ``fmt`` ("text", "latex" or "markdown")."""
    if fmt not in FORMATS:
        from ..errors import SymodeError
        raise SymodeError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = []
    if fmt == "text":
        if title:
            out += [title, "=" * len(title), ""]
        for eq in equations:
            out += [f"[{eq.name}] {eq.description}", _eq_text(eq), ""]
    elif fmt == "latex":
        if title:
            out += [f"% {title}"]
        for eq in equations:
            out += [f"% {eq.name}: {eq.description}", f"{sympy.latex(eq.lhs)} = {sympy.latex(eq.rhs)}", ""]
    else:
        if title:
            out += [f"# {title}", ""]
        for eq in equations:
            out += [f"### `{eq.name}`", "", eq.description, "", "$$", f"{sympy.latex(eq.lhs)} = {sympy.latex(eq.rhs)}",
                    "$$", ""]
    return "\n".join(out).rstrip() + "\n"
