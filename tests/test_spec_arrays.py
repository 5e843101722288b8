"""Structure in the spec (issue 12, item 1): vector and matrix states and parameters, [defs], [network],
parameter files, observation terms as expressions, and the immutable model with its two hashes.

Expected values come from the format's definition, hand computation, or an independent SymPy construction of
the same expressions (the MLP is rebuilt here with sympy.Matrix products, not through symode's array code).
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import sympy

from symode.arrays import node as N
from symode.errors import SpecError
from symode.library import get_model, mlp_model
from symode.model import Model
from symode.spec import dump_spec, load_spec, load_spec_file

R = sympy.Rational

SMALL = '''
name = "small"
states = [{name = "z", size = 2}]
z0 = [["0.5", "-0.5"]]
t0 = "0"
t1 = "1"
rhs = ["W2 @ tanh(W1 @ z + b1) + b2"]
[params]
W1 = [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]]
b1 = ["0.01", "0.02", "0.03"]
W2 = [["1", "2", "3"], ["-1", "-2", "-3"]]
b2 = ["0", "0.5"]
[loss]
terminal = "sum((z - 1)**2)"
'''


def sym(name):
    return sympy.Symbol(name, real=True)


def independent_mlp_rhs(m, D, H, act=sympy.tanh):
    """The MLP right-hand side built with plain SymPy matrices from the model's element symbols."""
    W1 = sympy.Matrix(H, D, lambda i, j: sym(f"W1_{i}_{j}"))
    b1 = sympy.Matrix(H, 1, lambda i, j: sym(f"b1_{i}"))
    W2 = sympy.Matrix(D, H, lambda i, j: sym(f"W2_{i}_{j}"))
    b2 = sympy.Matrix(D, 1, lambda i, j: sym(f"b2_{i}"))
    z = sympy.Matrix(D, 1, lambda i, j: sym(f"z_{i}"))
    return list(W2 * (W1 * z + b1).applyfunc(act) + b2)


class TestArrays:
    def test_shapes_elements_and_exact_values(self):
        m = load_spec(SMALL)
        assert m.structure is not None
        assert m.state_names == ["z_0", "z_1"]
        assert m.np == 6 + 3 + 6 + 2
        assert m.param_names[:3] == ["W1_0_0", "W1_0_1", "W1_1_0"]  # row-major
        assert m.param_values[sym("W1_2_1")] == R(6, 10) and m.param_values[sym("b1_0")] == R(1, 100)
        assert [g.dims for g in m.groups] == [(2,), (3, 2), (3,), (2, 3), (2,)]

    def test_scalar_form_equals_an_independent_expansion(self):
        m = load_spec(SMALL)
        want = independent_mlp_rhs(m, 2, 3)
        assert all(sympy.expand(a - b) == 0 for a, b in zip(m.rhs, want))
        assert m.terminal == (sym("z_0") - 1) ** 2 + (sym("z_1") - 1) ** 2

    @pytest.mark.parametrize("rhs,fragment", [
        ('["W1 @ z + b2"]', "3x1"),             # a 3-vector where z' needs 2
        ('["z @ W1"]', "inner sizes"),
        ('["W2 @ W1 @ z + b1"]', "different shapes"),
        ('["W1 + z"]', "different shapes"),
        ('["z[2]"]', "outside"),
        ('["W1[0] + z"]', "two indices"),
        ('["2**z"]', "exponent"),
    ])
    def test_shape_mismatches_name_field_and_shapes(self, rhs, fragment):
        text = SMALL.replace('rhs = ["W2 @ tanh(W1 @ z + b1) + b2"]', f"rhs = {rhs}")
        with pytest.raises(SpecError) as exc:
            load_spec(text)
        assert "rhs[0]" in str(exc.value) and fragment in str(exc.value)

    @pytest.mark.parametrize("decl,fragment", [
        ('W1 = [["0.1", "0.2"], ["0.3"]]', "equal, nonzero length"),
        ('W1 = [[["1"]]]', "at most two dimensions"),
        ('W1 = []', "at least one element"),
        ('W1 = ["1", ["2"]]', "mix of numbers and rows"),
        ('W1 = [["nan", "1"]]', "W1[0][0]"),
        ('W1_0_0 = "1"\nW1 = [["1"]]', "declared twice"),
    ])
    def test_bad_array_parameters(self, decl, fragment):
        text = f'''name = "m"
states = [{{name = "z", size = 1}}]
rhs = ["-z"]
z0 = [["1"]]
t0 = "0"
t1 = "1"
[params]
{decl}
[loss]
terminal = "z[0]"
'''
        with pytest.raises(SpecError, match=None) as exc:
            load_spec(text)
        assert fragment in str(exc.value)

    def test_vector_state_given_element_by_element(self):
        text = SMALL.replace('rhs = ["W2 @ tanh(W1 @ z + b1) + b2"]', 'rhs = [["-z[0]", "z[0] - z[1]"]]')
        m = load_spec(text)
        assert m.rhs == (-sym("z_0"), sym("z_0") - sym("z_1"))
        with pytest.raises(SpecError, match="2 elements"):
            load_spec(text.replace('[["-z[0]", "z[0] - z[1]"]]', '[["-z[0]"]]'))


