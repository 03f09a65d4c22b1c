"""The advisor's per-layer recommendations and LSUV's data-dependent scales."""

import math
import os

import jax
import numpy as np
import pytest

from research import advise, experiment, lsuv, models, studies, verdicts
from research.cli import main
from research.worker import Worker
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
    assert advice["layers"][3]["alpha"] == pytest.approx(advice["theory"]["forward"])
    assert 2.15 < advice["layers"][3]["alpha"] < 2.54
    rnn = {
        r["layer"]: r
        for r in advise.advise(experiment.load(os.path.join(helpers.EXPERIMENTS, "rnn_recurrent_init.py")))["layers"]
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
    assert "| layers/0" in out and "closest preset: he (2 on fan_in)" in out


@pytest.mark.parametrize(
    "experiment_file, mode, closest",
    [("xavier_tanh_mlp.py", None, "xavier (1 on fan_avg)"), ("xavier_tanh_mlp.py", "fan_in", "lecun (1 on fan_in)"),
     ("he_relu_mlp.py", "fan_avg", "none derived"), ("he_relu_mlp.py", "fixed", "none derived"),
     ("zoo.py:activation=elu", "fan_in", "lecun (1 on fan_in)"), ("he_relu_mlp.py", "fan_out", "he (2 on fan_out)")],
)  # fmt: skip
def test_the_closest_preset_is_one_derived_for_the_activation_and_fan_mode(experiment_file, mode, closest):
    overrides = [f"model.init.mode='{mode}'"] if mode else []
    cfg = experiment.load(os.path.join(helpers.EXPERIMENTS, experiment_file), "quick", overrides)
    said = advise.advise(cfg)["closest_preset"]
    assert said.startswith(closest), said


@pytest.mark.slow
def test_lsuv_finds_he_for_relu_after_the_first_layer():
    cfg = models.default_config("mlp")
    cfg.update({"activation": "relu", "depth": 10, "width": 256, "input_dim": 256})
    x = jax.random.normal(jax.random.key(0), (1024, 256))
    rows = lsuv.compare(cfg, x, jax.random.key(1))  # (layer, LSUV's alpha, theory's alpha), as the CLI prints
    found = np.array([r[1] for r in rows])
    assert found[0] == pytest.approx(1.0, abs=0.12)  # unit-variance inputs, no activation before
    assert np.median(found[1:]) == pytest.approx(2.0, rel=0.15)
    assert [r[2] for r in rows] == [1.0] + [pytest.approx(2.0, abs=1e-6)] * 9


def test_fixed_variance_is_advised_as_a_fixed_std_not_a_fan_rule():
    # Var(W) = alpha * 1e-4: He's s = 2 on 128 units is alpha 156.25, std sqrt(2/128) = 0.125.
    cfg = experiment.load(f"{helpers.EXPERIMENTS}/fixed_variance_depth.py")
    rows = {r["layer"]: r for r in advise.advise(cfg)["layers"]}
    assert rows["layers/5"]["mode"] == "fixed" and rows["layers/5"]["alpha"] == pytest.approx(156.25)
    assert rows["layers/5"]["std"] == pytest.approx(0.125, rel=1e-9)


@pytest.mark.slow
def test_advise_takes_a_real_studys_alpha_star_in_the_studys_units(tmp_path, data_root):
    # A fixed-variance study of the forward signal at 8 x 64: its zero is near He, alpha = 2/(64e-4) = 312.5.
    extra = ["model.depth=8", "model.width=64", "model.init.mode='fixed'", "model.init.scale=1e-4",
             "search.alpha_range=(30.0, 3000.0)", "search.objective='forward_log_ratio'", "search.trials=16",
             "search.trials_per_batch=8", "search.probe_seeds=4", "search.probe_batch=128"]  # fmt: skip
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *extra))
    worker = Worker(cfg, str(tmp_path / "s.journal"), echo=lambda _: None)
    assert worker.run() == 16
    advice = advise.advise(cfg, verdicts.analyse_all(studies.load(worker.study)))
    assert advice["evidence"]["alpha"] == pytest.approx(312.5, rel=0.1)
    assert advice["evidence"]["objective"] == "forward_log_ratio"  # it says which objective it took
    assert [e["objective"] for e in advice["evidence_by_objective"]] == ["forward_log_ratio"]
    hidden = [r for r in advice["layers"] if r["layer"].startswith("layers/")]
    assert all(r["source"].startswith("study alpha*") and r["mode"] == "fixed" for r in hidden)
    assert all(r["source"].endswith("for forward_log_ratio") for r in hidden)
    assert all(r["std"] == pytest.approx(math.sqrt(2 / 64), rel=0.05) for r in hidden)
