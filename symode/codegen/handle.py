"""A compiled model: ``h = symode.compile(model, scheme=..., steps=...)``, a thin Python handle on the generated C.

The handle generates the model's C (:func:`symode.codegen.ctext.generate`), compiles only its ``.c`` file (which
does not depend on the parameter values: θ is an input) in the content-addressed cache
(:func:`symode.codegen.build.build_shared_library`), loads it with ctypes and calls the flat API
(:mod:`symode.codegen.driver`) with preallocated buffers::

    h.loss(theta=None, z0=None, t0=None, t1=None)     -> float
    h.grad(theta=None, z0=None, t0=None, t1=None)     -> GradResult (method "discrete")
    h.forward(theta=None, z0=None, t0=None, t1=None)  -> (z(t1) [nz], Z [nz x m] at the observation times, Q)
    h.trajectory(theta=None, ...)                     -> (Y [naug x N+1] grid states, T [N+1] node times)
    h.batch(thetas, threads=2)                        -> (loss [n], dL/dθ [n x np]), z0 = z0(θ) for each row

Defaults: the model's nominal θ (nearest doubles), z0 = z0(θ), the model's t0 and t1.  With ``z0=None``
``grad`` is the total derivative dL/dθ (the z0(θ) chain included, :class:`~symode.result.GradResult`'s
convention); with a z0 array it is ∂L/∂θ with z0 held fixed, and ``grad_z0`` = dL/dz0 either way.

Handles are cached by (structure key, scheme, steps, checkpoints): the structure key
(:func:`symode.codegen.ctext.structure_key`) leaves out the parameter values and is computed once per model
object, so a second ``compile`` of the same model -- or of the same model with other values -- returns the same
handle without generating or compiling anything.

A handle is the fast path: it raises :class:`~symode.errors.IntegrationError` on a non-finite result, but does
not run the stability (stiffness) and kink diagnoses of ``symode.compute``; ``compute(model, "discrete")``
runs them once per (model, θ) on top of the same handle (:func:`compiled_gradient`).  One handle may be used
from several threads: each call uses its own buffers unless it is the calling thread's cached set.
"""
from __future__ import annotations

import ctypes
import math
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from symode.errors import IntegrationError, SpecError
from symode.model import Model
from symode.result import GradResult

__all__ = ["Handle", "compile", "compiled_gradient", "handle_for", "compile_flags", "LARGE_SOURCE"]

_HANDLES: dict = {}
#: C sources longer than this (straight-line kernels of a large scalar model) are compiled with -O1 instead of
#: -O2: measured on the scalar P3 (1.3 MB): gcc 76 s instead of 213 s, the gradient 4% slower, the same bits
#: (both keep IEEE semantics: ISO C mode, no contraction, no fast-math).
LARGE_SOURCE = 400_000


def compile_flags(size: int) -> tuple:
    """The build flags of a handle's library: symode's defaults plus ``-fno-trapping-math`` (no value changes, only
    whether floating-point exceptions may be raised speculatively: it lets gcc vectorise loops with selects, such
    as a dense network's tanh, symode.codegen.dense), with -O1 for sources over LARGE_SOURCE."""
    from symode.codegen.build import DEFAULT_FLAGS
    return tuple("-O1" if f == "-O2" and size > LARGE_SOURCE else f for f in DEFAULT_FLAGS) + ("-fno-trapping-math",)
_LOCK = threading.Lock()
_vp, _d, _l = ctypes.c_void_p, ctypes.c_double, ctypes.c_long
_SIGNATURES = {
    "z0_w": [_vp, _vp, _vp],
    "loss_w": [_vp, _vp, _d, _d, _vp, _vp],
    "forward_w": [_vp, _vp, _d, _d, _vp, _vp, _vp, _vp],
    "trajectory_w": [_vp, _vp, _d, _d, _vp, _vp, _vp],
    "grad_w": [_vp, _vp, _d, _d, _vp, _vp, _vp, _vp, _vp, _vp],
    "grad_batch_w": [_l, _vp, _d, _d, _vp, _vp, _vp],
}


class _Buffers:
    """One thread's preallocated arrays and their addresses."""

    def __init__(self, h: "Handle"):
        self.theta = np.zeros(max(h.np, 1))
        self.z0 = np.zeros(h.nz)
        # the outputs in one array (one finiteness check): loss, dt0, dt1, dz0, dtheta
        self.out = np.zeros(3 + h.nz + max(h.np, 1))
        self.loss, self.dt = self.out[0:1], self.out[1:3]
        self.dz0, self.dtheta = self.out[3:3 + h.nz], self.out[3 + h.nz:]
        self.work = np.zeros(h.work)
        self.p = {k: getattr(self, k).ctypes.data for k in ("theta", "z0", "loss", "dtheta", "dz0", "dt", "work")}