class TestDefs:
    def test_defs_are_named_and_inlined(self):
        text = SMALL.replace('rhs = ["W2 @ tanh(W1 @ z + b1) + b2"]', 'rhs = ["W2 @ h + b2"]') + \
            '[defs]\na = "W1 @ z + b1"\nh = "tanh(a)"\n'
        a, b = load_spec(text), load_spec(SMALL)
        assert [n for n, _ in a.structure.defs] == ["a", "h"]
        assert a.rhs == b.rhs  # the same expressions (equal nodes), written through named terms

    def test_caps_apply_per_expression(self):
        """A rhs whose inlined whole exceeds the 2,000-node cap parses when split into named terms."""
        from symode.expr import LIMITS
        terms = " + ".join(f"p{i}*x" for i in range(700))  # ~2,100 syntax nodes
        params = "\n".join(f'p{i} = "0.001"' for i in range(700))
        base = f'''name = "caps"
states = ["x"]
z0 = ["1"]
t0 = "0"
t1 = "1"
[params]
{params}
[loss]
terminal = "x"
'''
        with pytest.raises(SpecError, match="syntax nodes"):
            load_spec(base.replace('t0 = "0"', f'rhs = ["{terms}"]\nt0 = "0"'))
        half = " + ".join(f"p{i}*x" for i in range(350))
        rest = " + ".join(f"p{i}*x" for i in range(350, 700))
        m = load_spec(base.replace('t0 = "0"', 'rhs = ["u + v"]\nt0 = "0"') + f'[defs]\nu = "{half}"\nv = "{rest}"\n')
        assert len(m.rhs[0].args) == 700 and LIMITS["max_nodes"] == 2000

    @pytest.mark.parametrize("defs,fragment", [
        ('W1 = "1"', "already taken"), ('t = "1"', "already taken"), ('z_0 = "1"', "already taken"),
        ('a = "b"\nb = "1"', "unknown name 'b'"),   # only earlier terms
    ])
    def test_def_errors(self, defs, fragment):
        with pytest.raises(SpecError) as exc:
            load_spec(SMALL + "[defs]\n" + defs + "\n")
        assert fragment in str(exc.value)


NET = '''
name = "net"
states = [{name = "z", size = 2}]
z0 = [["0.5", "-0.5"]]
t0 = "0"
t1 = "1"
[network]
hidden = [3]
activation = "tanh"
[params]
W1 = [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]]
b1 = ["0.01", "0.02", "0.03"]
W2 = [["1", "2", "3"], ["-1", "-2", "-3"]]
b2 = ["0", "0.5"]
[loss]
terminal = "sum((z - 1)**2)"
'''


