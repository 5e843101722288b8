"""The generated header and JSON description (part of the text stage, :mod:`symode.codegen.ctext`).

The header documents every exported function (flat API and CasADi convention), the model's states and
parameters (names only where they are safe in a C comment), sign conventions, sizes and work-array macros, and
declares the prototypes, taken from the generated C itself.  ``SYMODE_SHORT_NAMES`` gives prefix-free aliases
for every function and macro of the one included model.
"""
from __future__ import annotations

import json
import re
from typing import Mapping

import casadi

from symode._version import __version__ as SYMODE_VERSION
from symode.casadi.schemes import SCHEMES
from symode.casadi.translate import nearest_double
from symode.errors import BuildError, SpecError
from symode.model import Model

__all__ = ["header_text", "json_text", "prototypes", "wrap_comment"]

_EXPORT = re.compile(r"^CASADI_SYMBOL_EXPORT ([^{;]+?)\s*\{", re.M)

_GRAD_OUTPUTS = (
    ("o0", "1", "L, the loss"),
    ("o1", "np", "dL/dtheta with the z0 input held fixed (partial derivative)"),
    ("o2", "nz", "dL/dz0 = lambda(t0), the z0 input treated as free"),
    ("o3", "1", "dL/dt0"),
    ("o4", "1", "dL/dt1"),
    ("o5", "np", "dL/dtheta total = o1 + (dz0/dtheta)^T o2 (GradResult.grad when i1 = z0(theta))"),
)
_LOSS_INPUTS = (
    ("i0", "np", "theta, the parameters in the model's order"),
    ("i1", "nz", "z0, the initial state (z0(theta) from the _z0 function, or any other)"),
    ("i2", "1", "t0, the initial time"),
    ("i3", "1", "t1, the final time"),
)
_CAS_IO = {
    "z0": ([("i0", "np", "theta")], [("o0", "nz", "z0(theta), the model's initial state")]),
    "forward": ([("i0", "nz", "z0, the initial state"), ("i1", "np", "theta"), ("i2", "1", "t0"),
                 ("i3", "1", "t1")],
                [("o0", "nz", "z(t1)"), ("o1", "nz x m", "z(tau_i) in column i (empty when m = 0)"),
                 ("o2", "1", "integral of r from t0 to t1 (0 without a running cost)")]),
    "loss": (list(_LOSS_INPUTS), [("o0", "1", "L")]),
    "grad": (list(_LOSS_INPUTS), list(_GRAD_OUTPUTS)),
    "fsens": (list(_LOSS_INPUTS), list(_GRAD_OUTPUTS)),
}
_CAS_WHAT = {
    "z0": "the initial state as the model defines it from theta",
    "forward": "the forward solve (note the input order: z0 first)",
    "loss": "the loss of the discrete solve",
    "grad": "discrete adjoint (the same one-sweep algorithm as the flat _grad, as CasADi code)",
    "fsens": "discrete forward sensitivity: the same outputs by forward mode (a cross-check)",
}


def prototypes(c_text: str) -> list[str]:
    """The exported definitions of the generated C, as prototypes (taken from the code itself)."""
    protos = [re.sub(r"\s+", " ", m.group(1).strip()) + ";" for m in _EXPORT.finditer(c_text)]
    if not protos:
        raise BuildError("CasADi's generated C has no exported function (CASADI_SYMBOL_EXPORT); "
                         "this CasADi version is not supported by symode's code generation")
    return protos


def _num(x: float) -> str:
    """A C double literal that parses back to exactly ``x`` (shortest round-trip repr)."""
    text = repr(float(x))
    if text in ("inf", "-inf", "nan"):
        raise SpecError(f"a nominal value is not finite ({text})")
    return text


def wrap_comment(lines: list[str]) -> str:
    body = []
    for line in lines:
        if "*/" in line or "/*" in line or "??" in line:  # our own text; a slip here must not reach the C
            raise AssertionError(f"comment text may not contain '*/', '/*' or '??': {line!r}")
        body.append((" * " + line).rstrip())
    return "/*\n" + "\n".join(body) + "\n */\n"


def _named(kind: str, names: list[str], display, stem: str) -> list[str]:
    out = []
    for i, n in enumerate(names):
        shown = display(n)
        out.append(f"  {kind}[{i}]  " + (shown if shown is not None
                                           else f"(name not shown: outside [A-Za-z0-9_.-]; see {stem}.json)"))
    return out


