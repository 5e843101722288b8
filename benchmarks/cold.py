"""Cold costs of one benchmark problem, measured in a fresh process with an empty build cache:

    python -m benchmarks.cold P2      -> one JSON line on stdout

derive (SymPy derivation and translation to CasADi: ``model_graphs``), generate (kernels, reference graph and C
text), compile (``cc`` through the content-addressed cache), then a second ``symode.compile`` of an equal model
object in the same process (a handle-cache hit) and ``symode.compute(model, "discrete")`` twice (first: with the
stability check; second: cached).  ``--oracle`` instead times ``compute(model, "oracle", digits=30)``.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    oracle = "--oracle" in argv
    name = [a for a in argv if not a.startswith("--")][0]
    os.environ["SYMODE_CACHE_DIR"] = tempfile.mkdtemp(prefix="symode-bench-cache-")
    import symode
    from benchmarks.problems import SCHEME, STEPS, problems
    out: dict = {"problem": name}
    if oracle:
        P = problems((name,))[0]
        t = time.perf_counter()
        r = symode.compute(P.model, "oracle", digits=30)
        out.update(oracle_s=time.perf_counter() - t, error_bound=str(r.error_bound))
        print(json.dumps(out))
        return 0
    from symode.casadi.model_graphs import model_graphs
    from symode.codegen.build import build_shared_library
    from symode.codegen.ctext import FILE_STEM, generate
    P = problems((name,))[0]
    t = time.perf_counter()
    model_graphs(P.model)
    out["derive_s"] = time.perf_counter() - t
    t = time.perf_counter()
    code = generate(P.model, SCHEME, STEPS, casadi_api=False)  # what symode.compile builds
    out["generate_s"] = time.perf_counter() - t
    out["c_bytes"] = len(code.files[f"{FILE_STEM}.c"])
    t = time.perf_counter()
    from symode.codegen.handle import compile_flags
    source = code.files[f"{FILE_STEM}.c"]
    build_shared_library({f"{FILE_STEM}.c": source}, name_hint="handle", flags=compile_flags(len(source)))
    out["compile_s"] = time.perf_counter() - t
    out["cold_s"] = out["derive_s"] + out["generate_s"] + out["compile_s"]
    t = time.perf_counter()
    symode.compile(P.model, SCHEME, STEPS)  # generates again (the handle cache is empty), then a build-cache hit
    out["handle_build_cache_hit_s"] = time.perf_counter() - t
    again = problems((name,))[0].model  # an equal model, another object
    t = time.perf_counter()
    symode.compile(again, SCHEME, STEPS)
    out["second_compile_s"] = time.perf_counter() - t
    t = time.perf_counter()
    symode.compute(P.model, "discrete", scheme=SCHEME, steps=STEPS)
    out["compute_first_s"] = time.perf_counter() - t
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
