"""The model of an ODE document: from its ``ode:`` lines, the systems ``symode.symbolic.derive`` derives, and
(with ``interval:``) the loss model whose solution claims can name (:mod:`symode.verify.lossmodel`).

The derived-system symbols (adjoint ``lambda_<state>``, parameter quadrature ``mu_<param>``, sensitivities
``S_<state>_<param>`` and ``W_<state>_<state>``) become declared symbols of the document with their rates.
"""
from __future__ import annotations

import sympy
from sympy.core.function import AppliedUndef

from ..errors import SpecError
from .declarations import Env, Problem
from .lossmodel import LossModel, Point


def build_model(env: Env, problems: list) -> None:
    """Model from the ``ode:`` lines; fills ``env.rates`` with the derived systems' right-hand sides and, with
    ``interval:``, ``env.model`` (a :class:`~symode.verify.lossmodel.LossModel`)."""
    if not env.ode:
        if env.interval is not None:
            line = env.lines[env.interval[0].name]
            problems.append(Problem(env.path, line, "interval", f"{env.path}:{line}: 'interval:' declares a model "
                                                               f"with a loss: give its 'ode:' lines"))
        return
    first = min(n for n, _ in env.ode.values())
    where = f"{env.path}:{first}"
    states = [n for n, k in env.kinds.items() if k == "states"]
    missing = [s for s in states if s not in env.ode]
    if missing:
        problems.append(Problem(env.path, first, "ode", f"{where}: no 'ode:' line for state(s) "
                                                        f"{', '.join(missing)}; give one per state"))
        return
    zs = [env.symbols[s] for s in states]
    rhs = [env.ode[s][1] for s in states]
    params = _parameters(env, zs, rhs)
    derived = _derived_systems(env, problems, zs, rhs, params, first)
    if derived is None:
        return
    for name, (sym, rate, _) in derived.items():
        env.symbols[name] = sym
        env.kinds[name] = "derived"
        env.rates[name] = rate
    for s, e in zip(states, rhs):
        env.rates[s] = e
    if env.interval is not None:
        _loss_model(env, problems, zs, rhs, params, derived, first)


def _parameters(env: Env, zs: list, rhs: list) -> list:
    """The model's parameters θ: the declared params, then any other declared symbol the model uses (data,
    constants; with a loss model also those of z0 and the loss terms), so derive() can differentiate with
    respect to each.  Never a state, the time, an interval end or an observation-time symbol."""
    exprs = list(rhs)
    if env.running is not None:
        exprs.append(env.running)
    if env.interval is not None:
        exprs += [e for _, e in env.init.values()] + [term for _, _, term in env.observations]
        exprs += [env.terminal[1]] if env.terminal is not None else []
    used = set().union(*(sympy.sympify(e).free_symbols for e in exprs))
    times = {env.time, *(env.interval or ())}
    for _, when, _ in env.observations:
        times |= when.free_symbols
    params = [env.symbols[n] for n, k in env.kinds.items() if k == "params" and env.symbols[n] not in times]
    params += [s for n, s in env.symbols.items()
               if s in used and s not in params and s not in zs and s not in times]
    return params


