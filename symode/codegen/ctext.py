"""C text for a model's forward solve, loss and gradient (first of three stages: text -> files -> build).

:func:`generate` is a pure function of (model, scheme, steps, options): it builds CasADi Functions in memory
and returns the generated C source, one documented header and a JSON description as bytes -- it writes no file
(see :mod:`symode.codegen.write`) and compiles nothing (see :mod:`symode.codegen.build`).

The library (``P`` is the generated name prefix, see *Names*):

* the flat C API (:mod:`symode.codegen.driver`): ``P_z0``, ``P_loss``, ``P_forward``, ``P_grad``,
  ``P_trajectory``, ``P_grad_batch`` with plain pointer arguments, each with a ``_w`` variant taking a work
  array of ``P_WORK`` doubles.  ``P_grad`` is the one-reverse-sweep discrete adjoint of
  :mod:`symode.codegen.sweep`: the forward states stored once (checkpointed beyond a memory budget), one
  reverse pass over the step's VJP, dL/dθ, dL/dz0, dL/dt0 and dL/dt1 from the same pass.
* the same quantities in CasADi's calling convention (``arg``/``res``/``iw``/``w``; loadable with
  ``casadi.external``; every input and output a dense column-major double array; ``nz`` states, ``np``
  parameters, ``m`` observations):

  - ``P_cas_z0``:      (i0 = θ [np]) -> (o0 = z0(θ) [nz])
  - ``P_cas_forward``: (i0 = z0 [nz], i1 = θ [np], i2 = t0, i3 = t1) -> (o0 = z(t1) [nz], o1 = Z [nz x m],
    z at the observation times, o2 = Q = ∫ r dt, 0 without a running cost)
  - ``P_cas_loss``:    (i0 = θ [np], i1 = z0 [nz], i2 = t0, i3 = t1) -> (o0 = L)
  - ``P_cas_grad``:    inputs as ``P_cas_loss`` -> (o0 = L, o1 = ∂L/∂θ with z0 held fixed [np],
    o2 = dL/dz0 [nz], o3 = dL/dt0, o4 = dL/dt1, o5 = dL/dθ total [np])
  - ``P_cas_fsens`` (only with ``with_fsens``): the same six outputs by forward mode in np + nz + 2
    directions (a cross-check; it grows with the parameter count, so it is built only on request)

  ``P_cas_grad`` is :func:`symode.codegen.sweep.reference` (the in-memory graph the flat driver is checked
  against bit for bit) plus o5 = o1 + (∂z0/∂θ)ᵀ o2, the total derivative dL/dθ of
  :class:`symode.result.GradResult` when i1 = z0(θ).
* internal kernels ``P_k_*`` (one RK step with its residuals, the step's VJP, z0(θ) and its VJP, the loss
  terms), exported only because the driver calls them; not part of the API.

The discrete solve: segment by segment, t0 -> τ_1 -> ... -> τ_m [-> t1] (:func:`symode.casadi.model_graphs.
segments`); observation times τ_i are fixed absolute times, t0 and t1 are inputs.  ``steps`` fixed steps are
shared among the segments in proportion to their nominal lengths (:func:`symode.casadi.solvers.allocate_steps`),
uniform within a segment: step j of a segment [a, b] of n steps starts at a + (b - a)(j/n) with h = (b - a)/n.
A running cost is integrated as an extra state q' = r with the same scheme.  L = Σ ℓ_i(z(τ_i)) + ℓ(z(t1)) +
q(t1).  (A model without parameters is solved with one unused dummy parameter: CasADi 3.8.2 emits C that does
not compile for a loop over an empty input; the exported functions still take θ of size 0.)

Sign conventions (continuous limit, :mod:`symode.symbolic.derive`): dL/dt1 = ∂ℓ/∂z f(z(t1), t1) + r(z(t1), t1);
dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0) with λ(t0) = dL/dz0.  Where the last observation lies exactly at t1,
the solve ends at that fixed time: the t1 input is unused, dL/dt1 is 0 and the header says that dL/dt1 is
undefined there (one-sided), as ``symode grad`` reports by omitting it.

Names (hardening: CasADi writes names into C unescaped, docs/design.md): the prefix is ``"symode_" +
sha256(format, structure key, scheme, steps, options)[:12]`` where the structure key
(:func:`structure_key`) hashes the model without its parameter values: the C source does not depend on θ
(an input), so one compiled library serves every θ.  Inputs are ``i0..``, outputs ``o0..``; internal Function
names come from :mod:`symode.casadi.model_graphs`, :mod:`symode.casadi.solvers` and
:mod:`symode.codegen.sweep` (fixed words and hashes).  State, parameter and model names appear in the header
only as C comments and only when they match :data:`SAFE_NAME`; otherwise by index, with the full name in the
JSON file (JSON-escaped).

Determinism: the bytes depend only on the model, scheme, steps, options and the symode and CasADi versions (no
time stamps, paths or process counters); CasADi's output is used as it is, with a fixed preamble and symode's
driver added, except one line after each implicit stage's Newton loop (:func:`_newton_fails_loudly`): CasADi's
generated Newton iteration returns success after max_iter unconverged iterations, the in-memory one fails.
"""
from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import casadi

