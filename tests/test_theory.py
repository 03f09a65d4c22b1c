"""Theory against closed forms and reference values from an independent adaptive integration."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from research import activations, theory
from research.errors import ConfigError

ZOO = ["linear", "relu", "leaky_relu:0.2", "tanh", "sigmoid", "gelu", "silu", "elu", "selu", "softplus"]


@pytest.mark.parametrize("rule", [theory.forward_rule, theory.backward_rule])
def test_relu_and_linear_closed_forms(rule):
    assert rule("relu") == pytest.approx(2.0, abs=1e-6)
    assert rule("linear") == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.5])
def test_leaky_relu_closed_form(slope):
    expected = 2.0 / (1.0 + slope**2)
    assert theory.forward_rule(f"leaky_relu:{slope}") == pytest.approx(expected, abs=1e-6)
    assert theory.backward_rule(f"leaky_relu:{slope}") == pytest.approx(expected, abs=1e-6)
    assert theory.edge_of_chaos(f"leaky_relu:{slope}").alpha == pytest.approx(expected, abs=1e-6)


def test_tanh_edge_of_chaos_without_bias_is_one():
    eoc = theory.edge_of_chaos("tanh")
    assert eoc.alpha == pytest.approx(1.0, abs=1e-6)
    assert eoc.q_star == 0.0


def test_tanh_edge_of_chaos_with_schoenholz_bias():
    eoc = theory.edge_of_chaos("tanh", sigma_b=math.sqrt(0.05))
    assert eoc.alpha == pytest.approx(1.76, abs=0.005)
    assert eoc.q_star == pytest.approx(0.570, abs=0.0005)


# Reference values (adaptive quadrature split at the kink, cross-checked with 300-node
# Gauss-Hermite): forward 1/E[phi^2], backward 1/E[phi'^2], edge of chaos (Poole et al. 2016).
TABLE = {
    "tanh": (2.54, 2.15, 1.00),
    "sigmoid": (3.41, 22.3, 103),
    "gelu": (2.35, 2.19, None),
    "silu": (2.81, 2.64, None),
    "elu": (1.55, 1.50, 1.00),
    "softplus": (1.09, 3.41, None),
    "selu": (1.00, 0.933, 0.477),
    "leaky_relu:0.2": (1.92, 1.92, 1.92),
}


def _sig3(x: float) -> float:
    return float(f"{x:.3g}")


@pytest.mark.parametrize("name", TABLE)
def test_theory_table_to_three_significant_digits(name):
    forward, backward, eoc = TABLE[name]
    assert _sig3(theory.forward_rule(name)) == pytest.approx(forward)
    assert _sig3(theory.backward_rule(name)) == pytest.approx(backward)
    found = theory.edge_of_chaos(name).alpha
    assert (found is None) == (eoc is None)
    if eoc is not None:
        assert _sig3(found) == pytest.approx(eoc)


def test_sigmoid_critical_fixed_point():
    assert theory.edge_of_chaos("sigmoid").q_star == pytest.approx(45.6, abs=0.05)


@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_gelu_and_silu_have_no_stable_critical_point(name):
    eoc = theory.edge_of_chaos(name)
    assert eoc.alpha is None and "no stable critical point" in eoc.note


def test_softplus_stays_ordered():
    assert "chi_1 < 1" in theory.edge_of_chaos("softplus").note


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("q", [0.3, 1.0, 5.0])
def test_quadrature_matches_adaptive_integration(name, q):
    """An independent check: scipy's adaptive quadrature, split at the kink at 0."""
    act = activations.get(name)
    fn = lambda z: float(np.asarray(act(np.float32(math.sqrt(q) * z)), dtype=np.float64))  # noqa: E731
    # float32 activations limit the reference to ~1e-6 relative; the quadrature itself is float64.
    reference = sum(
        integrate.quad(lambda z: fn(z) ** 2 * stats.norm.pdf(z), a, b, epsabs=1e-12, limit=200)[0]
        for a, b in [(-12, 0), (0, 12)]
    )
    assert theory.moments(name, q)[0][0] == pytest.approx(reference, rel=2e-6)


# Depth scales xi = -1/ln chi_c (Schoenholz et al. 2017), from the same reference integration.
@pytest.mark.parametrize(
    ("sigma_b2", "alpha", "xi"),
    [
        (0.05, 1.0, 3.6),
        (0.05, 1.5, 15.8),
        (0.05, 1.7, 75),
        (0.05, 2.0, 25),
        (0.05, 3.0, 9.1),
        (0.05, 4.0, 7.0),
        (0.0, 0.9, 9.5),
        (0.0, 2.0, 21.7),
        (0.0, 2.78, 12.1),
    ],
)
def test_tanh_depth_scales(sigma_b2, alpha, xi):
    assert theory.depth_scale("tanh", alpha, math.sqrt(sigma_b2)) == pytest.approx(xi, rel=0.02)


