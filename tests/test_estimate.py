"""alpha* estimation and verdicts: synthetic studies with a known optimum, coverage on realistic
simulated ones (tests/simulated.py), and the report files."""

import json
import math
import types

import numpy as np
import pytest

from research import (
    crossing,
    estimate,
    experiment,
    figures,
    finite_width,
    objectives,
    predictions,
    render,
    report,
    train,
    verdicts,
)
from research.worker import Worker
from tests import helpers
from tests.simulated import SCENARIOS


def _quadratic(rng, trials=30, seeds=4, noise=0.05, optimum=2.0, lo=0.5, hi=8.0, shift=0.0):
    x = np.sort(rng.uniform(math.log(lo), math.log(hi), trials))
    centre = math.log(optimum) + shift * rng.normal(size=seeds)
    values = (x[:, None] - centre[None, :]) ** 2 + noise * rng.normal(size=(trials, seeds))
    return estimate.Observations(x, values, None, np.zeros_like(values, bool))


@pytest.mark.slow
def test_interval_coverage_on_realistic_simulated_studies():
    # 600 simulated studies (200 per scenario: an asymmetric trained curve with per-seed shifts of
    # optimum and level, one that ends at a seed-dependent divergence cliff, and a probe's zero
    # crossing). Binomial(600, 0.95) lies in [0.93, 0.97] with probability 0.99.
    covered, called_different, total = 0, 0, 0
    for k, scenario in enumerate(SCENARIOS.values()):
        rng = np.random.default_rng(100 + k)
        rope = 0.02 if scenario.signed else 0.10
        hits = 0
        for r in range(200):
            obs = scenario.draw(rng)
            est = (crossing.locate(obs, n_boot=100, seed=r) if scenario.signed
                   else estimate.estimate(obs, alpha_range=scenario.alpha_range, n_boot=100, seed=r))  # fmt: skip
            assert est.alpha is not None
            lo, hi = est.interval(0.95)
            hits += lo <= scenario.truth <= hi
            verdict = verdicts.equivalence(math.log(est.alpha / scenario.truth), est.se, est.df, rope, 0.90)
            called_different += verdict == "different"
        assert hits / 200 >= 0.90, (scenario.name, hits)
        covered, total = covered + hits, total + 200
    assert 0.92 <= covered / total <= 0.98
    assert called_different / total <= 0.05


def test_optimum_of_a_noisy_quadratic():
    est = estimate.estimate(_quadratic(np.random.default_rng(0)), alpha_range=(0.5, 8.0))
    lo, hi = est.interval()
    assert est.status == "ok" and lo < 2.0 < hi and abs(est.alpha / 2 - 1) < 0.05
    assert est.df == 3 and est.variance_scale == pytest.approx(math.sqrt(4 / 3))


def test_seed_shifts_widen_the_interval():
    rng = np.random.default_rng(1)
    still = estimate.estimate(_quadratic(rng, noise=0.01), alpha_range=(0.5, 8.0))
    shifted = estimate.estimate(_quadratic(rng, noise=0.01, shift=0.1), alpha_range=(0.5, 8.0))
    assert shifted.se > 3 * still.se


def test_too_few_trials_says_so():
    est = estimate.estimate(_quadratic(np.random.default_rng(2), trials=4))
    assert est.status == "too few trials" and est.alpha is None and est.interval() is None
    v = verdicts.judge(est, [("he", 2.0)], 0.1, 0.9, 0.1, trained=True)
    assert v[0].verdict == "inconclusive"


def test_a_flat_objective_is_reported_flat_and_inconclusive():
    rng = np.random.default_rng(3)
    obs = _quadratic(rng)
    flat = estimate.Observations(obs.log_alpha, 0.3 + 0.05 * rng.normal(size=obs.values.shape))
    est = estimate.estimate(flat)
    assert est.status == "flat"
    assert verdicts.judge(est, [("he", 2.0)], 0.1, 0.9, 0.1, trained=False)[0].verdict == "inconclusive"


def test_optimum_beyond_the_range_is_an_edge():
    est = estimate.estimate(_quadratic(np.random.default_rng(4), optimum=20.0), alpha_range=(0.5, 8.0))
    assert est.status == "edge"


def _trial(alpha, values, diverged, seeds=None):
    state = types.SimpleNamespace(name="COMPLETE")
    attrs = {"seed_values": values, "diverged": diverged, "seeds": seeds or list(range(len(values)))}
    return types.SimpleNamespace(state=state, params={"alpha": alpha}, value=float(np.mean(values)), user_attrs=attrs)


