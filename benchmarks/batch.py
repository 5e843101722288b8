"""The two-thread batch measured so that the result means something on a shared machine:

    python -m benchmarks.batch [--problems P2,P3] [--n 1000] [--rounds 5]     -> a table on stdout, JSON with --json

``h.batch(thetas, threads=2)`` splits the rows into two C loops (``P_grad_batch_w``) run by two Python threads
with the GIL released.  Its wall time against the one-thread loop (``threads=1``) is the target, but on a machine
whose two cores are shared with other work the wall time mostly measures the other work.  So each run also
reads, for every thread of this process, the kernel's scheduler statistics (``/proc/self/task/<tid>/schedstat``:
nanoseconds on a CPU, nanoseconds runnable but waiting for one):

* ``cpu ratio`` = CPU time of all threads in the two-thread run / CPU time of the one-thread run: the extra work
  two threads cause (thread hand-off, cache or memory contention, false sharing); 1.0 means none;
* ``critical ratio`` = CPU time of the busier of the two worker threads / CPU time of the one-thread run: the
  wall-time ratio the batch achieves when each thread has a core to itself (its threads wait for nothing but a
  CPU: no locks, no GIL inside the C loop);
* ``wall ratio`` = measured wall times, and ``waiting`` = the share of the two-thread run's thread time spent
  runnable but without a CPU (other processes' load).

Rounds alternate one- and two-thread runs; the table gives medians over rounds.  Linux only (schedstat).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def schedstat() -> dict:
    """tid -> (ns on a CPU, ns waiting for a CPU) for every thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as fh:
                run, wait, _ = fh.read().split()
        except OSError:  # a thread that just ended
            continue
        out[int(tid)] = (int(run), int(wait))
    return out


def one_run(h, TH, threads: int) -> dict:
    """Wall time and per-thread (CPU, wait) seconds of one ``h.batch(TH, threads=threads)``."""
    before = schedstat()
    t = time.perf_counter()
    h.batch(TH, threads=threads)
    wall = time.perf_counter() - t
    after = schedstat()
    cpu, wait = {}, {}
    for tid, (run, w) in after.items():
        r0, w0 = before.get(tid, (0, 0))
        if run - r0 > 0:
            cpu[tid], wait[tid] = (run - r0) * 1e-9, (w - w0) * 1e-9
    return {"wall": wall, "cpu": cpu, "wait": wait}


def measure(h, TH, rounds: int) -> dict:
    """Interleaved one- and two-thread runs; per-round ratios and their medians (see the module docstring)."""
    h.batch(TH[:4], threads=2)  # start the thread pool and the per-thread work arrays
    h.batch(TH[:4], threads=1)
    main = os.getpid()
    per = {"wall": [], "cpu": [], "critical": [], "waiting": [], "wall1_s": [], "wall2_s": [], "cpu1_s": []}
    for _ in range(rounds):
        one, two = one_run(h, TH, 1), one_run(h, TH, 2)
        cpu1 = sum(one["cpu"].values())
        workers = [v for tid, v in two["cpu"].items() if tid != main]
        per["wall"].append(two["wall"] / one["wall"])
        per["cpu"].append(sum(two["cpu"].values()) / cpu1)
        per["critical"].append(max(workers, default=0.0) / cpu1)
        per["waiting"].append(sum(two["wait"].values()) / max(sum(two["cpu"].values()) + sum(two["wait"].values()),
                                                              1e-12))
        per["wall1_s"].append(one["wall"])
        per["wall2_s"].append(two["wall"])
        per["cpu1_s"].append(cpu1)
    return {"rounds": per, "median": {k: statistics.median(v) for k, v in per.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="P1,P2,P3,P4")
    ap.add_argument("--n", type=int, default=1000, help="parameter sets per batch")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(min(os.cpu_count() or 1, 2))))
    import symode
    from benchmarks.problems import SCHEME, STEPS, problems
    results = {}
    print(f"`python -m benchmarks.batch {' '.join(sys.argv[1:] if argv is None else argv)}`: {args.n} parameter sets, "
          f"medians over {args.rounds} interleaved rounds; load average before: {os.getloadavg()[0]:.1f}\n")
    print("| problem | 1 thread wall (s) | 2 threads wall (s) | wall ratio | cpu ratio | critical ratio | waiting |")
    print("|---|---|---|---|---|---|---|")
    for P in problems([p for p in args.problems.split(",") if p]):
        h = symode.compile(P.model, SCHEME, STEPS)
        TH = np.tile(P.theta, (args.n, 1)) * (1 + 1e-3 * np.cos(np.arange(args.n))[:, None])
        r = measure(h, TH, args.rounds)
        m = r["median"]
        results[P.name] = r
        print(f"| {P.name} | {m['wall1_s']:.3f} | {m['wall2_s']:.3f} | {m['wall']:.2f} | {m['cpu']:.2f} | "
              f"{m['critical']:.2f} | {m['waiting']:.0%} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
