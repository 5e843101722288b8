"""A dense network's step kernels as C loops (symode.codegen.dense) and the recognition of a dense stack
(symode.arrays.layers).  Real CasADi, real cc with -Wall -Werror (symode's default flags, and the handle's),
ctypes, mpmath.

Expected values and their sources:
* the compiled library against the in-memory CasADi graph of the same discrete loss (symode.codegen.sweep's
  reference on CasADi's own step kernels and VJP: an independent construction of the step, its VJP and the
  activations' derivatives), to TOL["dense_vs_graph"] relative to the largest component;
* the compiled gradient against the oracle's exact gradient, to the scheme's discretisation error estimated from
  two step counts (Richardson, symode.check.tolerances.fixed_step_tolerance);
* checkpointed against stored, and a batch against single calls: bit for bit (the same kernel on the same inputs);
* symode's tanh against mpmath's at 60 digits, in ulps of the exact value (TOL["tanh_ulps"]);
* the recognised layers against the model's own right-hand side, element by element (SymPy expansion).
"""
from __future__ import annotations

import ctypes
import random

import mpmath
import numpy as np
import pytest
import sympy

import symode
from symode.arrays import node as N
from symode.arrays.layers import dense_stack, stack_node
from symode.check.tolerances import COMPARISON_TOLERANCES, fixed_step_tolerance
from symode.codegen import dense, sweep
from symode.codegen.build import DEFAULT_FLAGS, build_shared_library
from symode.codegen.ctext import FILE_STEM, generate
from symode.codegen.handle import compile_flags, handle_for
from symode.casadi.model_graphs import model_graphs
from symode.library import get_model
from symode.spec import load_spec
from tests.test_codegen_compile import private_cache  # noqa: F401  (autouse: a fresh build cache)
from tests.test_structured_routes import RICH

TOL = {
    # the table entry: another summation order, written-out derivatives and symode's tanh (its reason says more);
    # measured <= 1.1e-15 on the FAST cases, 3.0e-15 on P3 (rk38, 100 steps; P2 1.1e-15, P4 7.7e-16)
    "dense_vs_graph": COMPARISON_TOLERANCES["dense-vs-graph"].rtol,
    # symode's tanh (u / (u + 2), u = expm1(2|x|) from a degree-13 Taylor polynomial): measured 2.4 ulps at most on
    # 600,000 points; glibc's tanh: 2.1 on the same points.  3 ulps is the documented bound.
    "tanh_ulps": 3.0,
}


def network_spec(D, hidden, act="tanh", out_act="identity", time_input=False, z0_param=False, loss_param=False,
                 obs_t0=False, seed=1, name="dn", at_zero=False):
    """A [network] spec with random weights in [-0.5, 0.5], a terminal term and two or three observations
    (``at_zero``: z0 = 0 and every bias 0, so the first layer's pre-activations start at exactly 0)."""
    rnd = random.Random(seed)
    widths = [D, *hidden, D]

    def num():
        return f'"{rnd.randint(-500, 500) / 1000}"'
    params = []
    for k in range(1, len(widths)):
        m, n = widths[k], widths[k - 1]
        params.append(f"W{k} = [" + ", ".join("[" + ", ".join(num() for _ in range(n)) + "]" for _ in range(m)) + "]")
        params.append(f"b{k} = [" + ", ".join('"0"' if at_zero else num() for _ in range(m)) + "]")
    if time_input:
        params.append("Wt1 = [" + ", ".join(num() for _ in range(widths[1])) + "]")
    z0 = ", ".join('"0"' if at_zero else '"0.5 + b1[0]"' if z0_param and i == 0 else '"0.5"' if i % 2 == 0
                   else '"-0.25"' for i in range(D))
    terminal = " + ".join(f"(z[{j}] - {j + 1}/{D + 1})**2" for j in range(D))
    if loss_param:
        terminal += " + 0.1 * b1[0]**2 * z[0]"
    times = (["0"] if obs_t0 else []) + ["0.3", "0.7"]
    data = ", ".join("[" + ", ".join(f'"{(3 * k + j) % 5 / 10}"' for j in range(D)) + "]" for k in range(len(times)))
    activation = f'"{act}"' if isinstance(act, str) else "[" + ", ".join(f'"{a}"' for a in act) + "]"
    return "\n".join([
        f'name = "{name}"', f'states = [{{name = "z", size = {D}}}]', f"z0 = [[{z0}]]", 't0 = "0"', 't1 = "1"',
        "[network]", f"hidden = {list(hidden)}", f"activation = {activation}", f'output_activation = "{out_act}"',
        f"time_input = {'true' if time_input else 'false'}", "[params]", *params, "[loss]", f'terminal = "{terminal}"',
        "[loss.observations]", "times = [" + ", ".join(f'"{t}"' for t in times) + "]", f"data = [{data}]", ""])