def _flat_doc(P: str, m: int, N: int, gen: dict) -> list[str]:
    K = gen["interval"]
    store = ("every state and residual of the N steps is stored" if K >= N else
             f"states are stored every {K} steps (checkpoints) and each block is recomputed in the reverse pass")
    return [
        "",
        "Flat C API (plain arrays of double; any output pointer may be NULL when not wanted):",
        f"  int {P}_z0(const double *theta, double *z0);",
        f"  int {P}_loss(const double *theta, const double *z0, double t0, double t1, double *loss);",
        f"  int {P}_forward(const double *theta, const double *z0, double t0, double t1, double *z1,",
        "                  double *zobs, double *q);      zobs: nz x m, column i = z(tau_i); q = integral of r",
        f"  int {P}_grad(const double *theta, const double *z0, double t0, double t1, double *loss,",
        "               double *dtheta, double *dz0, double *dt0, double *dt1);",
        f"  int {P}_trajectory(const double *theta, const double *z0, double t0, double t1, double *y, double *t);",
        f"               y: {P}_NAUG x (N + 1) states (z, then q with a running cost) at the N + 1 grid nodes,",
        "               column-major; t: the node times",
        f"  int {P}_grad_batch(long n, const double *thetas, double t0, double t1, double *loss, double *dthetas);",
        "               n parameter sets, row k = thetas[k*np .. k*np + np - 1]; z0 = z0(theta); total dL/dtheta",
        "z0 == NULL means z0(theta): _grad then returns the total dL/dtheta (the z0(theta) chain included);",
        "with a z0 array it returns dL/dtheta with z0 held fixed, and dz0 = dL/dz0 = lambda(t0) either way.",
        "_grad is the discrete adjoint: one forward pass storing the states once, one reverse pass over the",
        f"step's vector-Jacobian product; {store}.",
        f"Each function F has a variant F_w(..., double *work) taking a work array of {P}_WORK doubles (no",
        "allocation, for repeated calls; one array per thread); F allocates it with malloc.",
        "Return value: 0 on success, -1 when the work array could not be allocated, otherwise the failing",
        "kernel's flag (an implicit stage whose Newton iteration did not converge).",
    ] + ([] if gen["step"] != "dense loops" else [
        "The right-hand side is a stack of dense layers: the step and its vector-Jacobian product are loops over",
        "the weight matrices (symode's, not CasADi's), with symode's own tanh (within 3 ulps); they agree with the",
        "CasADi-convention functions below to rounding, not bit for bit. -fno-trapping-math (no value changes)",
        "lets the compiler vectorise the activation loops.",
    ])


