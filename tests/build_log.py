"""The build cache's decisions, as the tests see them: ``symode.codegen.build`` logs each one at DEBUG with
``build_event`` ("hit", "discard", "compile") and ``build_key``; importing this module records them, in order,
in :data:`BUILD_EVENTS` (a plain list the tests read and clear).  Production code keeps no such list."""
from __future__ import annotations

import logging

#: ``(event, key)`` per decision of ``build_shared_library`` in this process, in order.
BUILD_EVENTS: list[tuple[str, str]] = []


class _Recorder(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        kind = getattr(record, "build_event", None)
        if kind is not None:
            BUILD_EVENTS.append((kind, record.build_key))


_logger = logging.getLogger("symode.codegen.build")
if not any(isinstance(h, _Recorder) for h in _logger.handlers):
    _logger.addHandler(_Recorder())
    _logger.setLevel(logging.DEBUG)