def test_a_diverged_seed_is_a_bounded_outcome_not_a_truncation():
    # One unlucky seed diverges at alpha 3; the others carry on to the cliff at 5. The fit spans
    # the whole range, alpha* stays at 2, and the divergence edge is estimated between 3 and 6.
    rng = np.random.default_rng(5)
    chance = math.log(10)
    trials = []
    for alpha in np.geomspace(0.5, 8.0, 32):
        diverged = [bool(alpha > 5.0), bool(alpha > 5.0), bool(alpha > 5.0), bool(alpha > 3.0)]
        healthy = np.minimum(np.exp(4 * math.log(alpha / 2) ** 2 - 3 + 0.05 * rng.normal(size=4)), chance)
        values = [chance if d else float(h) for d, h in zip(diverged, healthy, strict=True)]  # stuck: chance
        trials.append(_trial(float(alpha), values, diverged))
    obs = estimate.from_trials(trials, objectives.get("train_loss"))
    assert obs.values.shape == (32, 4) and np.isfinite(obs.values).all() and obs.shared_seeds
    assert np.nanmax(obs.values) == pytest.approx(math.log(chance))
    est = estimate.estimate(obs, alpha_range=(0.5, 8.0))
    lo, hi = est.interval()
    assert est.fit_alpha.max() == pytest.approx(8.0) and abs(est.alpha / 2 - 1) < 0.1 and lo < 2 < hi
    centre, lo, hi = est.divergence_edge
    assert 3.0 < centre < 6.0 and lo <= centre <= hi


def test_equivalence_reads_the_interval_against_the_region():
    # log(1.02) = 0.0198: the region around the prediction for a 2% ROPE.
    assert verdicts.equivalence(0.005, 0.004, math.inf, 0.02, 0.90) == "equivalent"
    assert verdicts.equivalence(0.005, 0.02, math.inf, 0.02, 0.90) == "inconclusive"  # wide: proves nothing
    assert verdicts.equivalence(0.10, 0.02, math.inf, 0.02, 0.90) == "different"
    assert verdicts.equivalence(-0.10, 0.02, math.inf, 0.02, 0.90) == "different"
    assert verdicts.equivalence(0.005, 0.007, math.inf, 0.02, 0.90) == "equivalent"  # 1.645 se
    assert verdicts.equivalence(0.005, 0.007, 3, 0.02, 0.90) == "inconclusive"  # t on 3 df: 2.35 se


def test_regret_separates_near_optimal_from_costly():
    est = estimate.estimate(_quadratic(np.random.default_rng(7), noise=0.01), alpha_range=(0.5, 8.0))
    near, far, outside = verdicts.judge(est, [("a", 2.05), ("b", 4.0), ("c", 20.0)], 0.1, 0.9, 0.1, trained=True)
    assert near.regret_verdict == "near-optimal" and near.regret < 0.01
    assert far.regret_verdict == "costly" and far.regret == pytest.approx(math.expm1(math.log(2) ** 2), rel=0.1)
    assert outside.regret is None and outside.regret_verdict == "outside the searched range"
    assert far.verdict == "different" and near.relative_error == pytest.approx(est.alpha / 2.05 - 1)


def test_profile_over_a_jointly_searched_learning_rate():
    rng = np.random.default_rng(6)
    n = 60
    la = rng.uniform(math.log(0.5), math.log(8.0), n)
    llr = rng.uniform(math.log(1e-3), math.log(1e-1), n)
    coupled = llr - math.log(0.01) + 0.5 * (la - math.log(2.0))  # the best lr moves with alpha
    y = ((la - math.log(2.0)) ** 2 + 0.5 * coupled**2)[:, None] + 0.03 * rng.normal(size=(n, 2))
    est = estimate.estimate(estimate.Observations(la, y, llr))
    assert abs(est.alpha / 2 - 1) < 0.2


def test_lr_star_follows_the_slope_of_a_grid_design():
    """lr*(alpha) = 0.01 (alpha / 2)^-1.5 on a 9 x 7 (alpha, lr) grid, four shared seeds with
    their own offsets: the profile finds alpha* = 2 and the slope, with an interval holding it."""
    rng = np.random.default_rng(8)
    la, llr = (g.ravel() for g in np.meshgrid(np.log(np.geomspace(0.5, 8, 9)), np.log(np.geomspace(1e-3, 1, 7))))
    gap = llr - (math.log(0.01) - 1.5 * (la - math.log(2.0)))
    y = ((la - math.log(2.0)) ** 2 + 0.3 * gap**2)[:, None] + 0.05 * rng.normal(size=(len(la), 4))
    est = estimate.estimate(estimate.Observations(la, y + 0.02 * rng.normal(size=4), llr))
    slope, lo, hi = est.lr_slope()
    assert abs(est.alpha / 2 - 1) < 0.15 and abs(slope + 1.5) < 0.35 and lo < -1.5 < hi
    assert est.lr_range == pytest.approx((1e-3, 1.0))