# 70 lines: one pass that names every derived symbol and refuses collisions; kept whole so the naming rules
# stay in one place
def _derived_systems(env: Env, problems: list, zs: list, rhs: list, params: list, first: int) -> dict | None:
    """{name: (symbol, rate, (kind, i, j))} of the derived systems, or None (a problem was recorded).

    Numeric values a Model needs (t0 = 0, t1 = 1, every parameter 1, z0 = 0) do not enter the derived
    right-hand sides, which are symbolic in every symbol; they only make the Model constructible.
    """
    from ..model import Model
    from ..symbolic.derive import derive
    where = f"{env.path}:{first}"
    try:
        model = Model(name="document", states=zs, params=params, rhs=rhs, z0=[0] * len(zs), t0=0, t1=1,
                      param_values={p: 1 for p in params}, terminal=None if env.running is not None else 0,
                      running=env.running, t=env.time)
    except SpecError as exc:
        problems.append(Problem(env.path, first, "ode", f"{where}: the declared model is invalid: {exc}"))
        return None
    d = derive(model)
    rename = {}
    auto: dict = {}
    meaning: dict[str, str] = {}
    collisions: list[str] = []

    def add(name: str, derived_sym, rate, what: str, kind: tuple):
        # S_x_a_b is both dx/d(a_b) and dx_a/db: never let one silently replace the other
        if name in meaning:
            collisions.append(f"{name!r} would be both {meaning[name]} and {what}")
            return
        meaning[name] = what
        sym = sympy.Symbol(name, real=True)
        rename[derived_sym] = sym
        auto[name] = (sym, rate, kind)

    sn = [s.name for s in zs]
    pn = [p.name for p in params]
    for i, s in enumerate(sn):
        add(f"lambda_{s}", d.lam[i], d.adjoint_rhs[i], f"the adjoint of {s}", ("lambda", i, None))
        for j, p in enumerate(pn):
            add(f"S_{s}_{p}", d.S[i, j], d.sens_rhs[i, j], f"d{s}/d{p} (sensitivity)", ("S", i, j))
        for j, s2 in enumerate(sn):
            add(f"W_{s}_{s2}", d.W[i, j], d.sens_z0_rhs[i, j], f"d{s}/d{s2}(0) (initial-state sensitivity)",
                ("W", i, j))
    for j, p in enumerate(pn):
        add(f"mu_{p}", d.mu[j], d.adjoint_quad_rhs[j], f"the parameter quadrature of {p}", ("mu", j, None))
    if env.interval is not None:
        if "L" in meaning:
            collisions.append("'L' would be both a derived symbol and the model's loss")
        meaning["L"] = "the model's loss"
    if collisions:
        decl = sorted({env.lines[n] for n in sn + pn if n in env.lines} | {first})
        lines = ", ".join(f"{env.path}:{k}" for k in decl)
        problems.append(Problem(env.path, first, "ode",
                                f"{where}: derived-system names collide: {'; '.join(collisions)}; rename the "
                                f"states/params declared at {lines} (e.g. without '_') so every derived name "
                                f"is unique"))
        return None
    for name in meaning:
        if env.known(name):
            at = f" (declared at {env.path}:{env.lines[name]})" if name in env.lines else ""
            problems.append(Problem(env.path, first, "ode", f"{where}: {name!r} is a name of the derived "
                                                            f"systems ({meaning[name]}); rename the declared "
                                                            f"{name!r}{at}"))
            return None
    return {name: (sym, sympy.sympify(rate).xreplace(rename), kind) for name, (sym, rate, kind) in auto.items()}


def _merged(observations) -> list:
    """[(time, term)] with the terms of observations at one time summed (L = Σ ℓ_k(z(τ_k)) whatever their
    order), in the order of their first line: two ``observation at 1/2:`` lines are one jump of the adjoint
    there, ∂(ℓ_1 + ℓ_2)/∂z, in every place the model uses them (the boundary values of λ, the backward sweep,
    the oracle's model).  Times are the same when their difference expands to 0."""
    out: list = []
    for _, when, term in observations:
        for k, (tau, total) in enumerate(out):
            if sympy.expand(sympy.sympify(when) - sympy.sympify(tau)) == 0:
                out[k] = (tau, total + term)
                break
        else:
            out.append((when, term))
    return out


