"""Test-session ordering: tests that start background threads run after all others.

Once JAX has started its backend or a Dask cluster has run, background threads make ``os.fork()`` unsafe (JAX
warns "os.fork() ... will likely lead to a deadlock"), and several symode tests fork (the derivation budget
runs children by fork).  Late: tests marked ``threads``, and tests parametrized by the name of a registered
route that needs JAX (e.g. a test run once per route of the registry).  The sort is stable, so every other test
keeps its order.
"""


def _starts_threads(item) -> bool:
    if item.get_closest_marker("threads") is not None:
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = {v for v in params.values() if isinstance(v, str)}
    if not names:
        return False
    from symode.registry import routes
    return any(r.name in names and any(q.module == "jax" for q in r.requires) for r in routes())


def pytest_collection_modifyitems(config, items):
    items.sort(key=_starts_threads)
