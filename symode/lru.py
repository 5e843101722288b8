"""One bounded least-recently-used cache for symode's in-memory caches of built objects.

Keys are plain values (a model's ``fingerprint()`` and the options), never a :class:`~symode.model.Model`
object: a model edited after its graphs were built must not find them again.  Used for the derivations
(:func:`symode.symbolic.derive.derive`), the oracle's Taylor systems, the CasADi graphs of a model, the
fixed-step plans and the CVODES integrators.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")

__all__ = ["LRUCache"]


class LRUCache(Generic[V]):
    """At most ``maxsize`` values; the least recently used goes first.  Thread-safe.

    :meth:`get_or_build` builds a missing value with ``build()``; with ``build_lock`` the build runs under that
    lock and is done once per key (CasADi graph construction is not thread-safe), otherwise two threads may
    build the same value at once and the last one is kept (harmless for values that are equal)."""

    def __init__(self, maxsize: int, *, build_lock: threading.Lock | threading.RLock | None = None):
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: "OrderedDict[Hashable, V]" = OrderedDict()
        self._lock = threading.Lock()
        self._build_lock = build_lock

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> V:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        value = self.get(key)
        if value is not None:
            return value
        if self._build_lock is None:
            return self.put(key, build())
        with self._build_lock:
            value = self.get(key)
            return value if value is not None else self.put(key, build())

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data
