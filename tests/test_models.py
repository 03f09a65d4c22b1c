"""Models built from configs: shapes, which layers alpha touches, and clear errors."""

import math

import jax
import jax.numpy as jnp
import pytest

from research import models
from research.errors import ConfigError


def _config(name, **overrides):
    cfg = models.default_config(name)
    cfg.update(overrides)
    return cfg


def _kernels(state):
    return {"/".join(map(str, path)): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(state)}


def test_mlp_with_unequal_widths():
    cfg = _config("mlp", depth=3, widths=(512, 64, 256), input_dim=40)
    state = models.init_state(cfg, jax.random.key(0), 1.0)
    shapes = [layer["kernel"].shape for layer in state["layers"].values()]
    assert shapes == [(40, 512), (512, 64), (64, 256)]
    logits, preacts = models.apply(models.graphdef(cfg), state, jnp.ones((5, 40)))
    assert logits.shape == (5, 10) and [p.shape[-1] for p in preacts] == [512, 64, 256]
    assert models.count_params(state) == 40 * 512 + 512 + 512 * 64 + 64 + 64 * 256 + 256 + 256 * 10 + 10


def test_alpha_scales_hidden_layers_but_not_the_readout():
    cfg = _config("mlp", depth=4, width=256, input_dim=256)
    a = models.init_state(cfg, jax.random.key(0), 1.0)
    b = models.init_state(cfg, jax.random.key(0), 4.0)
    assert jnp.allclose(b["layers"][2]["kernel"], 2.0 * a["layers"][2]["kernel"])
    assert jnp.array_equal(a["readout"]["kernel"], b["readout"]["kernel"])
    # Readout is LeCun: Var = 1 / fan_in = 1 / 256.
    var = float(jnp.var(a["readout"]["kernel"]))
    assert abs(var * 256 - 1) < 5 * math.sqrt(2 / 2560)


def test_biases_are_zero_unless_sigma_b_is_set():
    zero = models.init_state(_config("mlp", depth=2, width=512), jax.random.key(0), 1.0)
    assert float(jnp.abs(zero["layers"][0]["bias"]).max()) == 0.0
    noisy = models.init_state(_config("mlp", depth=2, width=4096, sigma_b=0.3), jax.random.key(0), 1.0)
    assert abs(float(jnp.var(noisy["layers"][0]["bias"])) / 0.09 - 1) < 5 * math.sqrt(2 / 4096)


@pytest.mark.parametrize(("shape", "stride", "spatial"), [((40, 1), 1, (40,)), ((8, 8, 3), 2, (4, 4))])
def test_cnn_1d_and_2d(shape, stride, spatial):
    cfg = _config("cnn", input_shape=shape, depth=1, channels=16, kernel_size=3, stride=stride)
    state = models.init_state(cfg, jax.random.key(0), 2.0)
    kernel = state["layers"][0]["kernel"]
    assert kernel.shape == (3,) * len(spatial) + (shape[-1], 16)
    logits, preacts = models.apply(models.graphdef(cfg), state, jnp.ones((2, *shape)))
    assert logits.shape == (2, 10) and preacts[0].shape == (2, *spatial, 16)


def test_rnn_input_and_recurrent_kernels_take_their_own_alpha():
    cfg = _config("rnn", hidden=512, input_dim=512)
    state = models.init_state(cfg, jax.random.key(0), {"input": 0.5, "recurrent": 3.0})
    bound = 5 * math.sqrt(2 / 512**2)
    assert abs(float(jnp.var(state["input"]["kernel"])) * 512 / 0.5 - 1) < bound
    assert abs(float(jnp.var(state["recurrent"]["kernel"])) * 512 / 3.0 - 1) < bound
    logits, steps = models.apply(models.graphdef(cfg), state, jnp.ones((3, 7, 512)))
    assert logits.shape == (3, 10) and len(steps) == 7


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cells_run_with_both_inits(cell):
    cfg = _config("rnn", cell=cell, hidden=32)
    state = models.init_state(cfg, jax.random.key(0), {"input": 1.0, "recurrent": 1.0})
    logits, steps = models.apply(models.graphdef(cfg), state, jnp.ones((2, 5, 1)))
    assert logits.shape == (2, 10) and len(steps) == 5 and jnp.all(jnp.isfinite(logits))


def test_init_state_vmaps_over_alpha_and_key():
    cfg = _config("mlp", depth=2, width=64)
    alphas = jnp.array([0.5, 2.0])
    states = jax.vmap(lambda k, a: models.init_state(cfg, k, a))(jax.random.split(jax.random.key(0), 2), alphas)
    assert states["layers"][0]["kernel"].shape == (2, 40, 64)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"depth": 0}, "model.depth"),
        ({"depth": 3, "widths": (64, 64)}, "model.widths"),
        ({"activation": "swish"}, "activation"),
        ({"sigma_b": -0.1}, "model.sigma_b"),
        ({"init": {"scale": 1.0, "mode": "fan_up", "distribution": "normal"}}, "init.mode"),
    ],
)
def test_bad_model_settings_name_the_field(overrides, field):
    cfg = models.default_config("mlp")
    for key, value in overrides.items():
        cfg[key] = value
    with pytest.raises(ConfigError, match=field):
        models.validate(cfg)


def test_unknown_model_and_cell():
    with pytest.raises(ConfigError, match="model.name must be one of cnn, mlp, module, resmlp, rnn, transformer"):
        models.default_config("vit")
    with pytest.raises(ConfigError, match="model.cell"):
        models.validate(_config("rnn", cell="lru"))
