"""The registry of gradient routes: every route is one :class:`~symode.route.Route` object (what a route
declares: :mod:`symode.route`).

Everything that lists routes -- ``symode grad --method`` and its option flags, ``symode check``, the JSON
schema (:mod:`symode.schema`) -- reads this registry; no code outside a route branches on a route's name.

Routes come from three places, in this order: the built-ins (:data:`BUILTIN_ROUTES`), the entry-point group
``symode.methods`` of installed distributions (each entry point names a :class:`Route` instance or subclass),
and :func:`register_method` at run time.  The registry is filled on first use, so ``import symode`` stays
cheap; route modules import their numerical backends only when a route runs.
"""
from __future__ import annotations

import threading
import warnings
from typing import Iterator, Mapping

from .errors import SpecError
from .route import (QUANTITIES, Accuracy, Adaptive, Exact, FixedStep, HighPrecision, Option,  # noqa: F401
                    RegistrationError, Requirement, Route, _load)

__all__ = ["Route", "Option", "Requirement", "Accuracy", "Exact", "HighPrecision", "FixedStep", "Adaptive",
           "RegistrationError", "PluginWarning", "QUANTITIES", "ENTRY_POINT_GROUP", "BUILTIN_ROUTES",
           "register_method", "unregister_method", "get_route", "routes", "route_names", "checkable_routes",
           "METHODS"]

#: The entry-point group through which an installed distribution adds routes.
ENTRY_POINT_GROUP = "symode.methods"
#: The built-in routes, in the order they are listed everywhere (``"module:attribute"``, a Route instance).
BUILTIN_ROUTES = ("symode.oracle.methods:ORACLE", "symode.oracle.methods:EXACT",
                  "symode.codegen.methods:DISCRETE", "symode.casadi.methods:FORWARD",
                  "symode.casadi.methods:ADJOINT", "symode.casadi.methods:ADJOINT_STORED",
                  "symode.casadi.methods:CVODES",
                  "symode.interop.methods:TORCHDIFFEQ", "symode.interop.methods:TORCHDIFFEQ_ADJOINT",
                  "symode.interop.methods:DIFFRAX", "symode.interop.methods:DIFFRAX_DIRECT",
                  "symode.interop.methods:DIFFRAX_BACKSOLVE")


class PluginWarning(UserWarning):
    """A route plugin (entry point ``symode.methods``) could not be loaded and was skipped."""


# ------------------------------------------------------------------------------------------------------------
# the registry

_ROUTES: dict[str, Route] = {}
_LOADED = False
_LOCK = threading.RLock()


def _as_route(obj, where: str) -> Route:
    if isinstance(obj, type) and issubclass(obj, Route):
        obj = obj()
    if not isinstance(obj, Route):
        raise RegistrationError(f"{where}: expected a symode.Route instance or subclass, got {type(obj).__name__}")
    return obj


def _add(route: Route, replace: bool) -> None:
    route.validate()
    other = _ROUTES.get(route.name)
    if other is not None and other is not route and not replace:
        raise RegistrationError(f"route name {route.name!r} is taken (by {type(other).__module__}."
                                f"{type(other).__qualname__}); choose another name")
    others = {n: r for n, r in _ROUTES.items() if n != route.name}
    for o in route.options:  # one CLI flag per option name: the types must agree across routes
        for r in others.values():
            mine = r.option(o.name)
            if mine is not None and mine.type is not o.type:
                raise RegistrationError(f"route {route.name!r}: option {o.name!r} is {o.type.__name__} but route "
                                        f"{r.name!r} declares it {mine.type.__name__}")
    _ROUTES[route.name] = route


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    with _LOCK:
        if _LOADED:
            return
        for ref in BUILTIN_ROUTES:
            _add(_load(ref), replace=False)
        _LOADED = True  # before the plugins: a plugin's module may itself look routes up
        _load_entry_points()


def _load_entry_points() -> None:
    """Register the routes of the ``symode.methods`` entry points.  A plugin that fails to load is skipped with
    a warning naming it (one broken package must not take every symode command down)."""
    from importlib.metadata import entry_points
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        where = f"entry point {ep.name} = {ep.value}" + (f" (distribution {dist.name})" if dist is not None else "")
        try:
            _add(_as_route(ep.load(), where), replace=False)
        except Exception as exc:  # noqa: BLE001 - any failure of foreign code is reported, not raised
            warnings.warn(f"skipped the route plugin {where}: {type(exc).__name__}: {exc}", PluginWarning,
                          stacklevel=2)


def register_method(route, *, replace: bool = False) -> Route:
    """Add ``route`` (a :class:`Route` instance or subclass) to the registry and return it.  A taken name is an
    error unless ``replace``; the declaration is validated (:class:`RegistrationError`)."""
    _ensure_loaded()
    with _LOCK:
        route = _as_route(route, "register_method")
        _add(route, replace)
        return route


def unregister_method(name: str) -> Route:
    """Remove the route ``name`` from the registry and return it (e.g. a test's temporary route)."""
    _ensure_loaded()
    with _LOCK:
        if name not in _ROUTES:
            raise SpecError(f"no route named {name!r}")
        return _ROUTES.pop(name)


def get_route(name: str) -> Route:
    """The registered route ``name``; SpecError naming the choices when there is none."""
    _ensure_loaded()
    route = _ROUTES.get(name)
    if route is None:
        from .suggest import choose
        raise SpecError(f"unknown method {name!r}{choose(name, _ROUTES, verb='choose one of')}")
    return route


def routes() -> tuple[Route, ...]:
    """Every registered route, built-ins first, in registration order."""
    _ensure_loaded()
    return tuple(_ROUTES.values())


def route_names() -> tuple[str, ...]:
    return tuple(r.name for r in routes())


def checkable_routes() -> list[Route]:
    """The routes ``symode check`` can judge against the oracle: every route whose accuracy is not itself a
    reference kind (exact, high precision)."""
    return [r for r in routes() if not r.accuracy.reference]


class _MethodsView(Mapping):
    """``METHODS``: a live read-only view name -> Route of the registry (plugins included)."""

    def __getitem__(self, name: str) -> Route:
        _ensure_loaded()
        return _ROUTES[name]

    def __iter__(self) -> Iterator[str]:
        return iter(route_names())

    def __len__(self) -> int:
        return len(routes())

    def __repr__(self) -> str:
        return f"METHODS({', '.join(route_names())})"


METHODS: Mapping[str, Route] = _MethodsView()
