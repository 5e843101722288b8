"""The benchmark: ``python -m benchmarks.run [--problems P1,P2,P3,P4] [--rounds 7] [--smoke]``.

Every gradient is float64, the 3/8-rule RK4 with 100 steps on [0, 1] (:mod:`benchmarks.problems`); the process
is pinned to one core (``os.sched_setaffinity``) except the two-thread batch.  Tools are timed in interleaved
rounds (the order rotates each round); each round times every tool for about ``--seconds`` and records the
time per gradient; the table shows the median over rounds and the median of the per-round ratios to JAX (ratios
within one round share the machine's state, which matters on a shared machine).  Before timing, every tool's
gradient is compared with the symode route that computes the same mathematical quantity (:data:`TOLERANCES`).
Cold costs (derive + generate + compile, in a fresh process and cache) and oracle times come from
:mod:`benchmarks.cold` subprocesses.  Writes ``<out>/latest.md`` and ``<out>/latest.json``.

``--smoke`` (CI): P1 and P2, one short round, peers that are not installed are skipped; exits 1 if any
gradient disagrees or the table is not written.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: Agreement of each tool's gradient with the matching symode route, as max |g - g_ref| / max |g_ref| (and
#: |L - L_ref| / |L_ref|).
TOLERANCES = {
    # the same discrete solve (same tableau, same grid up to the rounding of the step sizes: torchdiffeq's
    # grid is k * 0.01, diffrax's and JAX's symode's a + (b - a)(j/10)), differentiated in another order: a few
    # ulps per step amplified by at most the condition of 100 steps; measured <= 1e-15.
    "discrete": 1e-12,
    # torchdiffeq's odeint_adjoint and symode's 'adjoint' route: the same back-solved continuous adjoint with the
    # same scheme, grid and reset of z at the output times, evaluated in another order; measured <= 1e-15.
    "continuous": 1e-12,
}
REFERENCE = {"jax": "discrete", "torchdiffeq odeint": "discrete", "diffrax RecursiveCheckpoint": "discrete",
             "torchdiffeq odeint_adjoint": "continuous", "diffrax BacksolveAdjoint": "continuous"}
PEERS = {"jax": "make_jax", "torchdiffeq odeint": "make_torchdiffeq_odeint",
         "torchdiffeq odeint_adjoint": "make_torchdiffeq_adjoint",
         "diffrax RecursiveCheckpoint": "make_diffrax_rca", "diffrax BacksolveAdjoint": "make_diffrax_backsolve"}
TARGETS = {"symode handle (Python)": 1.0, "symode C loop": 0.6, "symode compute": 2.0}
COLD_TARGETS = {"P2": 5.0, "P3": 20.0, "P4": 60.0}
BATCH = 1000


def _pin(cores) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)


def _subprocess(args, timeout):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    try:
        p = subprocess.run([sys.executable, "-m", "benchmarks.cold", *args], capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _runners(P, peers_wanted, notes):
    """name -> (callable, reference kind or None); symode's and the installed peers'."""
    import symode
    from benchmarks import peers
    from benchmarks.problems import SCHEME, STEPS
    h = symode.compile(P.model, SCHEME, STEPS)
    th = P.theta.copy()
    TH = np.tile(th, (BATCH, 1)) * (1 + 1e-3 * np.cos(np.arange(BATCH))[:, None])
    run = {
        "symode handle (Python)": (lambda x: h.grad_arrays(x)[:2], None),
        "symode handle GradResult": (lambda x: h.grad(x), None),
        "symode compute": (lambda x: symode.compute(P.model, "discrete", scheme=SCHEME, steps=STEPS), None),
        "symode C loop": (lambda x: h.batch(TH, threads=1), BATCH),
        "symode loss (forward)": (lambda x: h.loss(x), None),
    }
    for name in peers_wanted:
        try:
            fn = getattr(peers, PEERS[name])(P)
            fn(th)
            run[name] = (fn, None)
            if name == "jax":
                run["jax loss (forward)"] = (peers.make_jax_loss(P), None)
        except Exception as exc:  # not installed, or failing: the table says so
            notes.append(f"{P.name}: {name} not run: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return h, TH, run


def _agreement(P, h, run):
    """max relative differences of each tool's (L, gradient) with the matching symode route."""
    import symode
    from benchmarks.problems import SCHEME, STEPS
    L, g = h.grad_arrays(P.theta)[:2]
    adj = symode.compute(P.model, "adjoint", scheme=SCHEME, steps=STEPS)
    refs = {"discrete": (L, g), "continuous": (adj.loss, np.array(list(adj.grad.values())))}
    out = {}
    c = run["symode compute"][0](P.theta)
    out["symode compute"] = ("discrete", abs(c.loss - L) / abs(L),
                             float(np.max(np.abs(np.array(list(c.grad.values())) - g)) / np.max(np.abs(g))))
    for name, kind in REFERENCE.items():
        if name in run:
            Lt, gt = run[name][0](P.theta)
            Lr, gr = refs[kind]
            out[name] = (kind, abs(float(Lt) - Lr) / abs(Lr),
                         float(np.max(np.abs(np.asarray(gt) - gr)) / np.max(np.abs(gr))))
    return out


