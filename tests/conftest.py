"""Test-session ordering: tests marked ``threads`` run after all others.

Once JAX has started its backend or a Dask cluster has run, background threads make ``os.fork()`` unsafe (JAX
warns "os.fork() ... will likely lead to a deadlock"), and several symode tests fork (the derivation budget
runs children by fork).  The sort is stable, so every other test keeps its order.
"""


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("threads") is not None)