def test_depth_scale_is_infinite_at_the_edge():
    assert theory.depth_scale("relu", 2.0) == math.inf
    assert theory.depth_scale("tanh", 1.7609546, math.sqrt(0.05)) > 1000


def test_predict_lists_every_theory_with_torch_gains():
    preds = {p.theory: p.alpha for p in theory.predict("tanh")}
    assert set(preds) == set(theory.THEORIES)
    assert preds["pytorch_gain"] == pytest.approx(25 / 9)
    assert preds["xavier"] == pytest.approx(1.0) and preds["lecun"] == 1.0
    assert {p.theory: p.alpha for p in theory.predict("selu")}["pytorch_gain"] == pytest.approx(0.5625)
    assert {p.theory: p.alpha for p in theory.predict("gelu")}["pytorch_gain"] is None
    assert {p.theory: p.alpha for p in theory.predict("leaky_relu:0.2")}["he"] == pytest.approx(2 / 1.04)


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("tanh", {"he"}),  # He's derivation needs a rectifier
        ("elu", {"he", "pytorch_gain"}),
        ("selu", {"he", "xavier", "lecun"}),  # a kink at 0: no linear regime
        ("relu", {"xavier", "lecun"}),
        ("sigmoid", {"he", "xavier", "lecun"}),  # phi(0) = 1/2
        ("softplus", {"he", "xavier", "lecun", "edge_of_chaos", "pytorch_gain"}),
    ],
)
def test_rules_apply_only_where_their_derivation_does(name, missing):
    preds = theory.predict(name)
    assert {p.theory for p in preds if p.alpha is None} == missing
    assert all(p.note.startswith("n/a") for p in preds if p.alpha is None and p.theory != "edge_of_chaos")


def test_glorot_compromise_is_the_linearised_rule():
    # Var = 2 / ((fan_in + fan_out) phi'(0)^2): GELU and SiLU have phi'(0) = 1/2, so alpha = 4.
    assert {p.theory: p.alpha for p in theory.predict("gelu")}["xavier"] == pytest.approx(4.0, rel=1e-9)
    assert {p.theory: p.alpha for p in theory.predict("silu")}["xavier"] == pytest.approx(4.0, rel=1e-9)


def test_identical_predictions_are_one_entry_naming_every_theory():
    relu = theory.distinct({p.theory: p.alpha for p in theory.predict("relu")})
    assert relu == [("he = forward = backward = edge_of_chaos = pytorch_gain", pytest.approx(2.0))]
    names = [k for k, _ in theory.distinct({p.theory: p.alpha for p in theory.predict("tanh")})]
    assert names == ["xavier = lecun = edge_of_chaos", "backward", "forward", "pytorch_gain"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: theory.predict("swish"), "activation"),
        (lambda: activations.get("leaky_relu:abc"), "parameter"),
        (lambda: activations.get("tanh:0.2"), "takes no parameter"),
        (lambda: theory.validate_sigma_b(-1.0), "sigma_b"),
    ],
)
def test_bad_theory_input_is_one_clear_sentence(call, field):
    with pytest.raises(ConfigError, match=field):
        call()


def test_the_theory_table_is_kept_on_disk_keyed_by_the_activations_code(tmp_path, monkeypatch):
    from research import theory_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first, xi = theory_cache.predictions("leaky_relu:0.2", 0.0)
    assert first == theory.predict("leaky_relu:0.2", 0.0)
    assert xi == theory.depth_scale("leaky_relu:0.2", first[3].alpha, 0.0)
    assert len(list((tmp_path / "init-scale" / "theory").glob("*.json"))) == 1

    def recomputed(*args):
        raise AssertionError("computed again")

    monkeypatch.setattr(theory, "predict", recomputed)
    assert theory_cache.predictions("leaky_relu:0.2", 0.0) == (first, xi)  # read back, equal to the last digit
    with pytest.raises(AssertionError, match="computed again"):  # another parameter is another entry
        theory_cache.predictions("leaky_relu:0.3", 0.0)
    with pytest.raises(AssertionError, match="computed again"):
        theory_cache.predictions("leaky_relu:0.2", 0.05)