def header_text(model: Model, scheme: str, steps: int, gen: dict, z0: list, c_text: str, c_sha: str,
                display, stem: str, fmt: str) -> str:
    """The header (see the module docstring).  ``gen``: prefix, counts, names (CasADi-convention word -> C name),
    flat (word -> C name), work (word -> CasADi work sizes), flat_work, interval, nres, structure."""
    # Long: the header's documentation is one list of lines, kept in reading order.
    P = gen["prefix"]
    nz, np_, m = model.nz, model.np, len(model.observation_times)
    tab = SCHEMES[scheme]
    shown_model = display(model.name)
    guard = P.upper() + "_H"
    words = list(gen["names"])
    doc = [
        f"{stem}.h: C interface of symode-generated code for one model.",
        "",
        f"Generated by symode {SYMODE_VERSION} with CasADi {casadi.__version__}; format {fmt}.",
        f"Model hash (Model.fingerprint, sha256): {model.fingerprint()}",
        f"Structure hash (the model without parameter values; the C source depends only on it): {gen['structure']}",
        "Model name: " + (shown_model if shown_model else f"(not shown: outside [A-Za-z0-9_.-]; see {stem}.json)"),
        f"Source: {stem}.c (sha256 {c_sha}); every name and meaning also in {stem}.json.",
        f"Function name prefix: {P} (a hash of the format, structure hash, scheme, steps and options; no user",
        "text; the same for every parameter value: theta is an input).",
        "",
        "Problem:  dz/dt = f(z, t, theta),  z(t0) = z0,  t in [t0, t1],",
        "          L = l(z(t1), theta) + sum_i l_i(z(tau_i), theta) + integral_{t0}^{t1} r(z(t), t, theta) dt",
        "(the loss parts the model has: "
        + ", ".join(x for x, present in (("terminal l", model.has_terminal),
                                         (f"{m} observation terms l_i", m > 0),
                                         ("running cost r", model.has_running)) if present) + ").",
        "",
        f"States z (nz = {nz}):",
        *_named("z", model.state_names, display, stem),
        f"Parameters theta (np = {np_}), in the model's parameter order:",
        *_named("theta", model.param_names, display, stem),
        f"Nominal values: macros {P}_THETA (theta), {P}_Z0 (z0(theta)), {P}_T0, {P}_T1",
        "(each the double nearest to the model's exact value; with np = 0, THETA is the placeholder {0.0}).",
    ]
    if m:
        doc += [f"Observation times tau_i (m = {m}; fixed absolute times; t0 < tau_1 and tau_m <= t1 required,",
                "not checked): " + ", ".join(_num(nearest_double(tm)) for tm in model.observation_times)]
    doc += [
        "",
        f"Discretisation: {scheme} ({tab.stages} stages, order {tab.order}{', implicit' if tab.implicit else ''}),"
        f" {steps} fixed steps in total (N),",
        "split over the segments t0 -> tau_1 -> ... -> tau_m [-> t1] in proportion to their nominal lengths:",
        "  steps per segment: " + ", ".join(str(c) for c in gen["counts"]) + " (uniform within a segment:",
        "  step j of a segment [a, b] of n steps starts at a + (b - a)(j/n), h = (b - a)/n).",
        "All derivatives are exact derivatives of this discrete solve (discrete adjoint / forward mode), not of",
        "the ODE: they agree with the continuous gradient to the scheme's accuracy.",
        "",
        "Sign conventions (continuous limit; lambda(t) = dL/dz(t), the adjoint):",
        "  dL/dz0 = lambda(t0)",
        "  dL/dt0 = -lambda(t0)^T f(z0, t0) - r(z0, t0)      (starting later shortens the solve)",
        "  dL/dt1 = dl/dz(z(t1)) f(z(t1), t1) + r(z(t1), t1)",
        "Observation times stay fixed when t0 or t1 move.",
        *(["THIS MODEL'S FIRST OBSERVATION LIES AT t0: the solve starts at that fixed time, so the t0 input is",
           "not used (any value gives the same results) and the dL/dt0 output is 0; the true dL/dt0 is",
           "undefined there (one-sided), which `symode grad` reports by omitting grad_t0. Do not use it."]
          if model.observation_times and model.observation_times[0] == model.t0 else []),
        *(["THIS MODEL'S LAST OBSERVATION LIES AT t1: the solve ends at that fixed time, so the t1 input is",
           "not used (any value gives the same results) and the dL/dt1 output is 0; the true dL/dt1 is",
           "undefined there (one-sided), which `symode grad` reports by omitting grad_t1. Do not use it."]
          if model.observation_times and model.observation_times[-1] == model.t1 else []),
        *_flat_doc(P, m, steps, gen),
        "",
        "The same in CasADi's calling convention (inputs i0.., outputs o0..; dense, column-major arrays of",
        "casadi_real; loadable with casadi.external):",
    ]
    for word in words:
        name = gen["names"][word]
        ins, outs = _CAS_IO[word]
        sz = gen["work"][word]
        doc.append("")
        doc.append(f"{name}: {_CAS_WHAT[word]}.")
        for io, shape, meaning in ins:
            doc.append(f"  in  {io} [{shape}]  {meaning}")
        for io, shape, meaning in outs:
            doc.append(f"  out {io} [{shape}]  {meaning}")
        doc.append(f"  work sizes: arg {sz['arg']}, res {sz['res']}, iw {sz['iw']}, w {sz['w']}")
    doc += [
        "",
        "Calling F in CasADi's convention:",
        "  casadi_int n_arg, n_res, n_iw, n_w;  F_work(&n_arg, &n_res, &n_iw, &n_w);  (or the F_SZ_* macros)",
        "  arrays: const casadi_real *arg[n_arg]; casadi_real *res[n_res]; casadi_int iw[n_iw]; casadi_real w[n_w];",
        "  arg[k] points to input k, res[k] to output k (NULL: output not wanted);",
        "  F_incref(); int mem = F_checkout(); int flag = F(arg, res, iw, w, mem); F_release(mem); F_decref();",
        "  flag != 0 means the evaluation failed.",
        f"Functions named {P}_k_* are internal kernels of the flat API, not part of the interface.",
        "Results are NOT checked: a blow-up gives inf or NaN silently; check every result for finiteness.",
        "Compile with IEEE semantics (never -ffast-math): e.g. cc -std=c99 -O2 -c symode_model.c",
        "",
        "Define SYMODE_SHORT_NAMES before including this header for the aliases symode_<function> and",
        "SYMODE_<macro> of every function and macro below (one model per translation unit).",
    ]
    theta = [nearest_double(v) for v in model.theta]
    macros = {
        "NZ": str(nz), "NP": str(np_), "NOBS": str(m), "STEPS": str(steps), "NAUG": str(gen["naug"]),
        # ISO C has no empty initializer: without parameters the macro is a one-element placeholder
        "THETA": "{" + (", ".join(_num(x) for x in theta) if theta else "0.0") + "}",
        "Z0": "{" + ", ".join(_num(x) for x in z0) + "}",
        "T0": _num(nearest_double(model.t0)), "T1": _num(nearest_double(model.t1)),
        "WORK": str(gen["flat_work"]), "CHECKPOINT_INTERVAL": str(gen["interval"]),
    }
    lines = [f"#define {P}_{k} {v}" for k, v in macros.items()]
    sz_macros = []
    for word in words:
        for key in ("arg", "res", "iw", "w"):
            sz_macros.append(f"{gen['names'][word]}_SZ_{key.upper()}")
            lines.append(f"#define {sz_macros[-1]} {gen['work'][word][key]}")
    protos = prototypes(c_text)
    short = ["#ifdef SYMODE_SHORT_NAMES"]
    short += [f"#define SYMODE_{k} {P}_{k}" for k in macros]
    short += [f"#define SYMODE{s[len(P):]} {s}" for s in sz_macros]
    for proto in protos:
        ident = re.search(r"(" + re.escape(P) + r"_\w+)\s*\(", proto)
        if ident and not ident.group(1).startswith(P + "_k_"):
            short.append(f"#define {'symode' + ident.group(1)[len(P):]} {ident.group(1)}")
    short.append("#endif")
    return "".join([
        wrap_comment(doc),
        f"#ifndef {guard}\n#define {guard}\n\n",
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
        "#ifndef casadi_real\n#define casadi_real double\n#endif\n\n",
        "#ifndef casadi_int\n#define casadi_int long long int\n#endif\n\n",
        "\n".join(lines) + "\n\n",
        "\n".join(protos) + "\n\n",
        "\n".join(short) + "\n\n",
        "#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n\n",
        f"#endif /* {guard} */\n",
    ])