from symode._version import __version__ as SYMODE_VERSION
from symode.casadi.model_graphs import model_graphs
from symode.casadi.schemes import SCHEMES
from symode.codegen import dense, driver, header, sweep
from symode.errors import BuildError, SpecError
from symode.model import Model

__all__ = ["FORMAT", "SAFE_NAME", "FILE_STEM", "WORDS", "OPTIONAL_WORDS", "FLAT_WORDS", "CODEGEN_OPTIONS",
           "GeneratedCode", "generate", "check_options", "function_prefix", "display_name", "structure_key"]

#: Bumped whenever the generated layout (functions, their inputs/outputs, file names) changes; hashed into names.
#: 2: the flat C API and the one-sweep driver; the CasADi-convention functions renamed P_cas_*.
FORMAT = "symode-codegen-2"

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

#: The CasADi-convention functions of every library (``P_cas_<word>``), and those built only on request.
WORDS = ("z0", "forward", "loss", "grad")
OPTIONAL_WORDS = ("fsens",)
#: The flat C API (``P_<word>`` and ``P_<word>_w``).
FLAT_WORDS = ("z0", "loss", "forward", "grad", "trajectory", "grad_batch")

# CasADi graph construction and code generation are not thread-safe
_LOCK = threading.Lock()


@dataclass(frozen=True)
class GeneratedCode:
    """The generated text of one model (``files``: file name -> bytes) and the in-memory Functions it came from.

    ``functions`` maps a word of :data:`WORDS` (and ``fsens`` when requested) to the ``casadi.Function`` that was
    code-generated in CasADi's convention (for checking the compiled code against it); ``names`` maps the same
    words to the exported C names; ``flat`` maps :data:`FLAT_WORDS` to the flat API's C names.  ``work`` is the
    size (doubles) of the work array of the ``_w`` functions; ``interval`` the checkpoint interval K (K >= the
    step count: every state stored); ``nres`` the residuals stored per step.
    """

    prefix: str
    files: dict
    functions: dict = field(repr=False)
    names: dict = field(default_factory=dict)
    flat: dict = field(default_factory=dict)
    steps_per_segment: tuple = ()
    work: int = 0
    interval: int = 0
    nres: int = 0


_STRUCTURE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def structure_key(model: Model) -> str:
    """sha256 of the model without its parameter values (what the generated C depends on; θ is an input),
    computed once per model object."""
    key = _STRUCTURE.get(model)
    if key is None:
        method = getattr(model, "structure_hash", None)
        if callable(method):
            key = method()
        else:
            zeroed = model.with_values({p: 0 for p in model.params})
            key = hashlib.sha256(("structure\0" + zeroed.fingerprint()).encode()).hexdigest()
        _STRUCTURE[model] = key
    return key


def function_prefix(model: Model, scheme: str, steps: int, with_fsens: bool = False,
                    checkpoints: int | None = None, casadi_api: bool = True) -> str:
    """``symode_`` + 12 hex digits of sha256 over (FORMAT, structure key, scheme, steps, options): no user
    text, and the same for every parameter value."""
    text = "\0".join((FORMAT, structure_key(model), scheme, str(steps), f"fsens={with_fsens}",
                      f"checkpoints={checkpoints}") + (() if casadi_api else ("flat only",)))
    return "symode_" + hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def display_name(name: str) -> str | None:
    """``name`` if it may appear in a C comment (matches :data:`SAFE_NAME`), else None."""
    return name if isinstance(name, str) and SAFE_NAME.fullmatch(name) else None


