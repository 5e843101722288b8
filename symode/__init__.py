"""symode: a symbolic-autodiff verification framework for neural ODEs."""
__version__ = "0.1.0"