class Handle:
    """The compiled library of one (model structure, scheme, steps); see the module docstring."""

    def __init__(self, model: Model, scheme: str, steps: int, checkpoints: int | None = None):
        from symode.codegen.build import build_shared_library
        from symode.codegen.ctext import FILE_STEM, generate

        code = generate(model, scheme, steps, checkpoints=checkpoints, casadi_api=False)
        source = code.files[f"{FILE_STEM}.c"]
        self.library = build_shared_library({f"{FILE_STEM}.c": source}, name_hint="handle",
                                            flags=compile_flags(len(source)))
        self._lib = ctypes.CDLL(str(self.library))
        self.prefix, self.scheme, self.steps = code.prefix, scheme, steps
        self.nz, self.np, self.nobs = model.nz, model.np, len(model.observation_times)
        self.naug = model.nz + (1 if model.has_running else 0)
        self.work, self.interval = code.work, code.interval
        self.param_names = list(model.param_names)
        self.model_name = model.name
        #: dL/dt1 is undefined (one-sided) where the last observation lies at t1
        times = model.observation_times
        self.t1_defined = not (times and times[-1] == model.t1)
        #: dL/dt0 likewise where the first observation lies at t0
        self.t0_defined = not (times and times[0] == model.t0)
        #: the observation times as doubles, and the nominal interval they were compiled against (see _times)
        from symode.casadi.translate import nearest_double
        self._obs = [nearest_double(x) for x in times]
        self._nominal_interval = (nearest_double(model.t0), nearest_double(model.t1))
        self._fn = {}
        for word, argtypes in _SIGNATURES.items():
            fn = getattr(self._lib, f"{code.prefix}_{word}")
            fn.argtypes, fn.restype = argtypes, ctypes.c_int
            self._fn[word] = fn
        self._local = threading.local()
        self._defaults = weakref.WeakKeyDictionary()
        self._pool: ThreadPoolExecutor | None = None

    # -- inputs -------------------------------------------------------------------------------------------------
    def _bufs(self) -> _Buffers:
        b = getattr(self._local, "b", None)
        if b is None:
            b = self._local.b = _Buffers(self)
        return b

    def _args(self, model: Model | None, theta, z0, t0, t1):
        """Fill the thread's buffers; returns (buffers, z0 address or None, t0, t1)."""
        b = self._bufs()
        if theta is None:
            if model is None:
                raise SpecError("give theta (this handle was compiled for a model structure; pass its values)")
            theta = self.nominal(model)[0]
        th = np.asarray(theta, dtype=float)
        if th.shape != (self.np,):
            raise SpecError(f"theta must have shape ({self.np},) (parameters {', '.join(self.param_names)}), "
                            f"got {th.shape}")
        if self.np:
            b.theta[:] = th
        zp = None
        if z0 is not None:
            zv = np.asarray(z0, dtype=float)
            if zv.shape != (self.nz,):
                raise SpecError(f"z0 must have shape ({self.nz},), got {zv.shape}")
            b.z0[:] = zv
            zp = b.p["z0"]
        if t0 is None or t1 is None:
            if model is None:
                raise SpecError("give t0 and t1 (this handle was compiled for a model structure)")
            _, n0, n1 = self.nominal(model)
            t0 = n0 if t0 is None else t0
            t1 = n1 if t1 is None else t1
        return b, zp, *self._times(float(t0), float(t1))

    def _times(self, t0: float, t1: float) -> tuple[float, float]:
        """``(t0, t1)`` checked against the observation times the code was generated for.

        The generated code evaluates the observations at fixed times with the rules of the model it was built
        from (t0 < tau_1, tau_m <= t1; an observation at t0 or t1 evaluated on z0 or z(t1)): an interval that
        breaks them would give a number of another loss, silently.  So it must hold every observation strictly
        inside, and an observation compiled at t0 or t1 keeps that end where it was."""
        if (t0, t1) == self._nominal_interval:  # the common call: the compiled interval, valid by construction
            return t0, t1
        if not (math.isfinite(t0) and math.isfinite(t1) and t0 < t1):
            raise SpecError(f"t0 < t1 (both finite) required, got t0 = {t0!r}, t1 = {t1!r}")
        if not self._obs:
            return t0, t1
        n0, n1 = self._nominal_interval
        for tau in self._obs:
            if tau == n0 and t0 != n0 or tau == n1 and t1 != n1:
                raise SpecError(f"an observation lies at the compiled {'t0' if tau == n0 else 't1'} = {tau!r}; "
                                "this handle cannot move that end (compile the model with the new interval)")
            if tau not in (n0, n1) and not t0 < tau < t1:
                raise SpecError(f"the observation time {tau!r} must lie inside (t0, t1) = ({t0!r}, {t1!r}); the "
                                "compiled loss evaluates it there (compile the model with other observation times)")
        return t0, t1

    def nominal(self, model: Model):
        """(θ as doubles, t0, t1) of ``model``, computed once per model object."""
        v = self._defaults.get(model)
        if v is None:
            from symode.casadi.translate import nearest_double
            v = (np.array([nearest_double(x) for x in model.theta], dtype=float), nearest_double(model.t0),
                 nearest_double(model.t1))
            self._defaults[model] = v
        return v

    def _call(self, word, *args):
        flag = self._fn[word](*args)
        if flag:
            what = ("the work array could not be allocated" if flag == -1 else
                    f"a kernel failed (flag {flag}): an implicit stage's Newton iteration did not converge; the "
                    "solution probably blows up or leaves the model's domain")
            raise IntegrationError(f"compiled {word.replace('_w', '')} of model {self.model_name!r}: {what}")

    def _finite(self, what: str, *arrays):
        for a in arrays:
            # one reduction; a sum that overflows from finite values is checked element by element
            with np.errstate(all="ignore"):
                total = float(a.sum())
            if not math.isfinite(total) and not np.all(np.isfinite(a)):
                raise IntegrationError(f"compiled {what} of model {self.model_name!r} ({self.scheme}, {self.steps} "
                                       "steps) is non-finite: the solution blew up or left the model's domain; "
                                       "symode.compute(model, 'discrete') names the time and the cause",
                                       time=None)

    # -- the API ------------------------------------------------------------------------------------------------
    def loss(self, theta=None, z0=None, t0=None, t1=None, *, model: Model | None = None) -> float:
        b, zp, a, c = self._args(model, theta, z0, t0, t1)
        self._call("loss_w", b.p["theta"], zp, a, c, b.p["loss"], b.p["work"])
        self._finite("loss", b.loss)
        return float(b.loss[0])

    def grad_arrays(self, theta=None, z0=None, t0=None, t1=None, *, model: Model | None = None):
        """(L, dL/dθ [np] copy, dL/dz0 [nz] copy, dL/dt0, dL/dt1 or None): ``grad`` without the GradResult."""
        b, zp, a, c = self._args(model, theta, z0, t0, t1)
        self._call("grad_w", b.p["theta"], zp, a, c, b.p["loss"], b.p["dtheta"], b.p["dz0"], b.p["dt"],
                   b.p["dt"] + 8, b.p["work"])
        self._finite("gradient", b.out)
        return (float(b.loss[0]), b.dtheta[:self.np].copy(), b.dz0.copy(),
                float(b.dt[0]) if self.t0_defined else None, float(b.dt[1]) if self.t1_defined else None)

    def grad(self, theta=None, z0=None, t0=None, t1=None, *, model: Model | None = None) -> GradResult:
        L, g, gz, g0, g1 = self.grad_arrays(theta, z0, t0, t1, model=model)
        return GradResult(model=self.model_name, method="discrete", loss=L,
                          grad=dict(zip(self.param_names, g.tolist())), grad_z0=gz.tolist(), grad_t0=g0,
                          grad_t1=g1, scheme=self.scheme, steps=self.steps, stats={"compiled": self.prefix})

    def forward(self, theta=None, z0=None, t0=None, t1=None, *, model: Model | None = None):
        b, zp, a, c = self._args(model, theta, z0, t0, t1)
        z1, Z, q = np.zeros(self.nz), np.zeros((self.nobs, self.nz)), np.zeros(1)
        self._call("forward_w", b.p["theta"], zp, a, c, z1.ctypes.data, Z.ctypes.data, q.ctypes.data,
                   b.p["work"])
        self._finite("forward solve", z1, Z, q)
        return z1, Z.T.copy(), float(q[0])

    def trajectory(self, theta=None, z0=None, t0=None, t1=None, *, model: Model | None = None):
        """(Y [naug x N+1], T [N+1]): the states at every grid node (not checked for finiteness)."""
        b, zp, a, c = self._args(model, theta, z0, t0, t1)
        Y, T = np.zeros((self.steps + 1, self.naug)), np.zeros(self.steps + 1)
        self._call("trajectory_w", b.p["theta"], zp, a, c, Y.ctypes.data, T.ctypes.data, b.p["work"])
        return Y.T.copy(), T

    def _batch_works(self, k: int) -> list:
        """``k`` work arrays for one batch, kept for the calling thread's next batch (no allocation and no page
        faults per call), each starting on its own 64-byte cache line and padded to whole lines, so two threads
        never write to one cache line (false sharing)."""
        works = getattr(self._local, "works", [])
        line = 8  # doubles per 64-byte cache line
        size = -(-self.work // line) * line
        while len(works) < k:
            raw = np.zeros(size + line)
            start = (-(raw.ctypes.data // 8)) % line
            works.append(raw[start:start + size])
        self._local.works = works
        return works[:k]

    def batch(self, thetas, t0=None, t1=None, threads: int = 2, *, model: Model | None = None):
        """Loss and total dL/dθ for many parameter sets (rows of ``thetas``), z0 = z0(θ) for each, split over
        ``threads`` threads that each run the C loop ``P_grad_batch_w`` on a contiguous block of rows (the
        GIL is released during the C call)."""
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise SpecError(f"threads must be a positive integer, got {threads!r}")
        TH = np.ascontiguousarray(thetas, dtype=float)
        if TH.ndim != 2 or TH.shape[1] != self.np:
            raise SpecError(f"thetas must have shape [n, {self.np}] (one row per parameter set), got {TH.shape}")
        n = TH.shape[0]
        _, _, a, c = self._args(model, np.zeros(self.np), None, t0, t1)
        L, G = np.zeros(n), np.zeros((n, max(self.np, 1)))
        if n == 0:
            return L, G[:, :self.np]
        if self.np == 0:
            TH = np.zeros((n, 1))
        k = min(threads, n)
        cuts = [round(i * n / k) for i in range(k + 1)]
        works = self._batch_works(k)
        row = TH.shape[1] * 8

        def run(i):
            lo, hi = cuts[i], cuts[i + 1]
            return self._fn["grad_batch_w"](hi - lo, TH.ctypes.data + lo * row, a, c, L.ctypes.data + lo * 8,
                                            G.ctypes.data + lo * G.shape[1] * 8, works[i].ctypes.data)

        if k == 1:
            flags = [run(0)]
        else:
            if self._pool is None or self._pool._max_workers < k:
                self._pool = ThreadPoolExecutor(max_workers=k)
            flags = list(self._pool.map(run, range(k)))
        if any(flags):
            raise IntegrationError(f"compiled batch of model {self.model_name!r}: a kernel failed "
                                   f"(flag {next(f for f in flags if f)})")
        bad = ~(np.isfinite(L) & np.all(np.isfinite(G), axis=1))
        if bad.any():
            raise IntegrationError(f"compiled batch of model {self.model_name!r}: parameter set {int(np.argmax(bad))} "
                                   "gives a non-finite loss or gradient (the solution blew up or left the "
                                   "model's domain)", time=None)
        return L, G[:, :self.np]



def handle_for(model: Model, scheme: str = "rk4", steps: int = 100, checkpoints: int | None = None) -> Handle:
    """The cached handle of ``model``'s structure (see the module docstring); builds it on first use."""
    from symode.codegen.ctext import check_options, structure_key

    if not isinstance(model, Model):
        raise SpecError(f"compile takes a symode Model, not {type(model).__name__}")
    check_options(scheme, steps, checkpoints)
    key = (structure_key(model), scheme, steps, checkpoints)
    with _LOCK:
        h = _HANDLES.get(key)
        if h is None:
            h = _HANDLES[key] = Handle(model, scheme, steps, checkpoints)
    return h


class _Bound:
    """A handle bound to one model: defaults (θ, t0, t1) are that model's."""

    def __init__(self, handle: Handle, model: Model):
        self.handle, self.model = handle, model

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __repr__(self) -> str:
        return (f"<symode compiled {self.model.name!r}: {self.handle.scheme}, {self.handle.steps} steps, "
                f"{self.handle.library}>")

    def loss(self, theta=None, z0=None, t0=None, t1=None):
        return self.handle.loss(theta, z0, t0, t1, model=self.model)

    def grad(self, theta=None, z0=None, t0=None, t1=None):
        return self.handle.grad(theta, z0, t0, t1, model=self.model)

    def grad_arrays(self, theta=None, z0=None, t0=None, t1=None):
        return self.handle.grad_arrays(theta, z0, t0, t1, model=self.model)

    def forward(self, theta=None, z0=None, t0=None, t1=None):
        return self.handle.forward(theta, z0, t0, t1, model=self.model)

    def trajectory(self, theta=None, z0=None, t0=None, t1=None):
        return self.handle.trajectory(theta, z0, t0, t1, model=self.model)

    def batch(self, thetas, t0=None, t1=None, threads: int = 2):
        return self.handle.batch(thetas, t0, t1, threads, model=self.model)


def compile(model: Model, scheme: str = "rk4", steps: int = 100, *, checkpoints: int | None = None) -> _Bound:
    """Generate, compile (cached) and load ``model``'s C; returns a handle whose defaults are the model's θ, z0(θ),
    t0 and t1 (see the module docstring).  Raises :class:`~symode.errors.CompilerNotFound` without a C compiler."""
    return _Bound(handle_for(model, scheme, steps, checkpoints), model)


_CHECKED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def compiled_gradient(route, model: Model, scheme="rk4", steps: int = 100) -> GradResult:
    """The ``discrete`` route (:class:`symode.casadi.methods.DiscreteAdjoint`) through the compiled handle.

    The stability (stiffness), blow-up and domain checks of :mod:`symode.casadi.routes.diagnostics` run on the
    compiled trajectory once per (model object, scheme, steps) -- the model's θ is fixed.  A user Tableau, more
    than 100,000 steps or a missing C compiler use the in-memory route (the same derivative, another evaluation
    order); a failure is diagnosed by the in-memory route, which names the time and the cause."""
    from symode.casadi.routes.fixed_step import fixed_step_gradient
    from symode.casadi.routes.plan import _check_steps
    from symode.casadi.schemes import get_scheme
    from symode.errors import CompilerNotFound
    get_scheme(scheme)  # the routes' own validation and messages
    _check_steps(steps)
    try:
        h = handle_for(model, scheme, steps) if isinstance(scheme, str) and steps <= 100_000 else None
    except CompilerNotFound:
        h = None
    if h is None:
        return fixed_step_gradient(route, model, scheme, steps)
    theta, t0, t1 = h.nominal(model)
    done = _CHECKED.setdefault(model, {})
    try:
        if (scheme, steps) not in done:
            done[(scheme, steps)] = _check(route, h, model, theta, t0, t1)
        L, g, gz, g0, g1 = h.grad_arrays(theta, None, t0, t1, model=model)
    except IntegrationError:
        fixed_step_gradient(route, model, scheme, steps)  # raises the in-memory route's precise error
        raise
    return GradResult(model=model.name, method=route.name, loss=L, grad=dict(zip(h.param_names, g.tolist())),
                      grad_z0=gz.tolist(), grad_t0=g0, grad_t1=g1, scheme=scheme, steps=steps,
                      stats={"grid_points": steps + 1, "compiled": h.prefix, **done[(scheme, steps)]})


def _check(route, h: Handle, model: Model, theta, t0, t1) -> dict:
    """The routes' diagnostics on the compiled trajectory and gradient (raises IntegrationError), then the
    step-halving resolution check of :mod:`symode.casadi.routes.resolution` (refuses a blow-up the grid cannot
    follow); returns the statistics that check adds to every result of this (model, scheme, steps)."""
    from symode.casadi.model_graphs import model_graphs
    from symode.casadi.routes.diagnostics import _check as diagnose
    from symode.casadi.routes.plan import _Plan
    from symode.casadi.schemes import get_scheme
    Y, T = h.trajectory(theta, None, t0, t1, model=model)  # raises on a kernel (Newton) failure
    with np.errstate(all="ignore"):
        L, g, gz, g0 = (np.nan,) * 4
        try:
            L, g, gz, g0, _ = h.grad_arrays(theta, None, t0, t1, model=model)
        except IntegrationError:
            pass
    plan = _Plan(model_graphs(model), route, get_scheme(h.scheme), h.steps, None, None)
    values = np.concatenate([np.ravel(L), np.ravel(g), np.ravel(gz), np.ravel(0.0 if g0 is None else g0)])
    out = {"Z": Y, "T": T, "L": np.ravel(L), "g": values, "B": np.zeros((0, 0)), "TB": np.zeros(0)}
    diagnose(plan, model, out, theta)
    if not all(math.isfinite(v) for v in values.tolist()):
        raise IntegrationError(f"method {route.name!r} on model {model.name!r}: the gradient is non-finite",
                               time=None)
    from symode.casadi.routes.diagnostics import _where
    from symode.casadi.routes.resolution import resolution_stats
    return resolution_stats(plan, _where(plan, model), out, theta)
