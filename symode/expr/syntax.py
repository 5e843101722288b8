"""Syntax-tree helpers of the expression parser (:mod:`symode.expr.parser`): keyword mangling that keeps
positions, bracket depth, and the size/depth measure the caps apply to.  Pure functions of the text or tree."""
from __future__ import annotations

import ast
import keyword
import re

# Python keywords (hard and soft) that a user may declare as names.  Before ast.parse they are rewritten
# to a mangled form of the SAME LENGTH ("lambda" -> "_ambda"): positions in the rewritten text equal
# positions in the user's text, so source segments (for messages and for mapping a mangled name back)
# are read from the user's own text.  A user cannot declare a name starting with "_" (NAME_RE), so a
# mangled name never collides with a declared one.
_KEYWORDS = frozenset(k for k in (*keyword.kwlist, *keyword.softkwlist) if k[:1].isalpha())

# Identifiers, and "number-ish" runs (starting with a digit or ".digit") skipped as a whole so that the
# "if" in "1if" or the "e" in "1e5" is never rewritten.
_TOKEN_RE = re.compile(r"(?P<num>(?:[0-9]|\.[0-9])(?:[A-Za-z0-9_.]|(?<=[eE])[+-])*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def _mangle_keywords(src: str) -> str:
    """Replace each identifier that is a Python keyword by a same-length form a user cannot type."""
    def repl(m: re.Match) -> str:
        word = m.group("name")
        if word is not None and word in _KEYWORDS:
            return "_" + word[1:]
        return m.group(0)
    return _TOKEN_RE.sub(repl, src)


def _bracket_depth(src: str) -> int:
    depth = best = 0
    for ch in src:
        if ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    return best


def _op_class(op: ast.operator) -> str | None:
    """'add' for + -, 'mul' for * /, None otherwise (** is right-nested; the rest are refused)."""
    if isinstance(op, (ast.Add, ast.Sub)):
        return "add"
    if isinstance(op, (ast.Mult, ast.Div)):
        return "mul"
    return None


def _tree_size(tree: ast.AST) -> tuple[int, int]:
    """(node count, depth) of an ast tree, iteratively (no recursion on hostile depth).

    Counted: expression nodes and the other structural nodes (keywords, comprehensions ...); not the
    operator and context tokens (``Add``, ``Load``), which add no cost of their own.  Depth: the left
    operand of a ``+ -`` (``* /``) operation that is itself a ``+ -`` (``* /``) operation stays at its
    parent's depth, so the left-nested chain Python builds for ``a + b + c + ...`` counts as flat (the
    converter walks it iteratively); every other child is one level deeper.
    """
    skip = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    count = 0
    depth = 0
    stack = [(tree, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, skip):
            continue
        count += 1
        depth = max(depth, d)
        for child in ast.iter_child_nodes(node):
            flat = (
                isinstance(node, ast.BinOp) and child is node.left and isinstance(child, ast.BinOp)
                and _op_class(node.op) is not None and _op_class(child.op) == _op_class(node.op)
            )
            stack.append((child, d if flat else d + 1))
    return count, depth
