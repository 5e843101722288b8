"""CPU time per gradient, symode against JAX, as a cross-check of :mod:`benchmarks.run`'s wall times:

    python -m benchmarks.cpu [--problems P1,P2,P3,P4] [--rounds 5]     -> a Markdown table on stdout

On a machine shared with other work, a wall time includes the time the process waited for a CPU; the process
CPU time (``time.process_time``, all threads, the process pinned to one core) does not.  Tools are the symode
handle from Python (``grad_arrays``), the C loop (``batch(threads=1)`` over 100 copies of θ), the handle's
loss alone (``loss``: the forward pass) and the JAX ``lax.scan`` of :mod:`benchmarks.peers`; rounds interleave
the tools; the table gives medians over rounds of µs of CPU per gradient, of the per-round ratios to JAX, and
of the per-round ratio grad / forward (handle gradient over handle loss).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


def _cpu(fn, x, reps: int) -> float:
    c = time.process_time()
    for _ in range(reps):
        fn(x)
    return (time.process_time() - c) / reps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cpu", description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="P1,P2,P3,P4")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.3, help="CPU time per tool per round")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    import symode
    from benchmarks import peers
    from benchmarks.problems import SCHEME, STEPS, problems
    print("| problem | handle µs CPU (ratio to JAX) | C loop µs CPU (ratio) | JAX µs CPU | grad/forward |")
    print("|---|---|---|---|---|")
    for P in problems([p for p in args.problems.split(",") if p]):
        h = symode.compile(P.model, SCHEME, STEPS)
        TH = np.tile(P.theta, (100, 1))
        jax_grad = peers.make_jax(P)
        tools = {"handle": (lambda x: h.grad_arrays(x), 1), "C loop": (lambda x: h.batch(TH, threads=1), 100),
                 "loss": (lambda x: h.loss(x), 1), "jax": (jax_grad, 1)}
        per = {k: [] for k in tools}
        for _ in range(args.rounds):
            for name, (fn, n) in tools.items():
                once = _cpu(fn, P.theta, 1)
                per[name].append(_cpu(fn, P.theta, max(3, int(args.seconds / max(once, 1e-6)))) / n)
        us = {k: statistics.median(v) * 1e6 for k, v in per.items()}
        ratio = {k: statistics.median(a / b for a, b in zip(per[k], per["jax"])) for k in per}
        gf = statistics.median(a / b for a, b in zip(per["handle"], per["loss"]))
        print(f"| {P.name} | {us['handle']:,.1f} ({ratio['handle']:.2f}) | {us['C loop']:,.1f} ({ratio['C loop']:.2f}) "
              f"| {us['jax']:,.1f} | {gf:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