def _time(fn, x, per, seconds):
    reps = max(1, int(seconds / max(per, 1e-7)))
    t = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return (time.perf_counter() - t) / reps


def _measure(P, run, rounds, seconds, h, TH):
    per = {}
    for name, (fn, n) in run.items():
        t = time.perf_counter()
        fn(P.theta)
        per[name] = (time.perf_counter() - t)
    names = list(run)
    times = {n: [] for n in names}
    batch2 = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn, n = run[name]
            times[name].append(_time(fn, P.theta, per[name], seconds) / (n or 1))
        _pin({0, 1})  # the batch: both cores
        t = time.perf_counter()
        h.batch(TH, threads=2)
        batch2.append((time.perf_counter() - t) / BATCH)
        _pin({0})
    times["symode batch (2 threads)"] = batch2
    return times


def _table(results, cold, oracle, notes, args) -> str:
    lines = ["# symode benchmark", "",
             f"`python -m benchmarks.run {' '.join(args)}` on {platform.machine()} ({os.cpu_count()} cores), "
             f"Python {platform.python_version()}; float64, rk38 (torchdiffeq's rk4), 100 steps on [0, 1], "
             "observation losses at t = 0.1, ..., 1; one pinned core except the batch; medians over "
             "interleaved rounds; ratios are medians of per-round ratios.", ""]
    for P, res in results.items():
        lines += [f"## {P} — {res['label']}", "",
                  "| tool | µs per gradient | ratio to JAX | target | agreement (L, dL/dθ) vs |", "|---|---|---|---|---|"]
        for name, t in res["median_us"].items():
            ratio = res["ratio"].get(name)
            target = TARGETS.get(name)
            tcell = "" if target is None or ratio is None else (
                f"≤ {target} {'met' if ratio <= target else f'MISSED by {ratio / target:.2f}x'}")
            ag = res["agreement"].get(name)
            acell = "" if ag is None else f"{ag[1]:.1e}, {ag[2]:.1e} vs symode {ag[0]}"
            lines.append(f"| {name} | {t:,.1f} | {'' if ratio is None else f'{ratio:.2f}'} | {tcell} | {acell} |")
        gf = res.get("grad_over_forward", {})
        lines += ["", "grad/forward: " + ", ".join(f"{k} {v:.2f}" for k, v in gf.items())
                  + " (target for symode ≤ 3)",
                  f"batch of {BATCH}: 2 threads / 1-thread C loop = {res['batch_ratio']:.2f} (target ≤ 0.6)", ""]
    lines += ["## Cold costs (fresh process, empty cache) and oracle", "",
              "| problem | derive (s) | generate (s) | compile (s) | total (s) | target | second compile (s) | C size (kB) | oracle 30 digits (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for P in results:
        c, o = cold.get(P, {}), oracle.get(P, {})
        if "error" in c:
            lines.append(f"| {P} | {c['error']} | | | | | | | |")
            continue
        tgt = COLD_TARGETS.get(P)
        over = c.get("cold_s", 0) / tgt if tgt else 0
        tcell = "" if tgt is None or not c else (f"≤ {tgt:g} " + ("met" if over <= 1 else f"MISSED by {over:.1f}x"))
        ocell = o.get("error", f"{o['oracle_s']:.1f}" if "oracle_s" in o else "not run")
        lines.append(f"| {P} | {c.get('derive_s', 0):.2f} | {c.get('generate_s', 0):.2f} | "
                     f"{c.get('compile_s', 0):.2f} | {c.get('cold_s', 0):.2f} | {tcell} | "
                     f"{c.get('second_compile_s', 0):.4f} | {c.get('c_bytes', 0) / 1e3:.0f} | {ocell} |")
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="P1,P2,P3,P4")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.3, help="time per tool per round")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--oracle", default="P1,P2", help="problems whose oracle is timed (subprocess)")
    ap.add_argument("--oracle-timeout", type=float, default=600)
    ap.add_argument("--cold-timeout", type=float, default=1800)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--smoke", action="store_true", help="CI: P1, P2, one short round, agreement checked")
    args = ap.parse_args(argv)
    argv_text = list(sys.argv[1:] if argv is None else argv)
    if args.smoke:
        args.problems, args.rounds, args.seconds, args.oracle = "P1,P2", 1, 0.05, "P1"
    _pin({0})
    from benchmarks.problems import problems
    names = [p for p in args.problems.split(",") if p]
    peers_wanted = [p for p in args.peers.split(",") if p]
    notes: list[str] = []
    cold = {n: _subprocess([n], args.cold_timeout) for n in names}
    oracle = {n: _subprocess([n, "--oracle"], args.oracle_timeout) for n in names
              if n in args.oracle.split(",")}
    for n in names:
        if n not in oracle:
            notes.append(f"{n}: oracle not timed (not in --oracle)")
    results, failed = {}, []
    for P in problems(names):
        h, TH, run = _runners(P, peers_wanted, notes)
        agree = _agreement(P, h, run)
        for name, (kind, dl, dg) in agree.items():
            if not (dl <= TOLERANCES[kind] and dg <= TOLERANCES[kind]):
                failed.append(f"{P.name}: {name} disagrees with symode {kind}: loss {dl:.1e}, gradient {dg:.1e}")
        times = _measure(P, run, args.rounds, args.seconds, h, TH)
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        ratio = {}
        if "jax" in times:
            for k, v in times.items():
                if k != "symode batch (2 threads)":
                    ratio[k] = statistics.median(a / b for a, b in zip(v, times["jax"]))
        gf = {"symode": statistics.median(a / b for a, b in zip(times["symode handle (Python)"],
                                                                 times["symode loss (forward)"]))}
        if "jax loss (forward)" in times:
            gf["jax"] = statistics.median(a / b for a, b in zip(times["jax"], times["jax loss (forward)"]))
        results[P.name] = {"label": P.label, "median_us": med, "ratio": ratio, "agreement": agree,
                           "grad_over_forward": gf, "rounds_us": {k: [x * 1e6 for x in v] for k, v in times.items()},
                           "batch_ratio": statistics.median(a / b for a, b in zip(times["symode batch (2 threads)"],
                                                                                    times["symode C loop"]))}
    text = _table(results, cold, oracle, notes + failed, argv_text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(text)
    (out / "latest.json").write_text(json.dumps({"results": results, "cold": cold, "oracle": oracle,
                                                 "notes": notes, "failed": failed, "tolerances": TOLERANCES},
                                                indent=1, default=float) + "\n")
    print(text)
    for f in failed:
        print("FAILED: " + f, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