def _loss_model(env: Env, problems: list, zs: list, rhs: list, params: list, derived: dict, first: int) -> None:
    """``env.model`` from the loss declarations, with the numeric Model at the document's values."""
    line = env.lines[env.interval[0].name]
    where = f"{env.path}:{line}"
    no_init = [z.name for z in zs if z.name not in env.init]
    if no_init or (env.terminal is None and not env.observations and env.running is None):
        what = (f"no 'init:' line for state(s) {', '.join(no_init)}" if no_init else
                "the loss is empty: give 'terminal:', 'observation at T:' or 'running:'")
        problems.append(Problem(env.path, line, "interval", f"{where}: {what}"))
        return
    t0, t1 = env.interval
    bad = _misplaced(env, zs, rhs)
    if bad:
        problems.append(Problem(env.path, line, "interval", f"{where}: {bad}"))
        return
    m = LossModel(time=env.time, t0=t0, t1=t1, states=zs, rhs=rhs, init=[env.init[z.name][1] for z in zs],
                  terminal=env.terminal[1] if env.terminal is not None else None,
                  observations=_merged(env.observations), running=env.running,
                  values=dict(env.values), params=params,
                  functions={n: fn for n, (fn, _) in env.functions.items()})
    for name, (sym, rate, kind) in derived.items():
        m.add_function(name, kind, sym)
        m.rates[name] = rate
    for z, f in zip(zs, rhs):
        m.rates[z.name] = f
    env.model = m
    env.symbols["L"] = m.loss
    env.kinds["L"] = "quantity"
    model, m.numeric_reason = _numeric_model(env, m, problems)
    if model is None:
        return
    values = {**env.values, **{p: v for p, v in model.param_values.items()}}
    m.points = [Point(values, model)]
    moved = _moved(env, m, values)
    try:
        m.points.append(Point(moved, _at_values(m, moved)))
    except (SpecError, TypeError) as exc:
        m.numeric_reason = f"the second point (the values moved) is not a valid model: {exc}"


