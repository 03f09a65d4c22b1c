"""The theory of the network as run against closed forms: funnels, padding, input drive."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from research import asrun, data, experiment, finite_width, objectives, probes


def _cfg(path: str, objective: str, *overrides: str):
    return experiment.load(path, overrides=[f"search.objective='{objective}'", *overrides])


def test_square_relu_net_is_critical_at_two_whatever_the_input_scale():
    cfg = _cfg("experiments/he_relu_mlp.py", "forward_log_ratio")
    for moment in (1e-4, 1.0, 30.0):
        assert asrun.predict(cfg, [moment], at_width=False).alpha == pytest.approx(2.0, rel=1e-9)
    # at its 128 units the zero sits b / n above: b = 1.862 on the study's 256 MNIST-1D inputs
    at_width = asrun.predict(cfg, [1.0])
    assert at_width.alpha == pytest.approx(2.0 * math.exp(1.8624 / 128), rel=1e-4) and "finite width" in at_width.note


def test_linear_funnel_matches_the_hand_derivation():
    # On fan_avg a linear layer n -> r n has forward gain 2 alpha / (1 + r) and backward gain
    # 2 r alpha / (1 + r). With one ratio r for every layer the log-slope is exactly log(gain).
    r = 0.5
    widths = tuple(int(512 * r**i) for i in range(8))
    base = _cfg("experiments/xavier_compromise.py", "forward_log_ratio", f"model.widths={widths}", "model.depth=8",
                "model.input_dim=1024")  # fmt: skip
    assert asrun.predict(base, [1.0]).alpha == pytest.approx((1 + r) / 2, rel=1e-9)
    back = experiment.derive(base, {"search.objective": "backward_log_ratio"})
    assert asrun.predict(back, [1.0]).alpha == pytest.approx((1 + r) / (2 * r), rel=1e-6)


def test_the_quick_funnel_lands_near_the_constant_ratio_values():
    # FUNNEL halves every two layers (r = 1/sqrt(2), rounded): 0.854 and 1.207 within a percent.
    fwd = asrun.predict(_cfg("experiments/xavier_compromise.py", "forward_log_ratio"), [1.0]).alpha
    bwd = asrun.predict(_cfg("experiments/xavier_compromise.py", "backward_log_ratio"), [1.0]).alpha
    r = 1 / math.sqrt(2)
    assert fwd == pytest.approx((1 + r) / 2, rel=0.01) and bwd == pytest.approx((1 + r) / (2 * r), rel=0.01)


def test_tanh_jacobian_with_faint_inputs_sits_just_above_the_edge():
    # q1 = 2 alpha / (40 + 128) * 40 * 0.01 is about 0.005: tanh is nearly linear there, so the
    # edge (alpha 1 at q* = 0) moves up by about q1 (E[tanh'^2] = 1 - 2q + O(q^2)).
    cfg = _cfg("experiments/xavier_tanh_mlp.py", "jacobian_log_gain")
    alpha = asrun.predict(cfg, [0.01]).alpha
    assert 1.005 < alpha < 1.015
    assert asrun.predict(cfg, [1e-8]).alpha == pytest.approx(1.0, abs=1e-5)


def test_rnn_input_drive_moves_the_recurrent_edge_above_one():
    cfg = _cfg("experiments/rnn_recurrent_init.py", "jacobian_log_gain")
    faint, full = asrun.predict(cfg, np.full((1, 40), 1e-8)).alpha, asrun.predict(cfg, np.full((1, 40), 0.01)).alpha
    assert faint == pytest.approx(1.0, abs=1e-3) and 1.2 < full < 1.5


def test_cnn_zero_padding_needs_slightly_more_than_he():
    # Edge positions see 2 of 3 taps; the shortfall shrinks as the image grows.
    short = asrun.predict(
        _cfg("experiments/cnn_fan_2d.py", "forward_log_ratio", "model.input_shape=(40, 1)"), np.ones((1, 40))
    ).alpha
    long = asrun.predict(_cfg("experiments/cnn_fan_2d.py", "forward_log_ratio", "model.input_shape=(4000, 1)"),
                         np.ones((1, 4000))).alpha  # fmt: skip
    assert 2.005 < short < 2.05 and 2.0 < long < 2.0005


def test_one_layer_objective_is_the_forward_rule():
    cfg = _cfg("experiments/zoo.py:activation='gelu'", "forward_one_layer")
    assert asrun.predict(cfg, [1.0]).alpha == pytest.approx(2.3517, rel=1e-3)


def test_one_example_alone_drifts_by_five_halves_per_layer():
    # A chi-square over n rows (-1/n) and the ReLU's halving over a binomial count of active units
    # (-3/(2n)): c = 5/2 whatever the layer; a batch of nearly uncorrelated examples averages the
    # first layers' part away, and depth correlates them again (ReLU's correlation map tends to 1).
    c, kernel = finite_width.layer_terms(np.array([[3.0]]))
    assert c == pytest.approx(2.5) and kernel[0, 0] == pytest.approx(3.0)
    x = np.random.default_rng(0).normal(size=(256, 40))
    first, kernel = finite_width.layer_terms(x @ x.T / 40)
    later = []
    for _ in range(16):
        c, kernel = finite_width.layer_terms(kernel)
        later.append(c)
    assert first < 0.2 and np.all(np.diff(later) > 0) and later[-1] < 2.5


@pytest.mark.slow
def test_the_finite_width_shift_matches_a_direct_simulation():
    # 1024 seeds of the 20-layer ReLU MLP at 64 units on the study's inputs, at alpha 2: the mean
    # log-slope is -b/n. Measured b = 2.11 +- 0.12 against 1.86 to first order in 1/n; the rest is
    # the next order (one example alone: b(64) = 2.57 against 2.5).
    cfg = _cfg("experiments/he_relu_mlp.py", "forward_log_ratio", "model.width=64")
    x = probes.study_inputs(cfg, data.load(cfg.data))
    slopes = np.asarray(probes.log_slope(probes.grid(cfg.model, jnp.asarray([2.0]), jnp.arange(1024), x).forward))[0]
    measured, se = -64 * slopes.mean(), 64 * slopes.std(ddof=1) / math.sqrt(len(slopes))
    predicted = finite_width.shift(cfg) * 64
    assert predicted == pytest.approx(1.8624, abs=1e-3)
    assert abs(measured - predicted) < 3 * se and measured > predicted


def test_trained_objectives_have_no_as_run_prediction():
    assert asrun.predict(_cfg("experiments/he_relu_mlp.py", "train_loss"), [1.0]).alpha is None
    assert objectives.get("train_loss").trained


@pytest.mark.slow
def test_rnn_recursion_per_example_matches_a_direct_simulation():
    # One input dimension: each sequence's drive x_t^2 differs widely, and the probe averages the
    # Jacobian over sequences. Per sequence the recursion predicts the simulated log-gain within
    # 0.015 per step at 512 units; fed the batch's mean drive it misses by twice as much or more.
    cfg = _cfg("experiments/rnn_recurrent_init.py", "jacobian_log_gain", "model.hidden=512")
    x = np.asarray(data.load(cfg.data).x_train[:256], np.float32) * cfg.search.probe_input_scale
    per_example = np.mean(np.asarray(x, np.float64) ** 2, axis=-1)
    alphas = np.array([1.1, 1.217, 1.312, 1.45])
    stats = probes.grid(cfg.model, {"input": jnp.ones(4), "recurrent": jnp.asarray(alphas)}, jnp.arange(16),
                        jnp.asarray(x))  # fmt: skip
    measured = np.asarray(probes.log_slope(stats.jacobian)).mean(axis=1)
    objective = objectives.get("jacobian_log_gain")
    per = np.abs(asrun.log_ratio(cfg, objective, alphas, per_example) - measured)
    mean = np.abs(asrun.log_ratio(cfg, objective, alphas, per_example.mean(0, keepdims=True)) - measured)
    assert per.max() < 0.015 and mean.min() > 2 * per.max(), (per, mean)
    assert asrun.predict(cfg, per_example).alpha == pytest.approx(1.217, abs=0.002)


@pytest.mark.slow
def test_mlp_recursion_per_example_matches_a_direct_simulation():
    # A tanh MLP on MNIST-1D inputs x 3, whose per-example mean squares range from 2.4 to 19: at 512
    # units the per-example recursion predicts the Jacobian probe within 0.0015 per layer at three
    # alphas; the batch's mean moment misses by 0.003 or more, five standard errors.
    cfg = _cfg("experiments/xavier_tanh_mlp.py", "jacobian_log_gain", "model.width=512", "search.probe_input_scale=3.0")
    x = probes.study_inputs(cfg, data.load(cfg.data))
    per_example = np.mean(np.asarray(x, np.float64) ** 2, axis=-1)
    alphas = np.array([0.8, 1.2, 2.0])
    measured = np.asarray(probes.log_slope(probes.grid(cfg.model, jnp.asarray(alphas), jnp.arange(16), x).jacobian))
    objective = objectives.get("jacobian_log_gain")
    per = np.abs(asrun.log_ratio(cfg, objective, alphas, per_example) - measured.mean(axis=1))
    mean = np.abs(asrun.log_ratio(cfg, objective, alphas, per_example.mean(0, keepdims=True)) - measured.mean(axis=1))
    assert per.max() < 0.0015 and mean.min() > 0.0025, (per, mean)
