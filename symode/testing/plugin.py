"""The symode pytest plugin (entry point ``pytest11``: loaded by pytest wherever symode is installed).

Fixture ``symode_reference``: a function ``symode_reference(model, digits=30) -> GradResult`` giving the
oracle's reference for a model (a :class:`~symode.model.Model`, a built-in name or a ``.toml`` spec path),
cached on disk keyed by the model's hash and the digits (:mod:`symode.testing.cache`), so repeated test runs do
not recompute it.  ``symode_reference.stats`` counts cache ``hits`` and ``misses`` in this session.  Use it
with :func:`symode.testing.assert_gradients_match`::

    def test_my_solver(symode_reference):
        ref = symode_reference("logistic")
        assert_gradients_match(my_gradient_fn, ("logistic", "oracle"), rtol=1e-6)   # or against ref
        assert_gradients_match(my_result, ref, rtol=1e-6)

Importing this module imports nothing from symode's numerical layers; the oracle loads on the first call.
"""
from __future__ import annotations

import pytest


class _References:
    """Callable fixture value; see the module docstring."""

    def __init__(self):
        self.stats: dict = {"hits": 0, "misses": 0}

    def __call__(self, model, digits: int = 30):
        from ..model import Model
        from .cache import cached_reference
        if not isinstance(model, Model):
            from ..library import resolve_model
            model = resolve_model(str(model))
        return cached_reference(model, digits, stats=self.stats)


_SESSION = _References()


@pytest.fixture(scope="session")
def symode_reference():
    """The oracle's reference for a model, cached on disk (see :mod:`symode.testing.plugin`)."""
    return _SESSION
