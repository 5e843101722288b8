"""Training targets: observed trajectories generated from a ground-truth parameter set or read from a data file,
and the model that fits them.

Targets are n trajectories observed at the same times τ_1 < ... < τ_m (all after t0): trajectory k starts from
its own initial state x_k (or from the model's z0(θ) where none is given) and has one row d_{k,i} of state values
per time.  The fitting model keeps the right-hand side, parameters and t0; its state stacks the n trajectories
(state ``z`` of trajectory k is named ``z_k``; one trajectory keeps the model's own names) and its loss is the
mean over trajectories of the squared errors (t1 becomes τ_m; the model's own loss is dropped):

    L(θ) = (1/n) Σ_k Σ_i Σ_j (z_j(τ_i; θ, x_k) - d_{k,i,j})²

This is the seed's data set x_k -> z0 = x_k -> ODE -> z(τ) ≈ y_k.  Targets from a truth θ*:
d_{k,i} = z(τ_i; θ*, x_k) integrated by the Taylor-method oracle integrator at :data:`TARGET_DIGITS` digits
(independent of every float64 route), rounded to float64, plus optional Gaussian noise of standard deviation σ
from a seeded generator.  Targets from a file (:func:`read_targets`): CSV or NPZ.  Every number enters the model
exactly (a float as the exact binary number it holds, a CSV decimal as written).
"""
from __future__ import annotations

import csv
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np
import sympy

from ..errors import SpecError
from ..expr import make_symbol
from ..model import Model

__all__ = ["TARGET_DIGITS", "DEFAULT_TIMES", "Targets", "default_times", "ode_targets", "truth_targets", "read_targets",
           "fit_model", "state_at"]

#: Digits of the oracle integration that generates targets from a truth (float64 rounding is far coarser).
TARGET_DIGITS = 20
#: Number of equally spaced observation times when the model has none of its own.
DEFAULT_TIMES = 10


def _exact(v):
    return v if isinstance(v, sympy.Basic) else sympy.Rational(v)


class Targets:
    """Observation times (exact, increasing), per trajectory an initial state (exact, or None for the model's
    z0(θ)) and one row of exact state values per time; ``source`` says where they came from."""

    def __init__(self, times: Sequence, trajectories: Sequence[Sequence[Sequence]], source: str,
                 initial: Sequence | None = None):
        self.times = [_exact(t) for t in times]
        self.trajectories = [[[_exact(v) for v in row] for row in traj] for traj in trajectories]
        init = [None] * len(self.trajectories) if initial is None else list(initial)
        self.initial = [None if x is None else [_exact(v) for v in x] for x in init]
        self.source = source
        if len(self.initial) != len(self.trajectories):
            raise SpecError(f"{len(self.initial)} initial states for {len(self.trajectories)} trajectories")
        for k, traj in enumerate(self.trajectories):
            if len(traj) != len(self.times):
                raise SpecError(f"trajectory {k + 1} has {len(traj)} rows for {len(self.times)} observation times")

    @property
    def count(self) -> int:
        return len(self.trajectories)

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(times [m], states [n × m × nz]) as float64."""
        return (np.array([float(t) for t in self.times]),
                np.array([[[float(v) for v in r] for r in traj] for traj in self.trajectories], dtype=float))


def default_times(model: Model, count: int = DEFAULT_TIMES) -> list:
    """The model's own observation times, else ``count`` equally spaced times t0 + (t1 - t0) k/count, k = 1..count."""
    if model.observations:
        return [o.time for o in model.observations]
    return [model.t0 + (model.t1 - model.t0) * sympy.Rational(k, count) for k in range(1, count + 1)]


def state_at(model: Model, times: Sequence, z0: Sequence | None = None, digits: int = TARGET_DIGITS) -> np.ndarray:
    """z(τ) [len(times) × nz] of ``model`` at its own parameter values from ``z0`` (default the model's z0(θ)),
    by the Taylor-method integrator at ``digits`` digits, rounded to float64; ``times`` increasing, >= t0."""
    from ..oracle.taylor import TaylorSystem, integrate, to_mpf
    system = TaylorSystem(model.states, model.rhs, model.t, params=model.params)
    pv = model.param_values
    start = [sympy.sympify(e).xreplace(pv) for e in model.z0] if z0 is None else [_exact(v) for v in z0]
    rows = integrate(system, start, model.t0, list(times), params=model.theta, digits=digits)
    return np.array([[float(to_mpf(v)) for v in row] for row in rows], dtype=float).reshape(len(rows), model.nz)