class TestNetwork:
    def test_network_equals_the_written_expression(self):
        a, b = load_spec(NET), load_spec(SMALL.replace('name = "small"', 'name = "net"'))
        assert a.rhs == b.rhs and a.structure.rhs == b.structure.rhs
        assert [n for n, _ in a.structure.defs] == ["a1", "h1"]

    @pytest.mark.parametrize("act,fn", [("sigmoid", lambda x: 1 / (1 + sympy.exp(-x))),
                                        ("softplus", lambda x: sympy.log(1 + sympy.exp(x))),
                                        ("relu", lambda x: sympy.Max(x, 0)), ("identity", lambda x: x)])
    def test_activations(self, act, fn):
        m = load_spec(NET.replace('activation = "tanh"', f'activation = "{act}"'))
        want = independent_mlp_rhs(m, 2, 3, fn)
        assert all(sympy.expand(x - y) == 0 for x, y in zip(m.rhs, want))

    def test_time_input_and_deeper_stacks(self):
        text = NET.replace("hidden = [3]", "hidden = [3, 2]\ntime_input = true").replace(
            'activation = "tanh"', 'activation = ["tanh", "softplus"]').replace(
            'W2 = [["1", "2", "3"], ["-1", "-2", "-3"]]\nb2 = ["0", "0.5"]',
            'Wt1 = ["1", "2", "3"]\nW2 = [["1", "2", "3"], ["-1", "-2", "-3"]]\nb2 = ["0", "0.5"]\n'
            'W3 = [["1", "0"], ["0", "1"]]\nb3 = ["0", "0"]')
        m = load_spec(text)
        t = sym("t")
        W1 = sympy.Matrix(3, 2, lambda i, j: sym(f"W1_{i}_{j}"))
        Wt = sympy.Matrix(3, 1, lambda i, j: sym(f"Wt1_{i}"))
        b1 = sympy.Matrix(3, 1, lambda i, j: sym(f"b1_{i}"))
        W2 = sympy.Matrix(2, 3, lambda i, j: sym(f"W2_{i}_{j}"))
        b2 = sympy.Matrix(2, 1, lambda i, j: sym(f"b2_{i}"))
        W3 = sympy.Matrix(2, 2, lambda i, j: sym(f"W3_{i}_{j}"))
        b3 = sympy.Matrix(2, 1, lambda i, j: sym(f"b3_{i}"))
        z = sympy.Matrix([sym("z_0"), sym("z_1")])
        h1 = (W1 * z + Wt * t + b1).applyfunc(sympy.tanh)
        h2 = (W2 * h1 + b2).applyfunc(lambda x: sympy.log(1 + sympy.exp(x)))
        want = W3 * h2 + b3
        assert all(sympy.expand(x - y) == 0 for x, y in zip(m.rhs, want))

    @pytest.mark.parametrize("change,fragment", [
        (('W2 = [["1", "2", "3"], ["-1", "-2", "-3"]]', 'W2 = [["1", "2"], ["-1", "-2"]]'), "params.W2"),
        (('b2 = ["0", "0.5"]\n', ""), "needs the parameter b2"),
        (('activation = "tanh"', 'activation = "gelu"'), "unknown activation"),
        (("hidden = [3]", "hidden = [0]"), "hidden"),
        (("[network]", '[network]\nbogus = 1'), "unknown key"),
        (('t1 = "1"', 't1 = "1"\nrhs = ["z"]'), "remove rhs"),
    ])
    def test_network_errors(self, change, fragment):
        with pytest.raises(SpecError) as exc:
            load_spec(NET.replace(*change))
        assert fragment in str(exc.value)


