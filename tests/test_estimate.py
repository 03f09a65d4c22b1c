"""alpha* estimation on synthetic objectives with a known minimiser, and the report files."""

import json
import math

import numpy as np
import pytest

from research import estimate, experiment, report, search, train
from tests import helpers


def _draw(rng, trials=30, seeds=3, noise=0.05, optimum=2.0, lo=0.5, hi=8.0):
    alphas = np.exp(rng.uniform(math.log(lo), math.log(hi), trials))
    x = np.repeat(np.log(alphas), seeds)
    y = (x - math.log(optimum)) ** 2 + noise * rng.normal(size=x.size)
    return estimate.Observations(x, y, np.repeat(np.arange(trials), seeds))


@pytest.mark.slow
def test_interval_coverage_is_close_to_nominal():
    # 60 independent studies; a 95% interval should cover the true optimum in about 57.
    # Binomial(60, 0.95) is >= 51 with probability > 0.999; the percentile bootstrap of a
    # smoothed minimiser is slightly conservative, so we also allow full coverage.
    rng = np.random.default_rng(0)
    covered, errors = 0, []
    for _ in range(60):
        est = estimate.estimate(
            _draw(rng), {"he": 2.0}, alpha_range=(0.5, 8.0), n_boot=200, seed=int(rng.integers(1 << 30))
        )
        assert est.status == "ok"
        covered += est.interval[0] <= 2.0 <= est.interval[1]
        errors.append(abs(est.alpha / 2.0 - 1))
    assert covered >= 51
    assert np.median(errors) < 0.1


def test_verdicts_name_the_supported_theory():
    est = estimate.estimate(_draw(np.random.default_rng(1), trials=40), {"he": 2.0, "xavier": 1.0, "gain": None})
    by = {c.theory: c for c in est.comparisons}
    assert by["he"].verdict == "supported" and by["he"].covered
    assert by["xavier"].verdict == "refuted" and by["xavier"].relative_error == pytest.approx(1.0 / est.alpha - 1)
    assert by["gain"].verdict == "no prediction"
    assert est.band[0] <= est.alpha <= est.band[1]


def test_too_few_trials_says_so():
    est = estimate.estimate(_draw(np.random.default_rng(2), trials=4), {"he": 2.0})
    assert est.status == "too few trials" and est.alpha is None and est.comparisons[0].verdict == "too few trials"


def test_a_flat_objective_is_reported_flat_not_as_an_optimum():
    rng = np.random.default_rng(3)
    obs = _draw(rng)
    flat = estimate.Observations(obs.log_alpha, 0.3 + 0.05 * rng.normal(size=obs.value.size), obs.trial)
    assert estimate.estimate(flat, {"he": 2.0}).status == "flat"


def test_optimum_beyond_the_range_is_an_edge():
    obs = _draw(np.random.default_rng(4), optimum=20.0)
    assert estimate.estimate(obs, {"he": 2.0}, alpha_range=(0.5, 8.0)).status == "edge"


def test_diverged_seeds_are_left_out_and_reported():
    class Trial:
        def __init__(self, alpha, values, diverged):
            self.state = type("S", (), {"name": "COMPLETE"})()
            self.params, self.value = {"alpha": alpha}, float(np.mean(values))
            self.user_attrs = {"seed_values": values, "diverged": diverged}

    rng = np.random.default_rng(5)
    trials = []
    for alpha in np.geomspace(0.5, 8.0, 24):
        bad = alpha > 4.0
        values = [10.0] * 3 if bad else list((math.log(alpha / 2)) ** 2 + 0.03 * rng.normal(size=3))
        trials.append(Trial(float(alpha), values, [bad] * 3))
    obs = estimate.from_trials(trials)
    assert obs.value.max() < 5 and obs.diverged_alpha.size == 3 * sum(a > 4 for a in np.geomspace(0.5, 8.0, 24))
    est = estimate.estimate(obs, {"he": 2.0}, alpha_range=(0.5, 8.0))
    assert est.diverged_above > 4.0 and est.fit_alpha.max() <= est.diverged_above
    assert abs(est.alpha / 2 - 1) < 0.15


def test_profile_over_a_jointly_searched_learning_rate():
    rng = np.random.default_rng(6)
    n = 60
    la = rng.uniform(math.log(0.5), math.log(8.0), n)
    llr = rng.uniform(math.log(1e-3), math.log(1e-1), n)
    coupled = llr - math.log(0.01) + 0.5 * (la - math.log(2.0))  # the best lr moves with alpha
    x, lr = np.repeat(la, 2), np.repeat(llr, 2)
    y = np.repeat((la - math.log(2.0)) ** 2 + 0.5 * coupled**2, 2) + 0.03 * rng.normal(size=2 * n)
    est = estimate.estimate(estimate.Observations(x, y, np.repeat(np.arange(n), 2), lr), {"he": 2.0})
    assert abs(est.alpha / 2 - 1) < 0.2


@pytest.mark.slow
def test_report_files_from_a_tiny_study(tmp_path, data_root):
    overrides = [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}", "search.objective='forward_log_ratio'",
                 "search.trials=12", "search.trials_per_batch=6", "model.depth=8", "model.width=64"]  # fmt: skip
    cfg = experiment.load(helpers.TINY, "quick", overrides)
    url = str(tmp_path / "studies.journal")
    search.Worker(cfg, url, echo=lambda _: None).run()
    path = report.write(url, tmp_path / "report")
    rows = json.loads((tmp_path / "report" / "report.json").read_text())
    assert len(rows) == 1 and rows[0]["experiment"] == "tiny-quick-forward_log_ratio" and rows[0]["trials"] == 12
    assert abs(rows[0]["alpha_star"] / 2 - 1) < 0.15  # ReLU forward signal: He
    assert "tiny-quick-forward_log_ratio" in path.read_text()
    assert r"\begin{tabular}" in (tmp_path / "report" / "report.tex").read_text()
    for stem in ("tiny-quick-forward_log_ratio-objective", "tiny-quick-forward_log_ratio-depth"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "report" / "figures" / f"{stem}.{ext}").stat().st_size > 1000


@pytest.mark.slow
def test_report_draws_stored_training_curves_and_trains_nothing(tmp_path, data_root, monkeypatch):
    overrides = [
        f"search.runs_dir={tmp_path}",
        f"data.data_dir={data_root}",
        "search.trials=8",
        "search.trials_per_batch=4",
    ]
    url = str(tmp_path / "studies.journal")
    search.Worker(experiment.load(helpers.TINY, "quick", overrides), url, echo=lambda _: None).run()

    def no_training(*args, **kwargs):
        raise AssertionError("the report trained a model")

    monkeypatch.setattr(train, "Trainer", no_training)
    report.write(url, tmp_path / "report")
    row = json.loads((tmp_path / "report" / "report.json").read_text())[0]
    assert row["objective"] == "train_loss" and row["trials"] == 8 and row["alpha_star"] is not None
    assert (tmp_path / "report" / "figures" / "tiny-quick-train_loss-curves.png").stat().st_size > 1000