#: every activation, stacks of 0-3 hidden layers (widths not multiples of the 4-output blocks), output
#: activations, time inputs, z0(θ), a loss that depends on θ, an observation at t0
CASES = {
    "tanh": dict(D=2, hidden=[4]),
    "sigmoid": dict(D=3, hidden=[5], act="sigmoid"),
    "softplus": dict(D=2, hidden=[6], act="softplus"),
    "relu": dict(D=3, hidden=[7], act="relu"),
    "two-layers": dict(D=2, hidden=[4, 3], act=["tanh", "sigmoid"], out_act="tanh"),
    "time": dict(D=2, hidden=[5], time_input=True),
    "z0-loss-obs0": dict(D=3, hidden=[4], z0_param=True, loss_param=True, obs_t0=True),
    "linear": dict(D=2, hidden=[]),
    "three-layers": dict(D=2, hidden=[3, 3, 2], act=["relu", "identity", "tanh"], time_input=True),
}
SCHEMES = ("euler", "midpoint", "rk4", "rk38", "dopri5")
FAST = [("tanh", "rk38", None), ("sigmoid", "dopri5", 5), ("softplus", "midpoint", None), ("relu", "rk4", None),
        ("two-layers", "rk4", None), ("time", "dopri5", None), ("z0-loss-obs0", "rk38", 7), ("linear", "euler", None),
        ("three-layers", "rk38", 3)]
SLOW = [pytest.param(c, s, k, marks=pytest.mark.slow) for c in CASES for s in SCHEMES for k in (None, 6)
        if (c, s, k) not in FAST]


def _model(case):
    return load_spec(network_spec(**CASES[case], name=f"dn-{case}"))


def _worst_vs_graph(m, scheme, steps, checkpoints=None):
    """Largest difference (relative to the largest component) between the compiled library and the in-memory
    graph over the nominal inputs and perturbed ones (θ ± 3%, z0 shifted, t0/t1 moved), fixed and total z0."""
    code = generate(m, scheme, steps, checkpoints=checkpoints, casadi_api=False)
    assert b'"step_kernels": "dense loops"' in code.files[f"{FILE_STEM}.json"]
    h = handle_for(m, scheme, steps, checkpoints)
    g = model_graphs(m)
    ref = code.functions["grad"]
    th = np.array([float(v) for v in m.theta])
    sign = np.array([(-1) ** k for k in range(th.size)])
    worst = 0.0
    # an end at which an observation lies stays put (the handle refuses to move it)
    times = m.observation_times
    m0 = 0.0 if times and times[0] == m.t0 else -0.01
    m1 = 1.0 if times and times[-1] == m.t1 else 1.01
    for tt, shift, t0, t1 in ((th, 0.0, 0.0, 1.0), (th * (1 + 0.03 * sign), 0.05, m0, m1)):
        z0 = np.array(g.z0(tt)).ravel() + shift
        want = [np.array(v).ravel() for v in ref(tt, z0, t0, t1)]
        L, dth, dz0, dt0, dt1 = h.grad_arrays(tt, z0, t0, t1)
        _, tot, _, _, _ = h.grad_arrays(tt, None, t0, t1)
        want_tot = np.array(ref(tt, np.array(g.z0(tt)).ravel(), t0, t1)[5]).ravel()
        scale = max(abs(want[0][0]), np.max(np.abs(want[1])), np.max(np.abs(want[2])))
        diffs = [abs(L - want[0][0]), np.max(np.abs(dth - want[1])), np.max(np.abs(dz0 - want[2])),
                 np.max(np.abs(tot - want_tot))]
        diffs += [abs(dt0 - want[3][0])] if dt0 is not None else []
        diffs += [abs(dt1 - want[4][0])] if dt1 is not None else []
        worst = max(worst, max(diffs) / scale)
        assert h.loss(tt, z0, t0, t1) == L  # the loss-only pass runs the same forward kernel
    return worst