class TestParamsFiles:
    def write(self, tmp_path, body: str, params: dict | None = None, npz: dict | None = None):
        spec = NET.split("[params]")[0] + body + "\n[loss]\nterminal = \"sum(z)\"\n"
        if params is not None:
            (tmp_path / "w.json").write_text(json.dumps(params))
        if npz is not None:
            np.savez(tmp_path / "w.npz", **npz)
        p = tmp_path / "net.toml"
        p.write_text(spec)
        return p

    PARAMS = {"W1": [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]], "b1": [0.01, 0.02, 0.03],
              "W2": [[1, 2, 3], [-1, -2, -3]], "b2": ["0", "0.5"]}

    def test_json_file_is_exact_and_equals_inline(self, tmp_path):
        p = self.write(tmp_path, "", self.PARAMS)
        p.write_text('params_file = "w.json"\n' + p.read_text())
        m = load_spec_file(p)
        inline = load_spec(NET.replace("sum((z - 1)**2)", "sum(z)"))
        assert m.param_values == inline.param_values  # JSON 0.01 is the decimal 1/100, like "0.01"
        assert m.param_values[sym("b1_0")] == R(1, 100)

    def test_npz_values_are_exact_binary(self, tmp_path):
        npz = {k: np.array(v, dtype=float) for k, v in self.PARAMS.items()}
        p = self.write(tmp_path, "", npz=npz)
        p.write_text('params_file = "w.npz"\n' + p.read_text())
        m = load_spec_file(p)
        assert m.param_values[sym("W1_0_0")] == R(*(0.1).as_integer_ratio()) != R(1, 10)

    @pytest.mark.parametrize("ref,fragment", [
        ('"../w.json"', "inside its directory"), ('"/etc/passwd"', "relative"), ('"missing.json"', "cannot read"),
        ('"w.txt"', ".json or .npz"),
    ])
    def test_bad_references(self, tmp_path, ref, fragment):
        (tmp_path / "w.txt").write_text("{}")
        p = self.write(tmp_path, "", self.PARAMS)
        p.write_text(f"params_file = {ref}\n" + p.read_text())
        with pytest.raises(SpecError) as exc:
            load_spec_file(p)
        assert fragment in str(exc.value)

    def test_duplicates_and_shapes(self, tmp_path):
        p = self.write(tmp_path, '[params]\nb2 = ["0", "0.5"]\n', {k: v for k, v in self.PARAMS.items()})
        p.write_text('params_file = "w.json"\n' + p.read_text())
        with pytest.raises(SpecError, match="also given in"):
            load_spec_file(p)
        (tmp_path / "w.json").write_text('{"W1": 1, "W1": 2}')
        with pytest.raises(SpecError, match="given twice"):
            load_spec_file(p)
        (tmp_path / "w.json").write_text('{"W1": NaN}')
        with pytest.raises(SpecError, match="NaN"):
            load_spec_file(p)

    def test_text_spec_cannot_reference_a_file(self):
        with pytest.raises(SpecError, match="no directory"):
            load_spec('params_file = "w.json"\n' + NET)


OBS = '''
name = "obs"
states = ["x", "y"]
rhs = ["-a*x", "x - y"]
z0 = ["1", "0"]
t0 = "0"
t1 = "1"
[params]
a = "0.5"
[loss.observations]
times = ["0", "0.5"]
'''


class TestObservationTerms:
    def test_any_expression_and_an_observation_at_t0(self):
        m = load_spec(OBS + 'term = "x + y"\n')
        x, y = sym("x"), sym("y")
        assert [(o.time, o.term) for o in m.observations] == [(0, x + y), (R(1, 2), x + y)]
        assert m.structure is None  # a scalar model stays scalar

    def test_term_uses_t_and_data(self):
        m = load_spec(OBS + 'data = [["1", "2"], ["3", "4"]]\nterm = "t*(x - data[0])**2 + y*data[1]"\n')
        x, y = sym("x"), sym("y")
        assert m.observations[1].term == R(1, 2) * (x - 3) ** 2 + 4 * y
        assert m.observations[0].term == 2 * y

    def test_terms_one_per_time_and_errors(self):
        m = load_spec(OBS + 'terms = ["x", "a*y"]\n')
        assert [o.term for o in m.observations] == [sym("x"), sym("a") * sym("y")]
        for extra, fragment in (('terms = ["x"]', "one per"), ('term = "x"\nterms = ["x", "y"]', "not both"),
                                ("", "give data"), ('term = "data"', "unknown name 'data'")):
            with pytest.raises(SpecError) as exc:
                load_spec(OBS + extra + "\n")
            assert fragment in str(exc.value)

    def test_vector_term_with_data(self):
        text = NET.replace("[loss]\nterminal = \"sum((z - 1)**2)\"",
                           '[loss.observations]\ntimes = ["0.5"]\ndata = [["1", "2"]]\nterm = "sum((z - data)**2)/2"')
        m = load_spec(text)
        z0, z1 = sym("z_0"), sym("z_1")
        assert sympy.expand(m.observations[0].term - ((z0 - 1) ** 2 + (z1 - 2) ** 2) / 2) == 0
        assert load_spec(dump_spec(m)).fingerprint() == m.fingerprint()