def test_homogeneity_predicts_the_slope_of_lr_star():
    relu = experiment.load(helpers.TINY, "quick", ["model.depth=12", "train.optimizer='momentum'"])
    # L = 12 searched layers: -(L - 2) / 2 for the relative step, -(L - 1) for the stability edge
    assert predictions.lr_slopes(relu) == {"relative step": -5.0, "stability edge": -11.0}
    adam = predictions.lr_slopes(experiment.derive(relu, {"train.optimizer": "adam"}))
    assert adam == {"relative step": 0.5, "stability edge": -5.5}
    assert predictions.lr_slopes(experiment.derive(relu, {"model.activation": "tanh"})) is None
    assert predictions.lr_slopes(experiment.derive(relu, {"model.sigma_b": 0.1})) is None


def test_the_rule_is_read_from_the_stored_config():
    cfg = experiment.load(helpers.TINY, "quick", ["verdict.rope.train_loss=0.05", "verdict.regret_tolerance=0.2"])
    assert verdicts.rule(cfg) == (0.05, 0.2, 0.9)
    probe = experiment.derive(cfg, {"search.objective": "forward_log_ratio"})
    assert verdicts.rule(probe)[0] == 0.02


@pytest.mark.slow
def test_report_files_from_a_tiny_study(tmp_path, data_root):
    overrides = [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}", "search.objective='forward_log_ratio'",
                 "search.trials=12", "search.trials_per_batch=6", "model.depth=8", "model.width=64"]  # fmt: skip
    cfg = experiment.load(helpers.TINY, "quick", overrides)
    url = str(tmp_path / "studies.journal")
    Worker(cfg, url, echo=lambda _: None).run()
    path = report.write(url, tmp_path / "report")
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["studies"]
    est = rows[0]["estimate"]
    assert len(rows) == 1 and rows[0]["experiment"] == "tiny-quick-forward_log_ratio" and est["n_trials"] == 12
    assert abs(est["alpha"] / 2 - 1) < 0.15  # ReLU forward signal: He
    # as run at 64 units: He's 2 moved up by its finite width (finite_width.py), about 2%
    as_run = rows[0]["verdicts"][0]
    assert as_run["theories"] == "as run" and as_run["alpha"] == pytest.approx(2.0 * math.exp(finite_width.shift(cfg)))
    assert 2.02 < as_run["alpha"] < 2.06
    assert rows[0]["verdicts"][0]["verdict"] in verdicts.VERDICTS
    assert "tiny-quick-forward_log_ratio" in path.read_text()
    tex = (tmp_path / "report" / "report.tex").read_text()
    assert r"\begin{table*}" in tex and r"\caption{" in tex and r"\label{tab:init-scale-probe}" in tex
    assert r"\textbf{tiny-quick-forward\_log\_ratio}: forward\_log\_ratio (ROPE $\pm$2\%)" in tex
    assert r"12 trials $\times$ 8 seeds" in tex
    whole = json.loads((tmp_path / "report" / "report.json").read_text(), parse_constant=_no_constant)
    assert whole["provenance"]["packages"]["jax"] and whole["provenance"]["device"]
    assert len(rows[0]["observations"]["alpha"]) == 12 and len(rows[0]["observations"]["values"][0]) == 8
    assert rows[0]["config"]["model"]["depth"] == 8 and (rows[0]["trials"], rows[0]["seeds"]) == (12, 8)
    for stem in ("tiny-quick-forward_log_ratio-objective", "tiny-quick-forward_log_ratio-depth"):
        for ext in ("png", "pdf", "svg"):
            assert (tmp_path / "report" / "figures" / f"{stem}.{ext}").stat().st_size > 1000
        pdf = (tmp_path / "report" / "figures" / f"{stem}.pdf").read_bytes()
        assert b"/CIDFontType2" in pdf and b"/Type3" not in pdf  # TrueType glyphs; venues reject Type 3 fonts


def _no_constant(name):
    raise AssertionError(f"report.json holds {name}, which strict JSON forbids")