def _moved(env: Env, m: LossModel, values: dict) -> dict:
    """The second point of the numeric checks: every valued symbol moved by a fraction n/p of (|value| + 1),
    3 to 7 %, with p a prime above 10,000 of its own, a positive one kept positive (with a shared step such as
    6/100, x0 = 2 and xt = 1/2 kept 2·xt - x0 + 1 = 0 and a claim wrong by a multiple of it was TRUE; with
    distinct prime denominators no relation among the values with small rational coefficients survives the
    move); the times mapped by the quadratic t -> t·(1 + 1/13) + 1/7 + (t - t0)²/(11·s),
    s the largest |t - t0| among them, which is increasing on [t0 - s, t0 + s] and so keeps their order (and
    which coincide), while it breaks every affine relation among them that is not an identity (an affine map
    would keep ti = (t0 + t1)/2, and a claim wrong by a multiple of t0 - 2·ti + t1 would be TRUE).  Fixed by a
    seeded generator, so verdicts are reproducible."""
    import random
    rng = random.Random(7919)
    times = {m.t0, m.t1}.union(*(sympy.sympify(w).free_symbols for w, _ in m.observations))
    valued = [values[s_] for s_ in times if s_ in values]
    start = values.get(m.t0, 0)
    spread = max((abs(v - start) for v in valued), default=0)
    bend = 1 / (11 * spread) if spread else 0
    out = {}
    for i, (s_, v) in enumerate(sorted(values.items(), key=lambda kv: kv[0].name)):
        if s_ in times:
            out[s_] = v * sympy.Rational(14, 13) + sympy.Rational(1, 7) + bend * (v - start) ** 2
            continue
        p = sympy.prime(1230 + i)  # 10007, 10009, ...: one prime per symbol
        d = sympy.Rational(rng.randint(3 * p // 100, 7 * p // 100), p) * rng.choice((1, -1))
        nv = v + d * (abs(v) + 1)
        twin = env.assumed.get(s_, s_)          # a count's assumptions (symode.verify.binding)
        if twin.is_integer:
            nv = v + 1
        elif (s_ in env.positive or twin.is_positive) and not nv > 0:
            nv = v * (1 + abs(d))
        out[s_] = nv
    return out


def _at_values(m: LossModel, values: dict):
    """The symode Model of ``m`` at ``values`` (SpecError where it is not valid there)."""
    from ..model import Model
    obs = sorted(((m.time_value(w, values), term) for w, term in m.observations), key=lambda o: o[0])
    return Model(name="document", states=m.states, params=m.params, rhs=m.rhs,
                 z0=[sympy.sympify(e) for e in m.init], t0=values[m.t0], t1=values[m.t1],
                 param_values={p: values[p] for p in m.params}, terminal=m.terminal,
                 observations=obs, running=m.running, t=m.time)


def _misplaced(env: Env, zs: list, rhs: list) -> str:
    """Why the loss model's expressions do not fit its formulas ("" when they do): the interval ends and the
    observation times are fixed numbers of the model, not variables of f, z0 or the loss (dL/dt1 would miss
    ∂ℓ/∂t1); z0 depends on the parameters only; the terminal and observation terms on the state and the
    parameters, not on t (as in a spec)."""
    times = set(env.interval)
    for _, when, _ in env.observations:
        times |= when.free_symbols
    parts = [("the right-hand side", e) for e in rhs] + [("the running cost", env.running)]
    parts += [(f"the initial value of {n}", e) for n, (_, e) in env.init.items()]
    parts += [("the terminal loss", env.terminal[1] if env.terminal else None)]
    parts += [(f"the observation term at {when}", term) for _, when, term in env.observations]
    for what, e in parts:
        if e is None:
            continue
        free = sympy.sympify(e).free_symbols
        clash = sorted(s.name for s in free & times)
        if clash:
            return (f"{what} uses {', '.join(clash)}, a time of the model (the interval ends and observation times "
                    f"are fixed numbers, not variables of the model); use another symbol")
        if (what.startswith("the initial") or what.startswith("the terminal") or what.startswith("the observation")) \
                and env.time in free:
            return f"{what} uses the time {env.time}; write it with the states and parameters only"
        if what.startswith("the initial") and free & set(zs):
            return f"{what} uses a state; z0 is an expression of the parameters"
    for _, when, _ in env.observations:
        if when.free_symbols & (set(zs) | {env.time}):
            return f"the observation time {when} uses a state or the time; give a number or a symbol"
    return ""


def _numeric_model(env: Env, m: LossModel, problems: list):
    """(the symode Model at the document's values, "") or (None, why there is none)."""
    exprs = [*m.rhs, *m.init, m.terminal, m.running, *(term for _, term in m.observations)]
    abstract = sorted({type(a).__name__ for e in exprs if e is not None for a in sympy.sympify(e).atoms(AppliedUndef)})
    if abstract:
        return None, f"the model uses abstract functions ({', '.join(abstract)}), which have no numeric values"
    if not env.values:
        return None, "the document gives no values ('values: a = 1, t0 = 0, t1 = 2, ...')"
    where = f"{env.path}:{env.value_line}"
    # a declared parameter the model does not use has no effect on it: it needs no value (0 stands in)
    used = set().union(*(sympy.sympify(e).free_symbols for e in exprs if e is not None))
    values = {p: env.values.get(p, sympy.Integer(0)) for p in m.params if p in env.values or p not in used}
    needed = [*m.params, m.t0, m.t1, *sorted(set().union(*(sympy.sympify(w).free_symbols for w, _ in m.observations)),
                                             key=lambda s: s.name)]
    missing = [s.name for s in needed if s not in env.values and s not in values]
    if missing:
        problems.append(Problem(env.path, env.value_line, "values",
                                f"{where}: no value for {', '.join(missing)}; give every parameter of the model, "
                                f"the interval ends and the observation times a value"))
        return None, f"no value for {', '.join(missing)}"
    try:
        model = _at_values(m, {**env.values, **values})
    except (SpecError, TypeError) as exc:
        problems.append(Problem(env.path, env.value_line, "values",
                                f"{where}: the model at the document's values is invalid: {exc}"))
        return None, f"the model at the document's values is invalid: {exc}"
    return model, ""