class TestModel:
    def test_immutable_and_hashes(self):
        m = get_model("mlp")
        with pytest.raises(AttributeError, match="immutable"):
            m.name = "x"
        with pytest.raises(TypeError):
            m.param_values[m.params[0]] = 1
        fp, sh = m.fingerprint(), m.structure_hash()
        assert m.fingerprint() is fp  # computed once
        m2 = m.with_values({"W1": [[R(0)] * 2] * 4})
        assert m2.structure_hash() == sh and m2.fingerprint() != fp
        assert m2.param_values[sym("W1_3_1")] == 0
        assert pickle.loads(pickle.dumps(m)).fingerprint() == fp

    def test_scalar_fingerprints_are_the_committed_ones(self):
        """The committed generated headers print the fingerprints of the scalar built-in models (independent:
        written before this change)."""
        from pathlib import Path
        root = Path(__file__).resolve().parents[1] / "generated"
        for name in ("linear", "logistic", "spiral", "seed-encoder"):
            header = (root / name / "symode_model.h").read_text()
            assert get_model(name).fingerprint() in header

    def test_values_with_arrays_and_elements(self):
        m = load_spec(NET)
        with pytest.raises(SpecError, match="expected shape 3x2"):
            m.with_values({"W1": [["1", "2", "3"]]})
        with pytest.raises(SpecError, match="did you mean 'W1'"):
            m.with_values({"W11": 1})
        m2 = m.with_values({"W1_0_0": R(7), "b2": [R(1), R(2)]})
        assert m2.param_values[sym("W1_0_0")] == 7 and m2.param_values[sym("b2_1")] == 2

    def test_builtin_mlp_has_observations_and_terminal(self):
        m = get_model("mlp-2-16")
        assert m.np == 82 and len(m.observation_times) == 10 and m.has_terminal
        assert 0 < min(m.observation_times) and max(m.observation_times) < m.t1
        assert all(sympy.expand(a - b) == 0 for a, b in zip(m.rhs, independent_mlp_rhs(m, 2, 16)))
        assert mlp_model(8, 256).np == 8 * 256 * 2 + 256 + 8

    def test_python_api_structured_model(self):
        g = N.Group("z", "state", (2,), (sym("z_0"), sym("z_1")))
        k = N.Group("k", "param", (), (sym("k"),))
        rhs = N.mul(-1, sym("k"), N.leaf(g))
        m = Model(name="decay", groups=[g, k], rhs=[rhs], z0=[N.stack([1, 2])], t0=0, t1=1,
                  param_values={sym("k"): R(1, 2)}, terminal=sym("z_0"))
        assert m.rhs == (-sym("k") * sym("z_0"), -sym("k") * sym("z_1"))
        with pytest.raises(SpecError, match="expected a 2x1 array"):
            Model(name="bad", groups=[g, k], rhs=[sym("k")], z0=[N.stack([1, 2])], t0=0, t1=1,
                  param_values={sym("k"): 1}, terminal=sym("z_0"))


def test_transpose_and_quadratic_forms_round_trip():
    text = '''
name = "q"
states = [{name = "z", size = 2}]
rhs = ["-transpose(Q) @ z"]
z0 = [["1", "2"]]
t0 = "0"
t1 = "1"
[params]
Q = [["1", "0.5"], ["0", "2"]]
[loss]
terminal = "transpose(z) @ Q @ z"
'''
    m = load_spec(text)
    Q = sympy.Matrix(2, 2, lambda i, j: sym(f"Q_{i}_{j}"))
    z = sympy.Matrix([sym("z_0"), sym("z_1")])
    assert list(m.rhs) == list(-Q.T * z) and sympy.expand(m.terminal - (z.T * Q * z)[0, 0]) == 0
    assert load_spec(dump_spec(m)).fingerprint() == m.fingerprint()