@pytest.mark.parametrize("case,scheme,checkpoints", FAST + SLOW)
def test_compiled_dense_steps_agree_with_the_in_memory_graph(case, scheme, checkpoints):
    assert _worst_vs_graph(_model(case), scheme, 40, checkpoints) <= TOL["dense_vs_graph"]


def test_checkpointed_and_batched_gradients_equal_the_stored_ones_bit_for_bit():
    m = _model("two-layers")
    h, hc = symode.compile(m, "rk38", 60), symode.compile(m, "rk38", 60, checkpoints=4)
    assert hc.interval < 60
    th = np.array([float(v) for v in m.theta])
    TH = th * (1 + 0.05 * np.sin(np.arange(5))[:, None])
    L, G = h.batch(TH, threads=2)
    for k in range(5):
        a, b = h.grad_arrays(TH[k]), hc.grad_arrays(TH[k])
        assert a[0] == b[0] == L[k] and np.array_equal(a[1], b[1]) and np.array_equal(a[1], G[k])
        assert np.array_equal(a[2], b[2]) and a[3] == b[3] and a[4] == b[4]


def test_relu_at_its_kink_takes_casadis_convention():
    # z0 = 0 and b1 = 0: every hidden pre-activation of the first stage is exactly 0, where CasADi's fmax gives the
    # derivative 1/2; the dense loops must give the same gradient (a wrong convention moves it by O(1e-2))
    m = load_spec(network_spec(2, [3], act="relu", name="kink", at_zero=True))
    g = model_graphs(m)
    a1 = np.array(m.theta[:6], dtype=float).reshape(3, 2) @ np.array(g.z0(np.zeros(m.np))).ravel()
    assert np.all(a1 == 0.0)  # W1 z0 + b1 = 0 exactly
    assert _worst_vs_graph(m, "rk4", 20) <= TOL["dense_vs_graph"]


@pytest.mark.slow
def test_compiled_dense_gradient_agrees_with_the_oracle():
    m = get_model("mlp")  # D = 2, H = 4, tanh; observations and a terminal term
    got, *pair = (symode.compile(m, "rk4", n).grad_arrays() for n in (40, 80, 160))
    oracle = symode.compute(m, "oracle", digits=30)
    vals = dict(zip((80, 160), pair))
    flat = lambda r: [r[0], *r[1], *r[2]]  # noqa: E731  (L, dL/dθ, dL/dz0)
    tol = fixed_step_tolerance(4, 40, 1.0, richardson=((80, flat(vals[80])), (160, flat(vals[160]))))
    want = [oracle.loss, *oracle.grad.values(), *oracle.grad_z0]
    allow = list(tol.atol.values())
    for c, r, a in zip(flat(got), want, allow):
        assert abs(c - float(r)) <= a + tol.rtol * abs(float(r)), (c, r, a)


