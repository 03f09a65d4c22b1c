"""The advisor's per-layer recommendations and LSUV's data-dependent scales."""

import math
import os

import jax
import numpy as np
import pytest

from research import advise, experiment, lsuv, models
from research.cli import main
from tests import helpers


def test_relu_mlp_gets_he_and_a_lecun_readout():
    cfg = experiment.load(os.path.join(helpers.EXPERIMENTS, "he_relu_mlp.py"))
    rows = {r["layer"]: r for r in advise.advise(cfg)["layers"]}
    assert rows["layers/5"]["alpha"] == pytest.approx(2.0, abs=1e-6)
    assert rows["layers/5"]["std"] == pytest.approx(math.sqrt(2 / 128), rel=1e-6)
    assert rows["readout"]["alpha"] == 1.0 and "LeCun" in rows["readout"]["source"]


def test_tanh_mlp_gets_the_forward_rule_and_rnn_recurrence_the_edge_of_chaos():
    tanh = experiment.load(os.path.join(helpers.EXPERIMENTS, "xavier_tanh_mlp.py"))
    advice = advise.advise(tanh)
    # fan_avg: Glorot's compromise between forward (2.54) and backward (2.15).
    assert advice["layers"][3]["alpha"] == pytest.approx(advice["theory"]["second_moment"])
    assert 2.15 < advice["layers"][3]["alpha"] < 2.54
    rnn = {
        r["layer"]: r
        for r in advise.advise(experiment.load(os.path.join(helpers.EXPERIMENTS, "tanh_rnn.py")))["layers"]
    }
    assert rnn["recurrent"]["alpha"] == pytest.approx(1.0, abs=1e-6)


def test_advise_command_prints_a_table(capsys):
    assert (
        main(
            [
                "advise",
                "--config",
                os.path.join(helpers.EXPERIMENTS, "he_relu_mlp.py"),
                "--storage",
                "/nonexistent/x.journal",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| layers/0" in out and "he (2)" in out


def test_lsuv_finds_he_for_relu_after_the_first_layer():
    cfg = models.default_config("mlp")
    cfg.update({"activation": "relu", "depth": 10, "width": 256, "input_dim": 256})
    x = jax.random.normal(jax.random.key(0), (1024, 256))
    found = lsuv.scales(cfg, x, jax.random.key(1))
    assert found[0] == pytest.approx(1.0, abs=0.12)  # unit-variance inputs, no activation before
    assert np.median(found[1:]) == pytest.approx(2.0, rel=0.15)
