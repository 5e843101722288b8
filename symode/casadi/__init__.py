"""CasADi layer: SymPy -> CasADi translation, Runge-Kutta schemes as data, fixed-step solver graphs."""