def check_options(scheme, steps, checkpoints=None, *, cli: bool = False) -> None:
    """Raise :class:`SpecError` unless ``scheme`` names a built-in scheme, ``steps`` is in 1..100000 and
    ``checkpoints`` is None or in 1..steps; messages name the options as the caller writes them (``cli``:
    ``--steps``, else ``steps=``)."""
    from ..suggest import choose
    name = (lambda o: f"--{o}") if cli else (lambda o: f"{o}=")
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise SpecError(f"{name('scheme')} {scheme!r} is not a built-in scheme{choose(scheme, SCHEMES)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 100_000:
        raise SpecError(f"{name('steps')} must be an integer from 1 to 100000, got {steps!r}")
    if checkpoints is not None and (isinstance(checkpoints, bool) or not isinstance(checkpoints, int)
                                    or not 1 <= checkpoints <= steps):
        raise SpecError(f"{name('checkpoints')} must be an integer from 1 to the step count ({steps}), got "
                        f"{checkpoints!r}")


# -- the graphs ------------------------------------------------------------------------------------------------

def _dense(model: Model, g, scheme: str, prefix: str):
    """The dense step kernels (:mod:`symode.codegen.dense`) when the model's right-hand side is a stack of dense
    layers and the scheme is explicit, else None (CasADi's kernels, :func:`symode.codegen.sweep.step_kernels`)."""
    from symode.arrays.layers import dense_stack
    from symode.casadi.schemes import get_scheme
    tab = get_scheme(scheme)
    layers = None if tab.implicit else dense_stack(model.structure, model.t)
    if layers is None:
        return None
    offsets, off = {}, 0
    for grp in model.structure.param_groups:
        offsets[grp], off = off, off + grp.size
    if [e for grp in model.structure.param_groups for e in grp.elements] != list(model.params):
        raise BuildError("internal: the parameter groups are not in θ's order")  # pragma: no cover
    return dense.dense_step(prefix, layers, offsets, g.nz, tab)


def _graphs(model: Model, scheme: str, steps: int, prefix: str):
    """(graphs, kernels word -> CasADi Function compiled for the driver, Kernels of the step or None, Layout,
    DenseStep or None): a dense stack's step is written by :mod:`symode.codegen.dense`, so CasADi's step
    kernels are not built for it (they are for the in-memory functions, :func:`_functions`, on request)."""
    g = model_graphs(model)
    step = _dense(model, g, scheme, prefix)
    terms = sweep.term_kernels(g, f"{prefix}_k")
    lay = sweep.layout(g, steps)
    if step is not None:
        return g, terms, None, lay, step
    k = sweep.step_kernels(g, scheme, f"{prefix}_k")
    return g, sweep.TermKernels({"fstep": k.fstep, "bstep": k.bstep, **terms}, terms.rows), k, lay, None


def _functions(g, scheme: str, k, terms: dict, lay, prefix: str, with_fsens: bool) -> dict:
    """The CasADi-convention functions (word -> Function): :func:`symode.codegen.sweep.reference` on CasADi's
    kernels (built here when the driver's step is a dense one) and the driver's loss-term kernels ``terms``
    (the same Function objects, so CasADi generates each once), plus the total dL/dθ."""
    if k is None:
        k = sweep.step_kernels(g, scheme, f"{prefix}_k")
    ref = sweep.reference(g, k, terms, lay, f"{prefix}_ref")
    np_, nz = g.np, g.nz
    p, z0 = casadi.MX.sym("p", np_), casadi.MX.sym("z0", nz)
    t0, t1 = casadi.MX.sym("t0"), casadi.MX.sym("t1")
    ins = [f"i{j}" for j in range(4)]
    outs = [f"o{j}" for j in range(6)]
    J0 = g.dz0dp(p)

    def six(L, dp, dz0, dt0, dt1):
        return [L, dp, dz0, dt0, dt1, dp + casadi.mtimes(J0.T, dz0)]

    fns = {
        "z0": casadi.Function(f"{prefix}_cas_z0", [p], [g.z0(p)], ["i0"], ["o0"]),
        "forward": casadi.Function(f"{prefix}_cas_forward", [z0, p, t0, t1], ref["forward"](z0, p, t0, t1), ins,
                                   ["o0", "o1", "o2"]),
        "loss": casadi.Function(f"{prefix}_cas_loss", [p, z0, t0, t1], [ref["loss"](p, z0, t0, t1)], ins, ["o0"]),
        "grad": casadi.Function(f"{prefix}_cas_grad", [p, z0, t0, t1], six(*ref["grad"](p, z0, t0, t1)), ins,
                                outs),
    }
    if with_fsens:
        # forward mode with the unit seeds of all np + nz + 2 inputs at once
        n = np_ + nz + 2
        eye = casadi.DM.eye(n)
        loss = ref["loss"]
        Lx = loss(p, z0, t0, t1)
        row = loss.forward(n)(p, z0, t0, t1, Lx, eye[0:np_, :], eye[np_:np_ + nz, :], eye[np_ + nz, :],
                              eye[np_ + nz + 1, :]).T
        fns["fsens"] = casadi.Function(f"{prefix}_cas_fsens", [p, z0, t0, t1],
                                       six(Lx, row[0:np_], row[np_:np_ + nz], row[np_ + nz], row[np_ + nz + 1]),
                                       ins, outs)
    return fns


class _LazyFunctions(Mapping):
    """The in-memory functions of a library built without its CasADi API, made on first use (a dense step's
    library needs no CasADi step kernels, and building them for a wide network takes seconds)."""

    def __init__(self, build):
        self._build, self._fns = build, None

    def _get(self) -> dict:
        if self._fns is None:
            with _LOCK:
                if self._fns is None:
                    self._fns = self._build()
        return self._fns

    def __getitem__(self, word):
        return self._get()[word]

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


# -- the text --------------------------------------------------------------------------------------------------

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


_NEWTON_LOOP = re.compile(r"(  for \(iter=0; iter<(\d+); \+\+iter\) \{\n(?:    [^\n]*\n)*?"
                          r"    if \(casadi_newton\(&m\)\) break;\n  \}\n)")


def _newton_fails_loudly(dump: str) -> str:
    """CasADi 3.8.2's generated ``fast_newton`` returns its last iterate with flag 0 when the iteration reaches
    max_iter without converging, where the in-memory rootfinder raises ("rootfinder process failed"): a silent
    wrong number.  Insert ``if (iter >= max_iter) return 1;`` after each Newton loop, so the generated function
    fails (flag 1) exactly when the in-memory one does; every loop must be found, or generation stops."""
    loops = dump.count("struct casadi_newton_mem m;")
    new, n = _NEWTON_LOOP.subn(lambda m: m.group(1) + f"  if (iter >= {m.group(2)}) return 1;\n", dump)
    if n != loops:
        raise BuildError(f"found {n} of {loops} Newton loops in CasADi's generated C; this CasADi version is not "
                         "supported by symode's code generation of implicit schemes")
    return new


def _c_file(prefix: str, structure: str, dump: str, drive: str) -> str:
    pre = header.wrap_comment([
        f"{FILE_STEM}.c: generated by symode {SYMODE_VERSION} with CasADi {casadi.__version__}; "
        f"format {FORMAT}.",
        f"Structure hash (the model without parameter values, sha256): {structure}",
        f"Functions {prefix}_*; documented in {FILE_STEM}.h.  Regenerate rather than edit.",
        "CasADi's code generator output, unchanged, then symode's driver (the flat C API).",
    ])
    return pre + "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n" + dump + drive + \
        "\n#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n"


def generate(model: Model, scheme: str = "rk4", steps: int = 100, *, with_fsens: bool = False,
             checkpoints: int | None = None, casadi_api: bool = True) -> GeneratedCode:
    """C text for ``model``: ``{FILE_STEM}.c``, ``.h`` and ``.json`` as bytes (see the module docstring).

    ``with_fsens`` adds ``P_cas_fsens`` (forward mode in every input direction); ``checkpoints`` fixes the number
    of stored states of the flat ``_grad`` (None: all when they fit in the memory budget of
    :data:`symode.codegen.driver.DEFAULT_BUDGET_DOUBLES`, else about 2 sqrt(N)).  ``casadi_api=False`` leaves
    out the ``P_cas_*`` functions (the flat API alone: a third of the C text and compile time for small
    models; what :func:`symode.compile` builds); ``functions`` still holds them in memory.  The .c file depends only on
    the model's structure (θ is an input); the header carries the nominal values.  Pure: builds CasADi Functions
    in memory and returns text; writes and compiles nothing.  Raises :class:`SpecError` for an unknown scheme or
    bad counts, :class:`~symode.errors.TranslationError` for an expression outside the translation table.
    """
    if not isinstance(model, Model):
        raise SpecError(f"generate takes a symode Model, not {type(model).__name__}")
    check_options(scheme, steps, checkpoints)
    prefix = function_prefix(model, scheme, steps, with_fsens, checkpoints, casadi_api)
    structure = structure_key(model)
    with _LOCK:
        g, kernels, k, lay, step = _graphs(model, scheme, steps, prefix)
        terms = sweep.TermKernels({w: f for w, f in kernels.items() if w not in ("fstep", "bstep")}, kernels.rows)
        if casadi_api:
            fns = _functions(g, scheme, k, terms, lay, prefix, with_fsens)
        else:
            fns = _LazyFunctions(lambda: _functions(g, scheme, k, terms, lay, prefix, with_fsens))
        cg = casadi.CodeGenerator(prefix, dict(CODEGEN_OPTIONS))
        for fn in [*kernels.values(), *(fns.values() if casadi_api else ())]:
            cg.add(fn)
        dump = _newton_fails_loudly(cg.dump())
        theta = [float(x) for x in g.theta.full().ravel()] if g.np else []
        z0 = [float(x) for x in casadi.DM(g.z0(casadi.DM(theta) if g.np else casadi.DM(0, 1))).full().ravel()]
    nres = step.nres if step is not None else k.nres
    interval = driver.checkpoint_interval(steps, g.naug, nres, checkpoints)
    spec = driver.DriverSpec(prefix, g.nz, g.np, g.naug, nres, lay.segments, lay.counts,
                             model.has_terminal, model.has_running, g.obs0,
                             {w: f.name() for w, f in kernels.items()},
                             {w: _work_sizes(dump, f.name()) for w, f in kernels.items()}, interval, kernels.rows,
                             *((step.text, step.wt, step.scratch) if step is not None else ()))
    drive = driver.driver_text(spec)
    names = {word: fns[word].name() for word in fns} if casadi_api else {}
    flat = {word: f"{prefix}_{word}" for word in FLAT_WORDS}
    gen = {"prefix": prefix, "counts": lay.counts, "names": names, "flat": flat, "structure": structure,
           "work": {word: _work_sizes(dump, names[word]) for word in names}, "naug": g.naug,
           "flat_work": driver.work_doubles(spec), "interval": interval, "nres": nres,
           "step": "dense loops" if step is not None else "CasADi kernels"}
    c_text = _c_file(prefix, structure, dump, drive)
    c_bytes = c_text.encode("ascii")
    c_sha = hashlib.sha256(c_bytes).hexdigest()
    h_bytes = header.header_text(model, scheme, steps, gen, z0, c_text, c_sha, display_name, FILE_STEM,
                                 FORMAT).encode("ascii")
    shas = {f"{FILE_STEM}.c": c_sha, f"{FILE_STEM}.h": hashlib.sha256(h_bytes).hexdigest()}
    j_bytes = header.json_text(model, scheme, steps, gen, shas, FORMAT).encode("ascii")
    files = {f"{FILE_STEM}.c": c_bytes, f"{FILE_STEM}.h": h_bytes, f"{FILE_STEM}.json": j_bytes}
    return GeneratedCode(prefix=prefix, files=files, functions=fns, names=names, flat=flat,
                         steps_per_segment=lay.counts, work=gen["flat_work"], interval=interval, nres=nres)