def _check_times(model: Model, times: Sequence, where: str) -> None:
    if not times:
        raise SpecError(f"{where}: no observation times")
    for i, t in enumerate(times):
        if not t > model.t0:
            raise SpecError(f"{where}: time {float(t):g} (entry {i + 1}) is not after t0 = {model.t0}; observations "
                            f"must lie after the initial time")
        if i and not t > times[i - 1]:
            raise SpecError(f"{where}: times must be strictly increasing (entry {i + 1}: {float(t):g} after "
                            f"{float(times[i - 1]):g})")


def _check_initial(model: Model, initial, where: str) -> list:
    out = []
    for k, x in enumerate(initial):
        if x is not None and len(x) != model.nz:
            raise SpecError(f"{where}: initial state {k + 1} has {len(x)} values for the {model.nz} states "
                            f"({', '.join(model.state_names)})")
        out.append(x)
    return out


def ode_targets(source: Model, times: Sequence, *, initial: Sequence | None = None, noise: float = 0.0,
                rng: np.random.Generator | None = None, what: str | None = None) -> Targets:
    """Targets observed on the trajectories of ``source`` (any model: the truth θ* of the model being fitted, or
    a known ODE a network should learn) at its own parameter values, from each initial state of ``initial``
    (default: one trajectory from source's z0(θ)); ``what`` names the source in the description."""
    times = [_exact(t) for t in times]
    _check_times(source, times, "observation times")
    if isinstance(noise, bool) or not (isinstance(noise, (int, float)) and np.isfinite(noise) and noise >= 0):
        raise SpecError(f"the noise level must be a finite number >= 0, got {noise!r}")
    initial = _check_initial(source, [None] if initial is None else list(initial), "initial states")
    trajs = []
    for x in initial:
        z = state_at(source, times, x)
        if noise:
            if rng is None:
                raise SpecError("noise needs a seeded random generator")
            z = z + rng.normal(0.0, noise, size=z.shape)
        trajs.append([[Fraction(float(v)) for v in r] for r in z])
    src = f"generated from {what or repr(source.name)}"
    return Targets(times, trajs, src + (f", noise sigma {noise:g}" if noise else ""), initial)


def truth_targets(model: Model, truth: Mapping, times: Sequence | None = None, *, initial: Sequence | None = None,
                  noise: float = 0.0, rng: np.random.Generator | None = None) -> Targets:
    """Targets from the truth θ* (``truth``: parameter name or symbol -> exact value; the others keep the model's
    values) at ``times`` (default :func:`default_times`) for each initial state of ``initial`` (default: one
    trajectory from the model's z0(θ*))."""
    times = list(default_times(model) if times is None else times)
    true_model = model.with_values(dict(truth))
    values = ", ".join(f"{p.name}={float(true_model.param_values[p]):.15g}" for p in model.params)
    return ode_targets(true_model, times, initial=initial, noise=noise, rng=rng, what=f"the truth {values}")


def _group(path: str, model: Model, times_by: dict, rows_by: dict) -> tuple[list, list, list]:
    """Per-trajectory rows -> (shared observation times, trajectories, initial states); a row at t0 is the
    trajectory's initial state."""
    shared, trajs, initial = None, [], []
    for key in times_by:
        pairs = sorted(zip(times_by[key], rows_by[key]), key=lambda p: p[0])
        x0 = [r for t, r in pairs if t == model.t0]
        if len(x0) > 1:
            raise SpecError(f"--data {path}: trajectory {key!r} has {len(x0)} rows at t0 = {model.t0}")
        obs = [(t, r) for t, r in pairs if t != model.t0]
        ts = [t for t, _ in obs]
        _check_times(model, ts, f"--data {path} trajectory {key!r}")
        if shared is None:
            shared = ts
        elif ts != shared:
            raise SpecError(f"--data {path}: every trajectory must be observed at the same times "
                            f"(trajectory {key!r} differs from the first)")
        trajs.append([r for _, r in obs])
        initial.append(x0[0] if x0 else None)
    return shared, trajs, initial


