"""High-precision oracle: Taylor-method integration of SymPy ODE systems (see :mod:`symode.oracle.taylor`)."""
