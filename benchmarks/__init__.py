"""symode's performance benchmark (issue: the fastest neural-ODE gradient on a CPU).  Run ``python -m benchmarks.run``."""
