"""C text for a model's forward solve, loss and gradient routes (first of three stages: text -> files -> build).

:func:`generate` is a pure function of (model, scheme, steps): it builds CasADi Functions in memory and returns
the generated C source, one documented header and a JSON description as bytes -- it writes no file (see
:mod:`symode.codegen.write`) and compiles nothing (see :mod:`symode.codegen.build`).

Functions (``P`` is the generated name prefix, see *Names*; every input and output is a dense column-major
double array; ``nz`` states, ``np`` parameters, ``m`` observations):

* ``P_z0``:      (i0 = θ [np]) -> (o0 = z0(θ) [nz]), the model's initial state
* ``P_forward``: (i0 = z0 [nz], i1 = θ [np], i2 = t0, i3 = t1) -> (o0 = z(t1) [nz], o1 = Z [nz x m], z at the
  observation times, o2 = Q = ∫ r dt, 0 without a running cost)
* ``P_loss``:    (i0 = θ [np], i1 = z0 [nz], i2 = t0, i3 = t1) -> (o0 = L)
* ``P_grad``:    inputs as ``P_loss`` -> (o0 = L, o1 = ∂L/∂θ with z0 held fixed [np], o2 = dL/dz0 [nz],
  o3 = dL/dt0, o4 = dL/dt1, o5 = dL/dθ total [np])
* ``P_fsens``:   inputs as ``P_loss`` -> the same six outputs as ``P_grad``

``P_grad`` is the discrete adjoint: one reverse-mode sweep (``Function.reverse``) through the loss graph.
``P_fsens`` is the discrete forward sensitivity: forward mode (``Function.forward``) in np + nz + 2 directions.
Both differentiate the same fixed-step graph, so they agree to rounding.  o5 = o1 + (∂z0/∂θ)ᵀ o2 is the
total derivative dL/dθ of :class:`symode.result.GradResult` when i1 = z0(θ) (call ``P_z0`` first).

The discrete graph (equations as in :mod:`symode.casadi.solvers`): the solve runs segment by segment,
t0 -> τ_1 -> ... -> τ_m [-> t1] (:func:`symode.casadi.model_graphs.segments`); observation times τ_i are fixed
absolute times, t0 and t1 are inputs.  ``steps`` fixed steps are shared among the segments in proportion to
their nominal lengths (:func:`symode.casadi.solvers.allocate_steps`), uniform within a segment.  A running cost
is integrated as an extra state q' = r with the same scheme.  L = Σ ℓ_i(z(τ_i)) + ℓ(z(t1)) + q(t1).  (A model
without parameters is solved with one unused dummy parameter: CasADi 3.8.2 emits C that does not compile for
a fold over an empty input; the exported functions still take θ of size 0.)

Sign conventions (continuous limit, :mod:`symode.symbolic.derive`): dL/dt1 = ∂ℓ/∂z f(z(t1), t1) + r(z(t1), t1);
dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0) with λ(t0) = dL/dz0.  Where the last observation lies exactly at t1,
the solve ends at that fixed time: the t1 input is unused, o4 is 0 and the header says that dL/dt1 is undefined
there (one-sided), as ``symode grad`` reports by omitting it.

Names (hardening: CasADi writes names into C unescaped, docs/design.md): the prefix is
``"symode_" + sha256(format, model fingerprint, scheme, steps)[:12]``; inputs are ``i0..``, outputs ``o0..``;
internal Function names come from :mod:`symode.casadi.model_graphs` and :mod:`symode.casadi.solvers` (fixed
words and hashes).  State, parameter and model names appear in the header only as C comments and only when
they match :data:`SAFE_NAME`; otherwise by index, with the full name in the JSON file (JSON-escaped).

Determinism: the bytes depend only on the model, scheme, steps and the symode and CasADi versions (no time
stamps, paths or process counters); CasADi's output is used as it is, with a fixed preamble added.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping

import casadi

from symode._version import __version__ as SYMODE_VERSION
from symode.casadi.model_graphs import exact_fraction, model_graphs, segments
from symode.casadi.schemes import SCHEMES
from symode.casadi.solvers import allocate_steps, fixed_step_solve
from symode.casadi.translate import nearest_double
from symode.errors import BuildError, SpecError
from symode.model import Model

__all__ = ["FORMAT", "SAFE_NAME", "FILE_STEM", "WORDS", "CODEGEN_OPTIONS", "GeneratedCode", "generate",
           "check_options", "function_prefix", "display_name"]

#: Bumped whenever the generated layout (functions, their inputs/outputs, file names) changes; hashed into names.
FORMAT = "symode-codegen-1"

#: A name shown in a C comment must match this (no '*', '/', backslash, quote, space or newline can occur).
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}\Z")

#: Every generated directory holds FILE_STEM.c, FILE_STEM.h and FILE_STEM.json.
FILE_STEM = "symode_model"

#: CodeGenerator options, all explicit so a change of CasADi's defaults cannot change the output silently.
#: ``codegen_scalars``: CasADi's default keeps scalar intermediates in local variables and stores their address
#: in ``res[k]`` for a nested call, which gcc 12 rejects under -Wall -Werror (-Wdangling-pointer); with it on,
#: scalars live in the work array ``w`` (same operations, same results).
CODEGEN_OPTIONS = {"with_header": False, "with_mem": False, "main": False, "mex": False, "cpp": False,
                   "casadi_real": "double", "casadi_int": "long long int", "with_export": True,
                   "verbose": False, "indent": 2, "codegen_scalars": True}

WORDS = ("z0", "forward", "loss", "grad", "fsens")

# CasADi graph construction and code generation are not thread-safe
_LOCK = threading.Lock()

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


@dataclass(frozen=True)
class GeneratedCode:
    """The generated text of one model (``files``: file name -> bytes) and the in-memory Functions it came from.

    ``functions`` maps a word of :data:`WORDS` to the ``casadi.Function`` that was code-generated (for checking
    the compiled code against it); ``names`` maps the same words to the exported C names.
    """

    prefix: str
    files: dict
    functions: dict = field(repr=False)
    names: dict = field(default_factory=dict)
    steps_per_segment: tuple = ()


def function_prefix(model: Model, scheme: str, steps: int) -> str:
    """``symode_`` + 12 hex digits of sha256 over (FORMAT, model fingerprint, scheme, steps): no user text."""
    text = "\0".join((FORMAT, model.fingerprint(), scheme, str(steps)))
    return "symode_" + hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def display_name(name: str) -> str | None:
    """``name`` if it may appear in a C comment (matches :data:`SAFE_NAME`), else None."""
    return name if isinstance(name, str) and SAFE_NAME.match(name) else None


def check_options(scheme, steps) -> None:
    """Raise :class:`SpecError` unless ``scheme`` names a built-in scheme and ``steps`` is in 1..100000."""
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise SpecError(f"scheme {scheme!r} is not one of the built-in schemes: {', '.join(SCHEMES)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 100_000:
        raise SpecError(f"steps must be an integer from 1 to 100000, got {steps!r}")


# -- the graphs ------------------------------------------------------------------------------------------------
# symode.casadi.routes builds its own loss graph: mapaccum over a table of grid times, because the stored-
# trajectory and back-solve adjoints need every node.  Here the loop is a fold with an exact step counter, so
# the generated C does not grow with the step count.  The two agree to rounding (tests/test_codegen.py
# checks it); sharing one graph would make the compiled and in-process routes the very same Function.

def _graphs(model: Model, scheme: str, steps: int, prefix: str) -> tuple[dict, tuple]:
    g = model_graphs(model)
    nz, np_ = model.nz, model.np
    naug = g.naug
    t0n, t1n = exact_fraction(model.t0), exact_fraction(model.t1)
    segs = segments(model)
    ends = [Fraction(1) if end is None else (end - t0n) / (t1n - t0n) for _, end, _ in segs]
    counts = allocate_steps(ends, steps)
    solves: dict[int, casadi.Function] = {}
    # CasADi 3.8.2 emits C that does not compile (an integer passed as a pointer) for a fold over an empty
    # input, so a model without parameters is solved with one unused dummy parameter
    npad = max(np_, 1)
    if np_ == 0:
        ys, ts, ps = casadi.SX.sym("y", naug), casadi.SX.sym("t"), casadi.SX.sym("p", 1)
        faug = casadi.Function(f"{prefix}_faug", [ys, ts, ps], [g.faug(ys, ts, casadi.SX(0, 1))],
                               ["y", "t", "p"], ["dy"])
    else:
        faug = g.faug

    def solve(n):
        if n not in solves:
            solves[n] = fixed_step_solve(faug, scheme, naug, npad, n, (1,), name=f"{prefix}_solve{n}")
        return solves[n]

    p = casadi.MX.sym("p", np_)
    psolve = p if np_ else casadi.MX(1, 1)
    z0 = casadi.MX.sym("z0", nz)
    t0 = casadi.MX.sym("t0")
    t1 = casadi.MX.sym("t1")
    y = casadi.vertcat(z0, casadi.MX(naug - nz, 1))
    L = casadi.MX(0)
    Zobs = []
    if g.obs0 is not None:  # an observation at t0: on z0, and the solve starts at that fixed time
        Zobs.append(z0)
        L = L + g.obs[g.obs0](z0, p)[0]
    for (start, end, obs), n in zip(segs, counts):
        ta = t0 if start is None else casadi.MX(nearest_double(start))
        tb = t1 if end is None else casadi.MX(nearest_double(end))
        y = solve(n)(y, psolve, ta, tb)
        if obs is not None:
            Zobs.append(y[:nz])
            L = L + g.obs[obs](y[:nz], p)[0]
    z1 = y[:nz]
    if model.terminal is not None:
        L = L + g.terminal(z1, p)[0]
    Q = y[nz] if naug > nz else casadi.MX(0)
    if model.running is not None:
        L = L + Q
    Z = casadi.horzcat(*Zobs) if Zobs else casadi.MX(nz, 0)

    ins = [f"i{k}" for k in range(4)]
    fns = {}
    fns["z0"] = casadi.Function(f"{prefix}_z0", [p], [g.z0(p)], ["i0"], ["o0"])
    fns["forward"] = casadi.Function(f"{prefix}_forward", [z0, p, t0, t1], [z1, Z, Q], ins, ["o0", "o1", "o2"])
    loss = casadi.Function(f"{prefix}_loss", [p, z0, t0, t1], [L], ins, ["o0"])
    fns["loss"] = loss
    J0 = g.dz0dp(p)

    def outputs(dp, dz0, dt0, dt1):
        return [L, dp, dz0, dt0, dt1, dp + casadi.mtimes(J0.T, dz0)]

    outs = [f"o{k}" for k in range(6)]
    # discrete adjoint: one reverse sweep of the loss graph, seed dL = 1
    rev = loss.reverse(1)
    adj = rev(p, z0, t0, t1, L, casadi.MX(1))
    fns["grad"] = casadi.Function(f"{prefix}_grad", [p, z0, t0, t1], outputs(*adj), ins, outs)
    # discrete forward sensitivity: forward mode with the unit seeds of all np + nz + 2 inputs at once
    n = np_ + nz + 2
    eye = casadi.DM.eye(n)
    fwd = loss.forward(n)
    seeds = [eye[0:np_, :], eye[np_:np_ + nz, :], eye[np_ + nz, :], eye[np_ + nz + 1, :]]
    row = fwd(p, z0, t0, t1, L, *seeds)  # 1 x n: dL/d(theta, z0, t0, t1)
    row = row.T
    fns["fsens"] = casadi.Function(f"{prefix}_fsens", [p, z0, t0, t1],
                                   outputs(row[0:np_], row[np_:np_ + nz], row[np_ + nz], row[np_ + nz + 1]),
                                   ins, outs)
    return fns, tuple(counts)


# -- the text --------------------------------------------------------------------------------------------------

_EXPORT = re.compile(r"^CASADI_SYMBOL_EXPORT (.+?)\s*\{", re.M)


def _prototypes(c_text: str) -> list[str]:
    """The exported definitions of the generated C, as prototypes (taken from the code itself)."""
    protos = [m.group(1).strip() + ";" for m in _EXPORT.finditer(c_text)]
    if not protos:
        raise BuildError("CasADi's generated C has no exported function (CASADI_SYMBOL_EXPORT); "
                         "this CasADi version is not supported by symode's code generation")
    return protos


def _work_sizes(c_text: str, name: str) -> dict[str, int]:
    m = re.search(re.escape(name) + r"_work\(casadi_int \*sz_arg[^{]*\{(.*?)\n\}", c_text, re.S)
    sizes = {}
    if m:
        for key in ("arg", "res", "iw", "w"):
            k = re.search(r"if \(sz_" + key + r"\) \*sz_" + key + r" = (\d+);", m.group(1))
            if k:
                sizes[key] = int(k.group(1))
    if len(sizes) != 4:
        raise BuildError(f"cannot read the work sizes of {name} from CasADi's generated C; "
                         "this CasADi version is not supported by symode's code generation")
    return sizes


def _num(x: float) -> str:
    """A C double literal that parses back to exactly ``x`` (shortest round-trip repr)."""
    text = repr(float(x))
    if text in ("inf", "-inf", "nan"):
        raise SpecError(f"a nominal value is not finite ({text})")
    return text


def _wrap(lines: list[str]) -> str:
    body = []
    for line in lines:
        if "*/" in line or "/*" in line or "??" in line:  # our own text; a slip here must not reach the C
            raise AssertionError(f"comment text may not contain '*/', '/*' or '??': {line!r}")
        body.append((" * " + line).rstrip())
    return "/*\n" + "\n".join(body) + "\n */\n"


def _named(kind: str, names: list[str]) -> list[str]:
    out = []
    for i, n in enumerate(names):
        shown = display_name(n)
        out.append(f"  {kind}[{i}]  " + (shown if shown is not None
                                           else f"(name not shown: outside [A-Za-z0-9_.-]; see {FILE_STEM}.json)"))
    return out


def _header(model: Model, scheme: str, steps: int, gen: dict, fns: dict, c_text: str, c_sha: str) -> str:
    # Long because it is one template: the header's text top to bottom, in the order a reader compares it with
    # the generated file; split into pieces it would no longer read like the file it writes.
    prefix = gen["prefix"]
    nz, np_, m = model.nz, model.np, len(model.observations)
    tab = SCHEMES[scheme]
    shown_model = display_name(model.name)
    guard = prefix.upper() + "_H"
    doc = [
        f"{FILE_STEM}.h: C interface of symode-generated code for one model.",
        "",
        f"Generated by symode {SYMODE_VERSION} with CasADi {casadi.__version__}; format {FORMAT}.",
        f"Model hash (Model.fingerprint, sha256): {model.fingerprint()}",
        "Model name: " + (shown_model if shown_model else f"(not shown: outside [A-Za-z0-9_.-]; see {FILE_STEM}.json)"),
        f"Source: {FILE_STEM}.c (sha256 {c_sha}); every name and meaning also in {FILE_STEM}.json.",
        f"Function name prefix: {prefix} (a hash of the format, model hash, scheme and steps; no user text).",
        "",
        "Problem:  dz/dt = f(z, t, theta),  z(t0) = z0,  t in [t0, t1],",
        "          L = l(z(t1), theta) + sum_i l_i(z(tau_i), theta) + integral_{t0}^{t1} r(z(t), t, theta) dt",
        "(the loss parts the model has: "
        + ", ".join(x for x, present in (("terminal l", model.terminal is not None),
                                         (f"{m} observation terms l_i", m > 0),
                                         ("running cost r", model.running is not None)) if present) + ").",
        "",
        f"States z (nz = {nz}):",
        *_named("z", model.state_names),
        f"Parameters theta (np = {np_}), in the model's parameter order:",
        *_named("theta", model.param_names),
        f"Nominal values: macros {prefix}_THETA (theta), {prefix}_Z0 (z0(theta)), {prefix}_T0, {prefix}_T1",
        "(each the double nearest to the model's exact value; with np = 0, THETA is the placeholder {0.0}).",
    ]
    if m:
        doc += [f"Observation times tau_i (m = {m}; fixed absolute times; t0 < tau_1 and tau_m <= t1 required,",
                "not checked): " + ", ".join(_num(nearest_double(o.time)) for o in model.observations)]
    doc += [
        "",
        f"Discretisation: {scheme} ({tab.stages} stages, order {tab.order}{', implicit' if tab.implicit else ''}),"
        f" {steps} fixed steps in total,",
        "split over the segments t0 -> tau_1 -> ... -> tau_m [-> t1] in proportion to their nominal lengths:",
        "  steps per segment: " + ", ".join(str(c) for c in gen["counts"]) + " (uniform within a segment).",
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
          if any(o.time == model.t1 for o in model.observations) else []),
        "",
        "Functions (inputs i0.., outputs o0..; dense, column-major arrays of casadi_real):",
    ]
    table = {
        "z0": ([("i0", "np", "theta")], [("o0", "nz", "z0(theta), the model's initial state")]),
        "forward": ([("i0", "nz", "z0, the initial state"), ("i1", "np", "theta"), ("i2", "1", "t0"),
                     ("i3", "1", "t1")],
                    [("o0", "nz", "z(t1)"),
                     ("o1", f"nz x {m}", "z(tau_i) in column i (empty when m = 0)"),
                     ("o2", "1", "integral of r from t0 to t1 (0 without a running cost)")]),
        "loss": (list(_LOSS_INPUTS), [("o0", "1", "L")]),
        "grad": (list(_LOSS_INPUTS), list(_GRAD_OUTPUTS)),
        "fsens": (list(_LOSS_INPUTS), list(_GRAD_OUTPUTS)),
    }
    what = {
        "z0": "the initial state as the model defines it from theta",
        "forward": "the forward solve (note the input order: z0 first)",
        "loss": "the loss of the discrete solve",
        "grad": "discrete adjoint: L and its gradient by one reverse-mode sweep of the loss graph",
        "fsens": f"discrete forward sensitivity: the same outputs by forward mode ({np_ + nz + 2} directions)",
    }
    for word in WORDS:
        name = gen["names"][word]
        ins, outs = table[word]
        sz = gen["work"][word]
        doc.append("")
        doc.append(f"{name}: {what[word]}.")
        for io, shape, meaning in ins:
            doc.append(f"  in  {io} [{shape}]  {meaning}")
        for io, shape, meaning in outs:
            doc.append(f"  out {io} [{shape}]  {meaning}")
        doc.append(f"  work sizes: arg {sz['arg']}, res {sz['res']}, iw {sz['iw']}, w {sz['w']}")
    doc += [
        "",
        "Calling F (CasADi's C API, the same for each function above):",
        "  casadi_int n_arg, n_res, n_iw, n_w;  F_work(&n_arg, &n_res, &n_iw, &n_w);",
        "  arrays: const casadi_real *arg[n_arg]; casadi_real *res[n_res]; casadi_int iw[n_iw]; casadi_real w[n_w];",
        "  arg[k] points to input k, res[k] to output k (NULL: output not wanted);",
        "  F_incref(); int mem = F_checkout(); int flag = F(arg, res, iw, w, mem); F_release(mem); F_decref();",
        "  flag != 0 means the evaluation failed.",
        "Results are NOT checked: a blow-up gives inf or NaN silently; check every result for finiteness.",
        "Compile with IEEE semantics (never -ffast-math): e.g. cc -std=c99 -O2 -c symode_model.c",
        "",
        "Define SYMODE_SHORT_NAMES before including this header for the aliases symode_<function> and SYMODE_<macro>",
        "(one model per translation unit).",
    ]
    theta = [nearest_double(v) for v in model.theta]
    z0 = [float(x) for x in casadi.DM(fns["z0"](casadi.DM(theta) if np_ else casadi.DM(0, 1))).full().ravel()]
    macros = [
        f"#define {prefix}_NZ {nz}",
        f"#define {prefix}_NP {np_}",
        f"#define {prefix}_NOBS {m}",
        f"#define {prefix}_STEPS {steps}",
        # ISO C has no empty initializer: without parameters the macro is a one-element placeholder
        f"#define {prefix}_THETA {{" + (", ".join(_num(x) for x in theta) if theta else "0.0") + "}",
        f"#define {prefix}_Z0 {{" + ", ".join(_num(x) for x in z0) + "}",
        f"#define {prefix}_T0 {_num(nearest_double(model.t0))}",
        f"#define {prefix}_T1 {_num(nearest_double(model.t1))}",
    ]
    for word in WORDS:
        for key in ("arg", "res", "iw", "w"):
            macros.append(f"#define {gen['names'][word]}_SZ_{key.upper()} {gen['work'][word][key]}")
    short = ["#ifdef SYMODE_SHORT_NAMES"]
    for macro in ("NZ", "NP", "NOBS", "STEPS", "THETA", "Z0", "T0", "T1"):
        short.append(f"#define SYMODE_{macro} {prefix}_{macro}")
    for proto in _prototypes(c_text):
        ident = re.search(r"(" + re.escape(prefix) + r"_\w+)\s*\(", proto)
        if ident:
            short.append(f"#define {'symode' + ident.group(1)[len(prefix):]} {ident.group(1)}")
    short.append("#endif")
    return "".join([
        _wrap(doc),
        f"#ifndef {guard}\n#define {guard}\n\n",
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
        "#ifndef casadi_real\n#define casadi_real double\n#endif\n\n",
        "#ifndef casadi_int\n#define casadi_int long long int\n#endif\n\n",
        "\n".join(macros) + "\n\n",
        "\n".join(_prototypes(c_text)) + "\n\n",
        "\n".join(short) + "\n\n",
        "#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n\n",
        f"#endif /* {guard} */\n",
    ])


def _c_file(prefix: str, model: Model, dump: str) -> str:
    pre = _wrap([
        f"{FILE_STEM}.c: generated by symode {SYMODE_VERSION} with CasADi {casadi.__version__}; "
        f"format {FORMAT}.",
        f"Model hash (Model.fingerprint, sha256): {model.fingerprint()}",
        f"Functions {prefix}_*; documented in {FILE_STEM}.h.  Regenerate rather than edit.",
        "The code below is CasADi's code generator output, unchanged.",
    ])
    return pre + "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n" + dump + \
        "#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n"


def _json_text(model: Model, scheme: str, steps: int, gen: dict, file_sha: Mapping[str, str]) -> str:
    theta = [nearest_double(v) for v in model.theta]
    loss_in = [{"name": io, "shape": shape, "meaning": meaning} for io, shape, meaning in _LOSS_INPUTS]
    grad_out = [{"name": io, "shape": shape, "meaning": meaning} for io, shape, meaning in _GRAD_OUTPUTS]
    doc = {
        "format": FORMAT,
        "symode_version": SYMODE_VERSION,
        "casadi_version": casadi.__version__,
        "model": {
            "name": model.name,
            "fingerprint": model.fingerprint(),
            "states": model.state_names,
            "params": model.param_names,
            "theta": theta,
            "theta_exact": [str(v) for v in model.theta],
            "t0": nearest_double(model.t0), "t1": nearest_double(model.t1),
            "t0_exact": str(model.t0), "t1_exact": str(model.t1),
            "observation_times": [nearest_double(o.time) for o in model.observations],
            "observation_times_exact": [str(o.time) for o in model.observations],
            "loss_parts": {"terminal": model.terminal is not None, "observations": len(model.observations),
                           "running": model.running is not None},
        },
        "scheme": scheme,
        "steps": steps,
        "steps_per_segment": list(gen["counts"]),
        "prefix": gen["prefix"],
        "files": {name: {"sha256": sha} for name, sha in sorted(file_sha.items())},
        "functions": {
            word: {"c_name": gen["names"][word], "work": gen["work"][word]} for word in WORDS
        },
        "io": {
            "z0": {"inputs": [{"name": "i0", "shape": "np", "meaning": "theta"}],
                   "outputs": [{"name": "o0", "shape": "nz", "meaning": "z0(theta)"}]},
            "forward": {"inputs": [{"name": "i0", "shape": "nz", "meaning": "z0"},
                                   {"name": "i1", "shape": "np", "meaning": "theta"},
                                   {"name": "i2", "shape": "1", "meaning": "t0"},
                                   {"name": "i3", "shape": "1", "meaning": "t1"}],
                        "outputs": [{"name": "o0", "shape": "nz", "meaning": "z(t1)"},
                                    {"name": "o1", "shape": "nz x m", "meaning": "z at the observation times"},
                                    {"name": "o2", "shape": "1", "meaning": "integral of the running cost"}]},
            "loss": {"inputs": loss_in, "outputs": [{"name": "o0", "shape": "1", "meaning": "L"}]},
            "grad": {"inputs": loss_in, "outputs": grad_out, "method": "discrete adjoint (reverse mode)"},
            "fsens": {"inputs": loss_in, "outputs": grad_out, "method": "discrete forward sensitivity"},
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


def generate(model: Model, scheme: str = "rk4", steps: int = 100) -> GeneratedCode:
    """C text for ``model``: ``{FILE_STEM}.c``, ``.h`` and ``.json`` as bytes (see the module docstring).

    Pure: builds CasADi Functions in memory and returns text; writes and compiles nothing.  Raises
    :class:`SpecError` for an unknown scheme or a bad step count, :class:`~symode.errors.TranslationError` for an
    expression outside the translation table.
    """
    if not isinstance(model, Model):
        raise SpecError(f"generate takes a symode Model, not {type(model).__name__}")
    check_options(scheme, steps)
    prefix = function_prefix(model, scheme, steps)
    with _LOCK:
        fns, counts = _graphs(model, scheme, steps, prefix)
        cg = casadi.CodeGenerator(prefix, dict(CODEGEN_OPTIONS))
        for word in WORDS:
            cg.add(fns[word])
        dump = cg.dump()
    names = {word: fns[word].name() for word in WORDS}
    gen = {"prefix": prefix, "counts": counts, "names": names,
           "work": {word: _work_sizes(dump, names[word]) for word in WORDS}}
    c_text = _c_file(prefix, model, dump)
    c_bytes = c_text.encode("ascii")
    c_sha = hashlib.sha256(c_bytes).hexdigest()
    h_bytes = _header(model, scheme, steps, gen, fns, dump, c_sha).encode("ascii")
    shas = {f"{FILE_STEM}.c": c_sha, f"{FILE_STEM}.h": hashlib.sha256(h_bytes).hexdigest()}
    j_bytes = _json_text(model, scheme, steps, gen, shas).encode("ascii")
    files = {f"{FILE_STEM}.c": c_bytes, f"{FILE_STEM}.h": h_bytes, f"{FILE_STEM}.json": j_bytes}
    return GeneratedCode(prefix=prefix, files=files, functions=fns, names=names, steps_per_segment=counts)
