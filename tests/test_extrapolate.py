"""Series of probe studies (over width, or over the probe input scale) and their extrapolation."""

import json
import math

import numpy as np
import pytest

from research import cli, estimate, experiment, extrapolate, models, report, studies, sweep, verdicts
from research.errors import ConfigError
from tests import helpers


def test_weighted_fit_recovers_intercept_and_slope_exactly():
    widths = np.array([64, 128, 256, 512])
    a, se_a, b, se_b = extrapolate.fit(1 / widths, math.log(2.0) + 1.5 / widths, [0.01, 0.007, 0.005, 0.0035])
    assert math.exp(a) == pytest.approx(2.0, rel=1e-12) and b == pytest.approx(1.5, rel=1e-9)
    # Four points of equal weight: se(a) from the closed form of simple linear regression.
    x = 1 / widths
    _, se_eq, _, _ = extrapolate.fit(x, np.zeros(4), [0.01] * 4)
    assert se_eq == pytest.approx(0.01 * math.sqrt(1 / 4 + x.mean() ** 2 / np.sum((x - x.mean()) ** 2)), rel=1e-9)


def test_series_members_are_named_by_their_value_and_run_a_fixed_grid():
    cfg = experiment.load(f"{helpers.EXPERIMENTS}/he_relu_mlp.py", "quick", ["search.objective='forward_log_ratio'"])
    members = studies.series_members(cfg)
    assert [studies.study_name(m) for m in members] == [
        f"he_relu_mlp-quick-forward_log_ratio-w{n}" for n in (64, 128, 256, 512)
    ]
    assert all(m.search.sampler == "grid" and m.search.trials == m.search.grid_points == 6 for m in members)
    assert [studies.series_x(m) for m in members] == [1 / 64, 1 / 128, 1 / 256, 1 / 512]
    trained = experiment.derive(cfg, {"search.objective": "train_loss"})
    assert not studies.in_series(trained) and studies.study_name(trained) == "he_relu_mlp-quick-train_loss"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.series.field='depth'", "search.series.field must be one of"),
        ("search.series.levels=(64,)", "needs two values or more"),
        ("search.series.levels=(64, 0)", "must be a tuple of integers > 0"),
        ("search.series.points=3", "search.series.points must be an integer from 6 to"),
        ("verdict.series_rope=2.0", "verdict.series_rope must be a relative tolerance"),
        ("verdict.rope.train_loss=0", "verdict.rope.train_loss must be a relative tolerance"),
    ],
)
def test_bad_series_and_rule_settings_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        experiment.load(helpers.TINY, "quick", [override])


@pytest.mark.slow
def test_an_input_scale_series_is_extrapolated_to_a_vanishing_input(tmp_path, data_root, capsys):
    # tanh with faint inputs: the Jacobian probe's zero moves above 1 in proportion to q1; the
    # intercept at scale -> 0 is judged against the as-run prediction there (1, the q* -> 0 edge).
    extra = ["model.activation='tanh'", "model.init.mode='fan_avg'", "model.depth=10", "model.width=64",
             "search.objectives=('jacobian_log_gain',)", "search.series.field='probe_input_scale'",
             "search.series.levels=(0.1, 0.2, 0.3)", "search.series.alpha_range=(0.8, 1.4)",
             "search.series.seeds=8", "search.probe_batch=64"]  # fmt: skip
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *extra))
    url = str(tmp_path / "s.journal")
    studies = sweep.run_all(cfg, url, 1)
    assert [s.study_name for s in studies] == [f"tiny-quick-jacobian_log_gain-s{s}" for s in ("0.1", "0.2", "0.3")]
    report.write(url, tmp_path / "report", figures=False)
    (series,) = json.loads((tmp_path / "report" / "report.json").read_text())["series"]
    assert series["axis"] == "input scale^2" and series["x"] == pytest.approx([0.01, 0.04, 0.09])
    assert series["alphas"][0] < series["alphas"][1] < series["alphas"][2] and series["slope"] > 0
    assert series["slope_sign"] == "not predicted"  # only the width drift's sign is a prediction
    assert series["verdicts"][0]["theories"] == "as run" and series["verdicts"][0]["alpha"] == pytest.approx(1.0, 1e-4)
    assert abs(series["intercept"] - 1) < 0.05
    capsys.readouterr()
    assert cli.main(["status", "--storage", url]) == 0
    status = capsys.readouterr().out
    assert "tiny-quick-jacobian_log_gain, extrapolated to input scale^2 -> 0: alpha* = " in status
    assert status.count("as run ") == 4  # three members and the intercept, each judged against theory as run


def test_a_width_series_is_judged_on_its_intercept_and_its_predicted_drift():
    cfg = experiment.load(f"{helpers.EXPERIMENTS}/he_relu_mlp.py", "quick", ["search.objective='forward_log_ratio'"])
    analyses = []
    for member in studies.series_members(cfg):
        n = models.width(member.model)
        est = estimate.Estimate("ok", 2.0 * math.exp(2.0 / n), 0.002, 63.0, 1.0, 6, 384, 1.0, np.zeros(0), np.zeros(0),
                                np.zeros((0, 0)))  # fmt: skip
        analyses.append(verdicts.Analysis(member, member.search.objective, None, est, [], [], 0.02, 1.0))
    (e,) = extrapolate.series(analyses)
    assert e.axis == "1/width" and e.intercept == pytest.approx(2.0) and e.slope == pytest.approx(2.0)
    assert e.slope_predicted == pytest.approx(1.862, abs=1e-3) and e.slope_sign == "predicted +1.86: equivalent"
    assert "check of the pipeline" in e.note
    assert [(v.theories, v.verdict) for v in e.verdicts][0] == ("as run", "equivalent")
