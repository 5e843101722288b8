"""Shared pieces of the verify tests: the decay model document and one claim's verdict.

In DECAY, du/dt = -k u with u(0) = 1 and terminal loss u(t1)**2, so u(t) = exp(-k t), lambda_u(t1) = 2 u(t1)
and dL/dk = integral(-lambda_u*u, t, t0, t1) exactly: the closed form the expected values are worked from.
"""
from __future__ import annotations

from symode.verify import parse_document, verify_document

DECAY = """```symbols
time: t
states: u
params: k
interval: t0, t1
ode: du/dt = -k*u
init: u = 1
terminal: u**2
values: k = 1/2, t0 = 0, t1 = 1
```
"""


def verdict(decl: str, claim: str, name: str = "case.md"):
    """The verdict of one claim under the declarations ``decl`` (a symbols block)."""
    r, = verify_document(parse_document(decl + f"```claim\n{claim}\n```\n", name))
    return r