def _tanh_library(flags):
    text = ("#include <math.h>\n#include <stdint.h>\n#include <string.h>\n"
            "void tanh_many(const double *in, double *out, double *der, long n) {\n  long c;\n"
            "  for (c = 0; c < n; ++c) {\n    const double a = in[c];\n    double x, d;\n    "
            + dense.tanh_text() + "\n    out[c] = x; der[c] = d;\n  }\n}\n")
    lib = ctypes.CDLL(str(build_shared_library({"t.c": text}, name_hint="tanh", flags=flags)))
    lib.tanh_many.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_long]
    return lib


def test_symodes_tanh_is_within_three_ulps_whether_vectorised_or_not():
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.uniform(-1, 1, 4000), rng.uniform(-25, 25, 4000),
                         np.exp(rng.uniform(np.log(1e-310), np.log(30), 4000)) * rng.choice([-1, 1], 4000),
                         rng.uniform(0.15, 0.25, 2000),  # where the largest errors were found
                         np.nextafter(np.log(2) / 2 * np.arange(1, 64), 0),  # range-reduction boundaries
                         np.nextafter(np.log(2) / 2 * np.arange(1, 64), 9),
                         [0.0, 5e-324, 1e-300, 21.999999, 22.0, 22.5, 1e300]])
    out = {}
    for name, flags in (("default", DEFAULT_FLAGS), ("handle", compile_flags(0))):
        lib = _tanh_library(flags)
        y, d = np.zeros_like(xs), np.zeros_like(xs)
        lib.tanh_many(xs.ctypes.data, y.ctypes.data, d.ctypes.data, xs.size)
        out[name] = y, d
    assert np.array_equal(out["default"][0], out["handle"][0])  # vectorised or not: the same operations
    y, d = out["default"]
    assert np.array_equal(d, 1.0 - y * y)
    mpmath.mp.dps = 60
    worst = 0.0
    for x, v in zip(xs.tolist(), y.tolist()):
        exact = mpmath.tanh(mpmath.mpf(x))
        ulp = float(np.spacing(abs(float(exact)))) if exact != 0 else 0.0
        err = float(abs(mpmath.mpf(v) - exact)) / ulp if ulp else abs(v)
        worst = max(worst, err)
    assert worst <= TOL["tanh_ulps"], worst
    lib = _tanh_library(compile_flags(0))
    special = np.array([-0.0, np.inf, -np.inf, np.nan, -5e-324])
    ys, ds = np.zeros(5), np.zeros(5)
    lib.tanh_many(special.ctypes.data, ys.ctypes.data, ds.ctypes.data, 5)
    assert np.signbit(ys[0]) and ys[0] == 0 and ys[1] == 1 and ys[2] == -1 and np.isnan(ys[3])
    assert ys[4] == -5e-324


# -- recognition ---------------------------------------------------------------------------------------------

def _expanded_equal(m, layers):
    st = m.structure
    rebuilt = stack_node(layers, st.state_groups[0], m.t)
    diff = N.expand(st.rhs[0]) - N.expand(rebuilt)
    return all(sympy.simplify(e) == 0 for e in diff)


@pytest.mark.parametrize("case", ["tanh", "two-layers", "time", "linear", "three-layers"])
def test_network_right_hand_sides_are_recognised_as_their_layers(case):
    m = _model(case)
    layers = dense_stack(m.structure, m.t)
    c = CASES[case]
    assert layers is not None and len(layers) == len(c["hidden"]) + 1
    assert [L.n_out for L in layers] == [*c["hidden"], c["D"]]
    assert (layers[0].time_weight is not None) == c.get("time_input", False)
    assert _expanded_equal(m, layers)


