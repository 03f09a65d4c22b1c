"""Signal propagation at init: the numbers mean-field theory predicts."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import models, probes


def _grid(activation: str, alphas, depth=50, width=256, seeds=4):
    cfg = models.default_config("mlp")
    cfg.update({"activation": activation, "depth": depth, "width": width, "input_dim": width})
    x = probes.gaussian_inputs(cfg, jax.random.key(42), 128)
    return probes.grid(cfg, jnp.asarray(alphas, jnp.float32), jnp.arange(seeds), x)


@pytest.fixture(scope="module")
def relu():
    return _grid("relu", [1.0, 2.0])


def test_he_keeps_relu_forward_variance_across_50_layers(relu):
    forward = np.asarray(relu.forward[1])  # [seed, layer]
    # Width 256, depth 50: ln q_L has sd about 0.6 (finite width: Hanin & Rolnick 2018); the median
    # over 4 seeds stays within a factor e of the first layer, the slope within 0.02.
    assert abs(np.median(np.log(forward[:, -1] / forward[:, 0]))) < 1.0
    assert abs(float(np.median(probes.log_slope(relu.forward[1])))) < 0.02


def test_alpha_one_halves_relu_variance_per_layer(relu):
    slope = float(np.median(probes.log_slope(relu.forward[0])))
    assert slope == pytest.approx(math.log(0.5), abs=0.03)
    ratio = np.median(np.log(np.asarray(relu.forward[0, :, -1] / relu.forward[0, :, 0])))
    assert ratio == pytest.approx(49 * math.log(0.5), abs=2.5)  # about 2^-50 overall


def test_relu_backward_and_jacobian_optimum_is_two(relu):
    for stat in (relu.backward, relu.jacobian):
        slopes = np.median(np.asarray(probes.log_slope(stat)), axis=1)
        assert abs(slopes[1]) < 0.02
        assert abs(abs(slopes[0]) - math.log(2)) < 0.03


@pytest.mark.slow
def test_tanh_at_alpha_one_is_critical_by_the_jacobian():
    # Deep layers (q -> 0) sit at chi_1 = alpha: log gain per layer -> log(alpha). At alpha 1
    # it decays only as -1/layer (about -0.03 over layers 25-50); off-critical alphas do not.
    stats = _grid("tanh", [0.8, 1.0, 2.0])
    late = np.median(np.asarray(probes.log_slope(stats.jacobian[..., 25:])), axis=1)
    assert abs(late[1]) < 0.05
    assert late[0] < math.log(0.8) + 0.03
    assert late[2] > 0.05


def test_log_slope_recovers_a_geometric_rate():
    values = 3.0 * 1.5 ** jnp.arange(10.0)
    assert float(probes.log_slope(values)) == pytest.approx(math.log(1.5), rel=1e-5)


def test_rnn_time_steps_play_depth():
    cfg = models.default_config("rnn")
    cfg.update({"hidden": 256, "input_dim": 1})
    x = probes.gaussian_inputs(cfg, jax.random.key(0), 64, length=30)
    # A faint input keeps the state in tanh's linear regime (q -> 0), where the gain per
    # step is the recurrent scale g^2: g^2 = 0.5 forgets at log 0.5 per step, g^2 = 1 is
    # the edge. One fixed W per seed, so seeds spread by about 0.04: median of 8.
    alphas = {"input": jnp.array([1e-4, 1e-4]), "recurrent": jnp.array([0.5, 1.0])}
    stats = probes.grid(cfg, alphas, jnp.arange(8), x)
    slopes = np.median(np.asarray(probes.log_slope(stats.jacobian[..., 10:])), axis=1)
    assert slopes[0] == pytest.approx(math.log(0.5), abs=0.05)
    assert abs(slopes[1]) < 0.05
