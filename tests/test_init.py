"""The variance family: sampled variances, fans, presets and traced alpha."""

import math

import jax
import jax.numpy as jnp
import pytest

from research import init
from research.errors import ConfigError

SHAPES = {"dense": (256, 512), "conv1d": (5, 32, 64), "conv2d": (3, 3, 64, 128), "recurrent": (256, 256)}


def _bound(n: int) -> float:
    # Sample variance of n iid draws has relative sd sqrt((kurtosis - 1) / n) <= sqrt(2 / n)
    # for these families (normal: kurtosis 3; uniform 1.8; truncated normal < 3); 5 sd
    # bound the false-failure rate below 1e-6 per check.
    return 5 * math.sqrt(2 / n)


@pytest.mark.parametrize("distribution", [d for d in init.DISTRIBUTIONS if d != "identity"])  # random draws
@pytest.mark.parametrize("mode", init.FAN_MODES)
@pytest.mark.parametrize("layer", SHAPES)
def test_sampled_variance_is_alpha_c_over_fan(distribution, mode, layer):
    shape = SHAPES[layer]
    spec = init.InitSpec(1.5, mode, distribution)
    w = init.initializer(spec, 1.7)(jax.random.key(0), shape)
    fan_in, fan_out = init.fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2, "fixed": 1}[mode]
    expected = 1.7 * 1.5 / fan
    assert abs(float(jnp.var(w)) / expected - 1) < _bound(w.size)
    assert abs(float(jnp.mean(w))) < 5 * math.sqrt(expected / w.size)


def test_identity_is_exactly_sqrt_alpha_times_i_with_the_prescribed_second_moment():
    w = init.initializer(init.InitSpec(1.0, "fan_in", "identity"), 1.0)(jax.random.key(0), (64, 64))
    assert jnp.array_equal(w, jnp.eye(64))  # Le et al. 2015: h_t = h_{t-1} + input at alpha 1
    w = init.initializer(init.InitSpec(1.5, "fan_in", "identity"), 1.7)(jax.random.key(3), (64, 64))
    assert float(jnp.mean(w**2)) == pytest.approx(1.7 * 1.5 / 64, rel=1e-5)
    with pytest.raises(ConfigError, match="'identity' needs a square kernel"):
        init.initializer(init.InitSpec(1.0, "fan_in", "identity"))(jax.random.key(0), (32, 64))


def test_fans_count_the_receptive_field():
    assert init.fans((100, 10)) == (100, 10)
    assert init.fans((5, 3, 8)) == (15, 40)
    assert init.fans((3, 3, 16, 32)) == (144, 288)


@pytest.mark.parametrize(
    ("preset", "reference"),
    [
        (init.xavier("truncated_normal"), jax.nn.initializers.glorot_normal()),
        (init.he("truncated_normal"), jax.nn.initializers.he_normal()),
        (init.lecun("truncated_normal"), jax.nn.initializers.lecun_normal()),
        (init.xavier("uniform"), jax.nn.initializers.glorot_uniform()),
        (init.he("uniform"), jax.nn.initializers.he_uniform()),
    ],
)
def test_presets_match_jax_initializers(preset, reference):
    shape = (3, 3, 64, 96)
    ours = init.initializer(preset)(jax.random.key(1), shape)
    theirs = reference(jax.random.key(2), shape)
    target = init.variance(preset, shape)
    assert abs(float(jnp.var(theirs)) / target - 1) < _bound(theirs.size)
    assert abs(float(jnp.var(ours)) / target - 1) < _bound(ours.size)


def test_preset_constants():
    shape = (300, 100)
    assert init.variance(init.xavier(), shape) == pytest.approx(2 / 400)
    assert init.variance(init.he(), shape) == pytest.approx(2 / 300)
    assert init.variance(init.lecun(), shape) == pytest.approx(1 / 300)
    assert init.variance(init.leaky_he(0.2), shape) == pytest.approx(2 / (1.04 * 300))
    assert init.variance(init.fixed(0.01), shape) == pytest.approx(1e-4)
    assert init.variance(init.fixed(0.01), (7, 7, 3, 3)) == pytest.approx(1e-4)
    assert init.preset("leaky_he:0.2") == init.leaky_he(0.2)
    assert init.preset("fixed:0.05").scale == pytest.approx(0.0025)


def test_alpha_is_traced_and_never_recompiles():
    traces = []

    @jax.jit
    def draw(alpha):
        traces.append(1)
        return init.initializer(init.he(), alpha)(jax.random.key(0), (128, 128))

    small, large = draw(jnp.float32(0.5)), draw(jnp.float32(8.0))
    assert len(traces) == 1
    # Same key, scale family: the draws differ by exactly sqrt(8 / 0.5) = 4.
    assert jnp.allclose(large, 4.0 * small, rtol=1e-6)


def test_orthogonal_square_kernel_is_a_scaled_rotation():
    w = init.initializer(init.InitSpec(1.0, "fan_in", "orthogonal"), 2.0)(jax.random.key(3), (64, 64))
    assert jnp.allclose(w.T @ w, 2.0 * jnp.eye(64), atol=1e-4)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: init.InitSpec(1.0, "fan_sideways"), "init.mode"),
        (lambda: init.InitSpec(1.0, "fan_in", "cauchy"), "init.distribution"),
        (lambda: init.InitSpec(-1.0), "init.scale"),
        (lambda: init.initializer(init.he(), -2.0), "alpha"),
        (lambda: init.initializer(init.he(), 0.0), "alpha"),
        (lambda: init.preset("glorot"), "init preset"),
        (lambda: init.fixed(0.0), "std"),
        (lambda: init.from_config({"preset": "he", "mode": "fan_out"}), "preset"),
    ],
)
def test_bad_init_settings_name_the_field(make, field):
    with pytest.raises(ConfigError, match=field):
        make()
