"""Markdown scanning of derivation documents: fenced ``symbols``/``claim`` blocks and their logical lines.

Only this module knows Markdown: it finds the fenced blocks (backtick or tilde fences, CommonMark's rule that a
closing fence is at least as long as the opening one), drops blank and ``#`` comment lines, and joins ``\\``
continuations.  What the lines mean is :mod:`symode.verify.grammar` and :mod:`symode.verify.declarations`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^\s`]*)")


@dataclass
class Line:
    """A logical line of a fenced block: its 1-based line number in the file and its text."""

    number: int
    text: str


@dataclass
class Block:
    kind: str                 # "symbols", "claim" or "spec"
    start: int                # line number of the opening fence
    lines: list


@dataclass
class Unclosed:
    """A ``symbols``/``claim`` fence that is never closed (the document reports it as a problem)."""

    kind: str                 # "symbols" or "claim"
    line: int                 # line number of the opening fence
    text: str                 # the opening fence line, stripped
    fence: str                # the fence characters that would close it


def blocks(text: str, unclosed: list, others: list | None = None) -> list[Block]:
    """Fenced ``symbols``/``claim`` blocks with their logical lines (``spec`` blocks with their raw lines); other
    fenced blocks are skipped (their
    (line, info word) pairs are appended to ``others``); unclosed ones are appended to ``unclosed``."""
    found = []
    raw = text.splitlines()
    i = 0
    while i < len(raw):
        m = _FENCE_RE.match(raw[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2).lower()
        start = i + 1
        j = i + 1
        closed = False
        body = []
        while j < len(raw):
            c = re.match(r"^\s{0,3}(`{3,}|~{3,})\s*$", raw[j])
            if c and c.group(1)[0] == fence[0] and len(c.group(1)) >= len(fence):
                closed = True
                break
            body.append(Line(j + 1, raw[j]))
            j += 1
        if info in ("symbols", "claim", "spec"):
            if not closed:
                unclosed.append(Unclosed(info, start, raw[i].strip(), fence))
            else:
                # a spec block is TOML: its lines as written (no comment stripping, no continuations)
                found.append(Block(info, start, body if info == "spec" else logical(body)))
        elif others is not None and info:
            others.append((start, info))
        i = j + 1
    return found


def logical(lines: list[Line]) -> list[Line]:
    """Drop blank and ``#`` comment lines, strip trailing ``# ...`` comments, join ``\\`` continuations."""
    out: list[Line] = []
    pending: Line | None = None
    for ln in lines:
        text = ln.text.split("#", 1)[0].rstrip()
        if pending is not None:
            pending.text += " " + text.strip()
        elif text.strip():
            pending = Line(ln.number, text.strip())
        else:
            continue
        if pending.text.endswith("\\"):
            pending.text = pending.text[:-1].rstrip()
            continue
        out.append(pending)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


def looks_like_keyword(word: str) -> str | None:
    """'claim' or 'symbols' when a fence's info word looks like a misspelling of it (``claims``, ``Claim:``,
    ``symbol``, ``cliam``), else None."""
    import difflib
    w = re.sub(r"[^a-z]", "", word.lower())
    for kw in ("claim", "symbols"):
        if word != kw and (w.startswith(kw[:5]) or difflib.SequenceMatcher(None, w, kw).ratio() >= 0.75):
            return kw
    return None

