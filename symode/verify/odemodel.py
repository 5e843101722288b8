"""The model of an ODE document: from its ``ode:`` lines, the systems ``symode.symbolic.derive`` derives.

The derived-system symbols (adjoint ``lambda_<state>``, parameter quadrature ``mu_<param>``, sensitivities
``S_<state>_<param>`` and ``W_<state>_<state>``) become declared symbols of the document with their rates.
"""
from __future__ import annotations

import sympy

from ..errors import SpecError
from .declarations import Env, Problem




# 82 lines: one pass that names every derived symbol and refuses collisions; kept whole so the naming rules
# stay in one place
def build_model(env: Env, problems: list) -> None:
    """Model from the ``ode:`` lines; fills ``env.rates`` with the derived systems' right-hand sides.

    Numeric values a Model needs (t0 = 0, t1 = 1, every parameter 1, z0 = 0) do not enter the derived
    right-hand sides, which are symbolic in every symbol; they only make the Model constructible.
    """
    if not env.ode:
        return
    from ..model import Model
    from ..symbolic.derive import derive
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
    used = set().union(*(e.free_symbols for e in rhs))
    if env.running is not None:
        used |= env.running.free_symbols
    # declared parameters first, then any other declared symbol the model uses (data, constants): all are
    # parameters of the Model, so derive() can differentiate with respect to each
    params = [env.symbols[n] for n, k in env.kinds.items() if k == "params"]
    params += [s for n, s in env.symbols.items()
               if s in used and s not in params and s not in zs and s != env.time]
    try:
        model = Model(name="document", states=zs, params=params, rhs=rhs, z0=[0] * len(zs), t0=0, t1=1,
                      param_values={p: 1 for p in params}, terminal=None if env.running is not None else 0,
                      running=env.running, t=env.time)
    except SpecError as exc:
        problems.append(Problem(env.path, first, "ode", f"{where}: the declared model is invalid: {exc}"))
        return
    d = derive(model)
    rename = {}
    auto: dict[str, sympy.Expr] = {}
    meaning: dict[str, str] = {}
    collisions: list[str] = []

    def add(name: str, derived_sym, rate, what: str):
        # S_x_a_b is both dx/d(a_b) and dx_a/db: never let one silently replace the other
        if name in meaning:
            collisions.append(f"{name!r} would be both {meaning[name]} and {what}")
            return
        meaning[name] = what
        sym = sympy.Symbol(name, real=True)
        rename[derived_sym] = sym
        auto[name] = (sym, rate)

    sn = [s.name for s in zs]
    pn = [p.name for p in params]
    for i, s in enumerate(sn):
        add(f"lambda_{s}", d.lam[i], d.adjoint_rhs[i], f"the adjoint of {s}")
        for j, p in enumerate(pn):
            add(f"S_{s}_{p}", d.S[i, j], d.sens_rhs[i, j], f"d{s}/d{p} (sensitivity)")
        for j, s2 in enumerate(sn):
            add(f"W_{s}_{s2}", d.W[i, j], d.sens_z0_rhs[i, j], f"d{s}/d{s2}(0) (initial-state sensitivity)")
    for j, p in enumerate(pn):
        add(f"mu_{p}", d.mu[j], d.adjoint_quad_rhs[j], f"the parameter quadrature of {p}")
    if collisions:
        decl = sorted({env.lines[n] for n in sn + pn if n in env.lines} | {first})
        lines = ", ".join(f"{env.path}:{k}" for k in decl)
        problems.append(Problem(env.path, first, "ode",
                                f"{where}: derived-system names collide: {'; '.join(collisions)}; rename the "
                                f"states/params declared at {lines} (e.g. without '_') so every derived name "
                                f"is unique"))
        return
    for name in auto:
        if env.known(name):
            at = f" (declared at {env.path}:{env.lines[name]})" if name in env.lines else ""
            problems.append(Problem(env.path, first, "ode", f"{where}: {name!r} is a name of the derived "
                                                            f"systems ({meaning[name]}); rename the declared "
                                                            f"{name!r}{at}"))
            return
    for name, (sym, rate) in auto.items():
        env.symbols[name] = sym
        env.kinds[name] = "derived"
        env.rates[name] = sympy.sympify(rate).xreplace(rename)
    for s, e in zip(sn, rhs):
        env.rates[s] = e