def csv_table(path: str) -> list[list[str]]:
    """The non-blank rows of a CSV text file (``--data``); unreadable files are a SpecError."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return [row for row in csv.reader(fh) if row and any(c.strip() for c in row)]
    except OSError as exc:
        raise SpecError(f"--data {path}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SpecError(f"--data {path}: not a readable CSV text file ({exc})") from None


def _read_csv(path: str, model: Model) -> tuple[list, list, list]:
    from ..expr import parse_decimal
    table = csv_table(path)
    want = ["t", *model.state_names]
    if len(table) < 2:
        raise SpecError(f"--data {path}: expected a header row ({', '.join(want)}) and data rows")
    header = [h.strip() for h in table[0]]
    cols = set(header) - {"trajectory"}
    if cols != set(want) or len(set(header)) != len(header):
        raise SpecError(f"--data {path}: the header must name the columns {', '.join(want)} (any order; "
                        f"optionally 'trajectory'), got {', '.join(header)}")
    col = {h: i for i, h in enumerate(header)}
    times_by: dict = {}
    rows_by: dict = {}
    for r, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise SpecError(f"--data {path}: line {r} has {len(row)} fields for {len(header)} columns")
        key = row[col["trajectory"]].strip() if "trajectory" in col else "1"
        times_by.setdefault(key, []).append(parse_decimal(row[col["t"]].strip(), f"--data {path} line {r} column t"))
        rows_by.setdefault(key, []).append([parse_decimal(row[col[s]].strip(), f"--data {path} line {r} column {s}")
                                            for s in model.state_names])
    return _group(path, model, times_by, rows_by)


def _read_npz(path: str, model: Model) -> tuple[list, list, list]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k]) for k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise SpecError(f"--data {path}: not a readable NPZ file without pickled objects ({exc})") from None
    if "t" not in arrays or "z" not in arrays:
        raise SpecError(f"--data {path}: expected arrays 't' (m times) and 'z' (m × states, or trajectories × m × "
                        f"states), optionally 'z0' (trajectories × states); found {', '.join(sorted(arrays))}")
    t, z = arrays["t"], arrays["z"]
    for name, a in arrays.items():
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise SpecError(f"--data {path}: array '{name}' must hold real numbers, not {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise SpecError(f"--data {path}: array '{name}' holds non-finite values")
    if z.ndim == 2:
        z = z[None]
    if t.ndim != 1 or z.ndim != 3 or z.shape[1:] != (t.size, model.nz):
        raise SpecError(f"--data {path}: 't' must have shape (m,) and 'z' (m, {model.nz}) or (n, m, {model.nz}); "
                        f"got {t.shape} and {arrays['z'].shape}")
    initial = [None] * z.shape[0]
    if "z0" in arrays:
        z0 = arrays["z0"].reshape(-1, model.nz) if arrays["z0"].size else arrays["z0"]
        if z0.shape != (z.shape[0], model.nz):
            raise SpecError(f"--data {path}: 'z0' must have shape ({z.shape[0]}, {model.nz}), got {arrays['z0'].shape}")
        initial = [[Fraction(float(v)) for v in x] for x in z0]
    times = [sympy.Rational(Fraction(float(v))) for v in t]
    _check_times(model, times, f"--data {path}")
    return times, [[[Fraction(float(v)) for v in r] for r in traj] for traj in z], initial


def read_targets(path: str, model: Model) -> Targets:
    """Targets from a file.  CSV: a header row naming ``t`` and every state (any order), optionally a column
    ``trajectory`` (a label per row; rows of one label form one trajectory); values are exact decimals; a row
    at t = t0 gives its trajectory's initial state, the other rows are observations, and every trajectory must be
    observed at the same times.  NPZ (read without pickles): ``t`` (m), ``z`` (m × states, or n × m × states),
    optionally ``z0`` (n × states)."""
    low = str(path).lower()
    if low.endswith(".csv"):
        times, trajs, initial = _read_csv(path, model)
    elif low.endswith(".npz"):
        times, trajs, initial = _read_npz(path, model)
    else:
        raise SpecError(f"--data {path}: give a .csv or .npz file")
    return Targets(times, trajs, f"read from {path}", initial)


def _copy_names(model: Model, n: int) -> list[list[sympy.Symbol]]:
    if n == 1:
        return [list(model.states)]
    taken = {*model.state_names, *model.param_names, model.t.name}
    out = []
    for k in range(1, n + 1):
        names = [f"{s}_{k}" for s in model.state_names]
        clash = [x for x in names if x in taken]
        if clash:
            raise SpecError(f"model {model.name!r}: cannot name trajectory {k}'s states {', '.join(clash)}: the name "
                            f"is taken; rename the model's parameters or states")
        taken.update(names)
        out.append([make_symbol(x) for x in names])
    return out


def _structured_copies(model: Model, copies: list, initial: list) -> dict:
    """The structured parts of the stacked model (matrix structure kept): per trajectory a copy of each state
    group (elements renamed like the scalar copies), its right-hand side with the state arrays renamed, and its
    initial state as a column of the given values (or the model's z0(θ) node)."""
    from ..arrays import node as N
    st = model.structure
    state_groups = [g for g in st.groups if g.kind == "state"]
    groups, rhs, z0 = [], [], []
    for k, (zs, x) in enumerate(zip(copies, initial), start=1):
        rename = dict(zip(model.states, zs))
        new = {g: (g if len(copies) == 1 else
                   N.Group(f"{g.name}_{k}", "state", g.dims, tuple(rename[e] for e in g.elements)))
               for g in state_groups}
        groups += new.values()
        rhs += [N.xreplace(v, rename, new) for v in st.rhs]
        if x is None:
            z0 += list(st.z0)
            continue
        at = 0
        for g in state_groups:
            if len(g.dims) > 1:
                raise SpecError(f"model {model.name!r}: an initial state for the matrix state {g.name} cannot be "
                                f"given per trajectory; give targets without initial states")
            z0.append(N.stack(x[at:at + g.size]))
            at += g.size
    return {"groups": [*groups, *(g for g in st.groups if g.kind == "param")], "rhs": rhs, "z0": z0,
            "defs": st.defs if len(copies) == 1 else ()}


def fit_model(model: Model, targets: Targets, name: str | None = None) -> Model:
    """``model`` refitted to ``targets``: the stacked trajectories and the mean squared-error loss (module
    docstring).  A structured model (vectors, matrices, ``[network]``) stays structured: each trajectory gets
    copies of its state arrays, the weights stay matrices."""
    n = targets.count
    if n < 1:
        raise SpecError("targets hold no trajectory")
    for traj in targets.trajectories:
        if any(len(r) != model.nz for r in traj):
            raise SpecError(f"targets need {model.nz} values per time (one per state of {model.name!r})")
    _check_initial(model, targets.initial, "initial states")
    _check_times(model, targets.times, "observation times")
    copies = _copy_names(model, n)
    weight = sympy.Rational(1, n)
    obs = []
    for i, tau in enumerate(targets.times):
        sq = [(z - d) ** 2 for zs, traj in zip(copies, targets.trajectories) for z, d in zip(zs, traj[i])]
        obs.append((tau, weight * sympy.Add(*sq) if n > 1 else sympy.Add(*sq)))
    what = f"{n} trajectories" if n > 1 else "1 trajectory"
    common = dict(name=name or f"{model.name}-fit", t0=model.t0, t1=targets.times[-1],
                  param_values=model.param_values, observations=obs, t=model.t,
                  description=(f"{model.description} Fitted to {what} observed at {len(targets.times)} times, "
                               f"{targets.source}.").strip())
    if model.structure is not None:
        return Model(**_structured_copies(model, copies, targets.initial), **common)
    states, rhs, z0 = [], [], []
    for zs, x in zip(copies, targets.initial):
        sub = dict(zip(model.states, zs))
        states += zs
        rhs += [sympy.sympify(e).xreplace(sub) for e in model.rhs]
        z0 += list(model.z0) if x is None else list(x)
    return Model(states=states, params=model.params, rhs=rhs, z0=z0, **common)
