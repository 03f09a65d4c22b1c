"""The residual MLP and the pre-LN Transformer (residual.py, transformer.py): their searched layers,
their rules (predictions.RULES) and the residual MLP's as-run recursion against direct simulation."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import asrun, data, experiment, models, predictions, probes
from research.errors import ConfigError
from tests import helpers


def _resmlp(**fields):
    cfg = models.default_config("resmlp")
    cfg.update(fields)
    models.validate(cfg)
    return cfg


@pytest.mark.parametrize("norm", ["none", "layer"])
@pytest.mark.parametrize("branch", ["last", "all"])
def test_the_recursion_follows_a_simulated_residual_mlp(norm, branch):
    """Each searched layer's output second moment, per block, at three alphas: mean field as run against
    48 wide networks (512 units) on the same 64 inputs of uneven scale, within 4% (the seeds' spread of
    the mean: about 1.5%)."""
    cfg = _resmlp(depth=6, width=512, norm=norm, branch=branch)
    x = jax.random.normal(jax.random.key(3), (64, 40)) * jnp.linspace(0.5, 1.5, 64)[:, None]
    alphas = np.array([0.25, 1.0, 2.0])
    measured = np.asarray(probes.grid(cfg, {"branch": jnp.asarray(alphas)}, jnp.arange(48), x).forward).mean(axis=1)
    moment = np.asarray(jnp.mean(x**2, axis=1))
    predicted = asrun.statistics(cfg, {"branch": alphas}, moment)["forward"]
    np.testing.assert_allclose(measured, predicted, rtol=0.04)
    if norm == "none":  # the stream grows by 1 + alpha / 2 per block at He's inner layer (branch "last")
        ratio = predicted[:, -1] / predicted[:, -3 if branch == "all" else -2]  # one block's branch outputs apart
        expected = 1 + alphas / 2 if branch == "last" else 1 + alphas**2 / 4
        np.testing.assert_allclose(ratio, expected, rtol=1e-3)


def test_the_branch_rules_follow_the_depth():
    assert predictions.for_model(_resmlp(depth=16)) == pytest.approx({"forward": 2.0, "fixup": 0.125})
    assert predictions.for_model(_resmlp(depth=16, branch="all")) == pytest.approx({"forward": 2.0, "fixup": 0.5})
    tf = models.default_config("transformer")
    tf.depth = 2
    assert predictions.for_model(tf) == {"xavier": 1.0, "deepnet": 0.25}


def test_the_transformer_searches_its_output_projections():
    cfg = models.default_config("transformer")
    cfg.update({"depth": 2, "features": 32, "heads": 4})
    state = models.init_state(cfg, jax.random.key(0), {"out": 4.0})
    out = state["net"]["blocks"][1]["attention"]["out"]["kernel"][...]
    assert out.shape == (4, 8, 32)  # fan_in 32 and fan_out 32 (heads_out): Var = 4 / 32 on fan_avg
    assert float(jnp.var(out)) == pytest.approx(4.0 / 32, rel=0.1)
    query = state["net"]["blocks"][1]["attention"]["query"]["kernel"][...]
    assert float(jnp.var(query)) == pytest.approx(2.0 / 64, rel=0.1)  # Xavier kept: 2 / (32 + 32)
    x = jnp.tile(jnp.arange(12.0) % 8, (3, 1))
    logits, outputs = models.apply(models.graphdef(cfg), state, x)
    assert logits.shape == (3, 10) and len(outputs) == 4  # attention out, MLP out, per block, in call order


def test_bad_settings_of_the_families():
    with pytest.raises(ConfigError, match="model.norm must be one of"):
        _resmlp(norm="batch")
    cfg = models.default_config("transformer")
    cfg.heads = 5
    with pytest.raises(ConfigError, match=r"model.features \(32\) must be a multiple of model.heads \(5\)"):
        models.validate(cfg)
    path = os.path.join(helpers.EXPERIMENTS, "transformer_deepnet.py")
    with pytest.raises(ConfigError, match=r"^transformer_deepnet.py's depth must be an integer from 1 to \d+; got 0.$"):
        experiment.load(f"{path}:depth=0")


def test_the_sequence_task_labels_the_most_frequent_token(data_root):
    cfg = data.default_config("sequences")
    cfg.update({"data_dir": str(data_root), "normalization": "none"})
    ds = data.load(cfg)
    x, y = np.asarray(ds.x_train).astype(int), np.asarray(ds.y_train)
    counts = np.stack([np.bincount(row, minlength=8) for row in x])
    assert ds.num_outputs == 8 and x.shape[1] == 12 and x.min() == 0 and x.max() == 7
    np.testing.assert_array_equal(y, counts.argmax(axis=1))
    assert counts[np.arange(len(y)), y].min() >= math.ceil(12 / 8)
