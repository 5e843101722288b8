"""TOML spec files <-> :class:`~symode.model.Model` (a public contract; the format is in :mod:`.parse` and the
README).

* :mod:`.parse` -- :func:`load_spec`, :func:`load_spec_file`: text in, a validated model out;
* :mod:`.terms` -- the names expressions may use, and the observation terms;
* :mod:`.write` -- :func:`dump_spec` and the exact writers :func:`decimal_text`, :func:`expr_to_text`
  (:mod:`.write_arrays` for array expressions).
"""
from .parse import MAX_PARAMS, MAX_SPEC_BYTES, MAX_STATES, MODEL_NAME_RE, load_spec, load_spec_file  # noqa: F401
from .terms import MAX_OBSERVATIONS  # noqa: F401
from .write import decimal_text, dump_spec, expr_to_text  # noqa: F401

__all__ = ["load_spec", "load_spec_file", "dump_spec", "decimal_text", "expr_to_text", "MODEL_NAME_RE",
           "MAX_SPEC_BYTES", "MAX_STATES", "MAX_PARAMS", "MAX_OBSERVATIONS"]