def test_hand_written_stacks_are_recognised_and_near_misses_are_not():
    base = network_spec(2, [3], name="hand").split("[network]")[0]
    params = "[params]" + network_spec(2, [3]).split("[params]")[1].split("[loss]")[0]
    loss = '[loss]\nterminal = "sum(z**2)"\n'

    def spec(rhs, extra=""):
        return load_spec(base + f'rhs = ["{rhs}"]\n' + params + extra + loss)
    same = spec("b2 + W2 @ tanh(b1 + W1 @ z)")  # terms in another order than [network] writes them
    layers = dense_stack(same.structure, same.t)
    assert layers is not None and [L.activation for L in layers] == ["tanh", None] and _expanded_equal(same, layers)
    for rhs, extra in [("W2 @ tanh(W1 @ z + b1) + b2 - z", ""),              # a skip connection
                       ("W2 @ tanh(2 * (W1 @ z) + b1) + b2", ""),            # a scalar factor
                       ("W2 @ sin(W1 @ z + b1) + b2", ""),                   # not an activation of the stack
                       ("W2 @ tanh(W1 @ z + b1) + b2 + k * z", 'k = "0.1"\n'),  # a parameter as a factor
                       ("W2 @ tanh(W1 @ z + b1 + t) + b2", "")]:             # time without a weight
        m = spec(rhs, extra)
        assert dense_stack(m.structure, m.t) is None, rhs
    rich = load_spec(RICH)  # a network with a running cost: the CasADi step kernels integrate it
    assert rich.has_running and dense_stack(rich.structure, rich.t) is None
    norun = load_spec(RICH.replace('running = "0.1*sum(z**2)"\n', ""))
    assert dense_stack(norun.structure, norun.t) is not None
    assert dense_stack(get_model("spiral").structure, get_model("spiral").t) is None  # scalar model


def test_tied_weights_and_unused_parameters_accumulate_like_the_graph():
    # one weight matrix and one bias used by both layers (their gradients are sums over the two uses), and
    # parameter groups W2, b2 that the right-hand side never uses (gradient 0)
    base = network_spec(2, [2], name="tied").split("[network]")[0]
    spec = network_spec(2, [2])
    m = load_spec(base + 'rhs = ["W1 @ tanh(W1 @ z + b1) + b1"]\n' + "[params]" + spec.split("[params]")[1])
    layers = dense_stack(m.structure, m.t)
    assert [(L.weight.name, L.bias.name) for L in layers] == [("W1", "b1"), ("W1", "b1")]
    assert _worst_vs_graph(m, "rk4", 30) <= TOL["dense_vs_graph"]
    g = symode.compile(m, "rk4", 30).grad_arrays()[1]
    assert np.all(g[6:12] == 0.0) and np.all(g[:6] != 0.0)  # θ = (W1, b1, W2, b2)


def test_rich_network_without_running_cost_agrees_with_the_graph():
    # z0 from an encoder of parameters, a loss using parameters (k, W3), two hidden layers, a time input
    m = load_spec(RICH.replace('running = "0.1*sum(z**2)"\n', ""))
    assert _worst_vs_graph(m, "rk4", 30) <= TOL["dense_vs_graph"]


def test_implicit_schemes_and_running_costs_keep_casadis_kernels():
    for m, scheme in ((get_model("mlp"), "gauss2"), (load_spec(RICH), "rk4")):
        code = generate(m, scheme, 20, casadi_api=False)
        assert b'"step_kernels": "CasADi kernels"' in code.files[f"{FILE_STEM}.json"]


def test_dense_c_does_not_grow_with_width_and_needs_no_casadi_step_kernels(monkeypatch):
    sizes = {}
    real = sweep.step_kernels

    def refuse(*a, **k):
        raise AssertionError("CasADi step kernels built for a dense library")
    monkeypatch.setattr(sweep, "step_kernels", refuse)
    for H in (16, 1024):
        code = generate(get_model(f"mlp-2-{H}"), "rk4", 50, casadi_api=False)
        sizes[H] = len(code.files[f"{FILE_STEM}.c"])
    # 64x the weights, the same C but for the digits of the sizes and offsets
    assert abs(sizes[1024] - sizes[16]) <= 0.01 * sizes[16], sizes
    monkeypatch.setattr(sweep, "step_kernels", real)
    assert "grad" in code.functions  # the in-memory functions are built on request
    again = generate(get_model("mlp-2-1024"), "rk4", 50, casadi_api=False)
    assert again.files == code.files  # byte-deterministic
