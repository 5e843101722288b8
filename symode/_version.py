"""symode's version: the one place it is written (the package metadata reads it too, ``pyproject.toml``).

A leaf module: inner modules that report the version (generated C headers, golden files, the build cache key)
import it from here, never from the package's ``__init__``.
"""
__version__ = "0.1.0"