def test_latex_escapes_every_special_character_and_fixes_decimals():
    assert render.latex_escape(r"a_b & 5% $x$ #1 {y} ~^\ ±") == (
        r"a\_b \& 5\% \$x\$ \#1 \{y\} \textasciitilde{}\textasciicircum{}\textbackslash{} $\pm$"
    )
    est = {"alpha": 1.5, "interval": (1.2345678, 2.0), "status": "ok", "warnings": ()}
    verdict = {"theories": "he", "alpha": 2.0, "relative_error": -0.25, "error_interval": (-0.4, 0.0),
               "verdict": "different", "regret": None, "regret_verdict": None}  # fmt: skip
    row = {"experiment": "x_y", "objective": "train_loss", "rope": 0.1, "estimate": est, "verdicts": [verdict],
           "arms": [], "trials": 24, "seeds": 3}  # fmt: skip
    tex = render.latex([row])
    assert r"\textbf{x\_y}: train\_loss (ROPE $\pm$10\%), $\alpha^*$ = 1.500 [1.235, 2.000], 24 trials" in tex
    (line,) = [ln for ln in tex.splitlines() if ln.startswith("he &")]
    assert line.startswith("he & 2.000 & -25.0\\% [-40.0\\%, +0.0\\%] & different &")
    assert r"\label{tab:init-scale-trained}" in tex and "probe" not in tex  # one table per kind present
    picked = render.latex([row], columns=["prediction", "verdict"])
    assert "he & different \\\\" in picked and "2.000 &" not in picked
    assert render.latex([row], studies=["another"]) == ""


@pytest.mark.slow
def test_report_draws_stored_training_curves_and_trains_nothing(tmp_path, data_root, monkeypatch):
    overrides = [
        f"search.runs_dir={tmp_path}",
        f"data.data_dir={data_root}",
        "search.trials=8",
        "search.trials_per_batch=4",
    ]
    url = str(tmp_path / "studies.journal")
    Worker(experiment.load(helpers.TINY, "quick", overrides), url, echo=lambda _: None).run()

    def no_training(*args, **kwargs):
        raise AssertionError("the report trained a model")

    monkeypatch.setattr(train, "Trainer", no_training)
    report.write(url, tmp_path / "report")
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["studies"]
    row = rows[0]
    assert row["objective"] == "train_loss" and row["estimate"]["n_trials"] == 8 and row["estimate"]["alpha"]
    assert row["verdicts"][0]["regret_verdict"] in ("near-optimal", "costly", "inconclusive")
    # The same trials judged on the other registered objectives, read off their stored curves.
    assert [r["objective"] for r in rows] == ["train_loss", "val_loss_early_stopped", "val_error_early_stopped"]
    assert all(r["estimate"]["n_trials"] == 8 and r["experiment"] == row["experiment"] for r in rows)
    figures = tmp_path / "report" / "figures"
    for stem in ("tiny-quick-train_loss-curves", "tiny-quick-train_loss-objective-val_loss_early_stopped"):
        assert (figures / f"{stem}.png").stat().st_size > 1000


def test_a_quantised_objective_never_gets_a_zero_width_interval():
    """Steps to a threshold come in whole chunks: a plateau of equal values at the optimum can make
    every resample agree exactly; the interval then spans the design's resolution, not zero."""
    la = np.repeat(np.log(np.geomspace(0.5, 8, 9)), 1)
    steps = np.array([2000, 900, 500, 300, 200, 300, 500, 900, 2000], float)  # identical for every seed
    est = estimate.estimate(estimate.Observations(la, np.log(np.tile(steps[:, None], (1, 4)))))
    spacing = np.log(2.0) / 2  # the grid's step in log alpha
    assert est.alpha == pytest.approx(2.0, rel=0.05) and est.se >= spacing / math.sqrt(12) - 1e-12
    assert any("design's resolution" in w for w in est.warnings)


def test_coincident_predictions_share_one_line_and_label():
    v = lambda theories, alpha, verdict: verdicts.Verdict(theories, alpha, None, None, verdict)  # noqa: E731
    lines = figures.prediction_lines([v("as run", 2.0000001, "equivalent"), v("he = forward", 2.0, "inconclusive"),
                                     v("xavier", 1.0, "different")])  # fmt: skip
    assert lines == [(2.0, "2 (as run: equivalent; he = forward: inconclusive)"), (1.0, "1 (xavier: different)")]


def test_an_lr_slope_from_a_sliver_of_alphas_or_pinned_by_the_design_is_none():
    alpha = np.geomspace(0.5, 4.0, 200)
    lr = np.full(200, 0.001)  # on the grid's lower end (censored) ...
    lr[100:104] = np.geomspace(0.02, 0.002, 4)  # ... except a jump across 4 neighbouring points
    assert math.isnan(estimate._slope(alpha, lr, (1e-3, 3e-2)))  # this gave about -98
    lr[40:160] = 0.01 * (alpha[40:160] / 1.4) ** -1.0  # inside for 60% of the range
    assert estimate._slope(alpha, lr, (1e-3, 3e-2)) == pytest.approx(-1.0, abs=0.05)
