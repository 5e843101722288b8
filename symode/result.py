"""The result of one gradient computation, and its JSON form (a public contract: ``symode grad --json``).

JSON object (keys always in this order; optional keys omitted where they do not apply)::

    {"model": "logistic", "method": "oracle", "digits": 30,
     "loss": "0.0030842100034167048037504551287",
     "grad": {"r": "-0.1336...", "K": "-0.0567..."},       # dL/dθ by parameter name, total derivative
     "grad_z0": ["..."],                                    # dL/dz0, z0 treated as a free input
     "grad_t0": "...",                                      # dL/dt0
     "grad_t1": "...",                                      # dL/dt1 (absent where undefined)
     "error_bound": "1e-28",                                # high-precision methods
     "scheme": "rk4", "steps": 100}                         # fixed-step float64 methods

Values are decimal strings: ``digits`` significant digits for high-precision methods (oracle, exact), the
shortest round-trip ``repr`` for float64 methods.  ``z1`` (the state at t1) and ``stats`` may follow.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import mpmath

from .errors import IntegrationError


def format_value(v, digits: int | None) -> str:
    """A decimal string: ``digits`` significant digits for mpmath numbers, shortest repr for floats."""
    if isinstance(v, mpmath.mpf):
        if not mpmath.isfinite(v):
            raise IntegrationError(f"non-finite value {v} in a result")
        return mpmath.nstr(v, digits or mpmath.mp.dps, strip_zeros=False)
    f = float(v)
    if not math.isfinite(f):
        raise IntegrationError(f"non-finite value {f} in a result")
    return repr(f)


@dataclass
class GradResult:
    """Loss and gradients of one model by one method.  ``grad`` is ordered like the model's parameters.

    ``grad_t1`` is None where dL/dt1 is undefined (an observation exactly at t1), ``grad_t0`` where dL/dt0 is (an
    observation exactly at t0: observation times are fixed, so the start cannot move past it); ``grad_z0``, ``grad_t0`` and
    ``grad_t1`` are None for a route that does not compute them (its declared quantities).  ``digits`` and
    ``error_bound`` are set by high-precision methods; ``scheme`` and ``steps`` by fixed-step methods.
    """

    model: str
    method: str
    loss: Any
    grad: dict
    grad_z0: list
    grad_t0: Any
    grad_t1: Any = None
    digits: int | None = None
    error_bound: Any = None
    scheme: str | None = None
    steps: int | None = None
    z1: list | None = None
    stats: dict = field(default_factory=dict)

    def values(self) -> list:
        """Every number in the result, in a fixed order (for finiteness checks and comparisons)."""
        return [v for _, v in self.named_values()]

    def check_finite(self) -> "GradResult":
        """Raise :class:`IntegrationError` if any value is non-finite (no route may return one)."""
        for name, v in self.named_values():
            ok = mpmath.isfinite(v) if isinstance(v, mpmath.mpf) else math.isfinite(float(v))
            if not ok:
                raise IntegrationError(f"{self.method} on {self.model!r}: {name} is {v} (non-finite); "
                                       f"the solve failed or blew up")
        return self

    def named_values(self) -> list[tuple[str, Any]]:
        out = [("loss", self.loss)] + [(f"grad[{k}]", v) for k, v in self.grad.items()]
        out += [(f"grad_z0[{i}]", v) for i, v in enumerate(self.grad_z0 or ())]
        if self.grad_t0 is not None:
            out.append(("grad_t0", self.grad_t0))
        if self.grad_t1 is not None:
            out.append(("grad_t1", self.grad_t1))
        return out

    def to_dict(self) -> dict:
        self.check_finite()
        fv = lambda v: format_value(v, self.digits)  # noqa: E731
        d: dict = {"model": self.model, "method": self.method}
        if self.digits is not None:
            d["digits"] = self.digits
        d["loss"] = fv(self.loss)
        d["grad"] = {k: fv(v) for k, v in self.grad.items()}
        if self.grad_z0 is not None:
            d["grad_z0"] = [fv(v) for v in self.grad_z0]
        if self.grad_t0 is not None:
            d["grad_t0"] = fv(self.grad_t0)
        if self.grad_t1 is not None:
            d["grad_t1"] = fv(self.grad_t1)
        if self.error_bound is not None:
            d["error_bound"] = mpmath.nstr(mpmath.mpf(self.error_bound), 3) if not isinstance(self.error_bound, str) \
                else self.error_bound
        if self.scheme is not None:
            d["scheme"] = self.scheme
        if self.steps is not None:
            d["steps"] = self.steps
        if self.z1 is not None:
            d["z1"] = [fv(v) for v in self.z1]
        if self.stats:
            d["stats"] = self.stats
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_table(self) -> str:
        """The same result as a readable table (``symode grad`` without ``--json``)."""
        d = self.to_dict()
        head = [f"{'model'.ljust(12)}{d['model']}", f"{'method'.ljust(12)}{d['method']}"]
        for key in ("digits", "scheme", "steps", "error_bound"):
            if key in d:
                head.append(f"{key.ljust(12)}{d[key]}")
        rows = [("loss", d["loss"])] + [(f"dL/d{k}", v) for k, v in d["grad"].items()]
        rows += [(f"dL/dz0[{i}]", v) for i, v in enumerate(d.get("grad_z0", ()))]
        if "grad_t0" in d:
            rows.append(("dL/dt0", d["grad_t0"]))
        elif "grad_t1" in d:  # a route with time gradients, but dL/dt0 does not exist
            rows.append(("dL/dt0", "undefined (an observation lies at t0)"))
        if "grad_t1" in d:
            rows.append(("dL/dt1", d["grad_t1"]))
        elif self.grad_t0 is not None:  # a route that computes time gradients, but dL/dt1 does not exist
            rows.append(("dL/dt1", "undefined (an observation lies at t1)"))
        w = max(len(r[0]) for r in rows) + 2
        lines = head + [""] + [f"{k.ljust(w)}{v}" for k, v in rows]
        for key in ("warning", "non_differentiable", "kink_crossings"):  # e.g. an unstable back-solve; a kink
            if key in self.stats:
                lines += ["", f"WARNING: {self.stats[key]}"]
        for key in ("closed_form", "accuracy"):  # a limit at a removable singularity; what a tolerance bounds
            if key in self.stats:
                lines += ["", f"NOTE: {self.stats[key]}"]
        return "\n".join(lines) + "\n"