def json_text(model: Model, scheme: str, steps: int, gen: dict, file_sha: Mapping[str, str], fmt: str) -> str:
    theta = [nearest_double(v) for v in model.theta]
    loss_in = [{"name": io, "shape": shape, "meaning": meaning} for io, shape, meaning in _LOSS_INPUTS]
    grad_out = [{"name": io, "shape": shape, "meaning": meaning} for io, shape, meaning in _GRAD_OUTPUTS]
    io = {word: {"inputs": [{"name": a, "shape": b, "meaning": c} for a, b, c in _CAS_IO[word][0]],
                 "outputs": [{"name": a, "shape": b, "meaning": c} for a, b, c in _CAS_IO[word][1]]}
          for word in gen["names"]}
    io["grad"] = {"inputs": loss_in, "outputs": grad_out, "method": "discrete adjoint (one reverse sweep)"}
    if "fsens" in io:
        io["fsens"] = {"inputs": loss_in, "outputs": grad_out, "method": "discrete forward sensitivity"}
    doc = {
        "format": fmt,
        "symode_version": SYMODE_VERSION,
        "casadi_version": casadi.__version__,
        "model": {
            "name": model.name,
            "fingerprint": model.fingerprint(),
            "structure": gen["structure"],
            "states": model.state_names,
            "params": model.param_names,
            "theta": theta,
            "theta_exact": [str(v) for v in model.theta],
            "t0": nearest_double(model.t0), "t1": nearest_double(model.t1),
            "t0_exact": str(model.t0), "t1_exact": str(model.t1),
            "observation_times": [nearest_double(tm) for tm in model.observation_times],
            "observation_times_exact": [str(tm) for tm in model.observation_times],
            "loss_parts": {"terminal": model.has_terminal, "observations": len(model.observation_times),
                           "running": model.has_running},
        },
        "scheme": scheme,
        "steps": steps,
        "steps_per_segment": list(gen["counts"]),
        "prefix": gen["prefix"],
        "files": {name: {"sha256": sha} for name, sha in sorted(file_sha.items())},
        "flat": {"functions": gen["flat"], "work_doubles": gen["flat_work"],
                 "checkpoint_interval": gen["interval"], "residuals_per_step": gen["nres"],
                 "step_kernels": gen["step"]},
        "functions": {word: {"c_name": gen["names"][word], "work": gen["work"][word]} for word in gen["names"]},
        "io": io,
    }
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
