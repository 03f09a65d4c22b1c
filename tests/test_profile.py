"""Trained optima from a ridge design (ridge.py, profile.py): the design's cells, halving, the
profile's reading of censored cells, cross-fitted regret, fragile verdicts, and coverage of the
2-D (alpha, lr) designs that actually run against the old rectangle (tests/simulated.py)."""

import math

import numpy as np
import pytest

from research import estimate, experiment, profile, ridge, studies, verdicts
from tests import helpers
from tests.simulated import SURFACES, rectangle, ridge_design

PILOTS = {"ridge_smooth": 2 ** (np.arange(-2, 5) / 2), "ridge_cliff": 2 * 2 ** (np.arange(-3, 3) / 2),
          "ridge_kinked": 2 ** (np.arange(-2, 5) / 2)}  # fmt: skip
TESTED = {"ridge_smooth": (1.0,), "ridge_cliff": (2.0,), "ridge_kinked": (1.0,)}  # Xavier, He, Xavier


def _bowl(optimum=1.7, seeds=8, noise=0.0, per_octave=4, lrs=3, rng=None, diverged=None):
    """A ridge study's cells: log loss = (log alpha - log optimum)^2 + 0.1 (log lr - ridge)^2."""
    rng = rng or np.random.default_rng(0)
    alphas = 2 ** (np.arange(-1, 7) / per_octave)
    x = np.repeat(np.log(alphas), lrs)
    y = np.tile(np.arange(lrs) - (lrs - 1) / 2, len(alphas)) * math.log(2) - 5 - 2 * x
    values = (x - math.log(optimum))[:, None] ** 2 + 0.1 * (y + 5 + 2 * x)[:, None] ** 2 - 1
    values = values + noise * rng.normal(size=(len(x), seeds))
    div = np.zeros(values.shape, bool) if diverged is None else diverged(x, y, values)
    return estimate.Observations(x, values, y, div, True)


def test_alpha_star_is_continuous_not_a_lattice():
    # Noise-free bowls whose optimum moves by 1% steps: alpha* follows each step (a lattice of the
    # design or of an evaluation grid would repeat values), within 0.5% of the truth.
    found = [math.exp(profile.analyse(_bowl(o), profile.Settings(), None, n_boot=20).profile.log_star[0])
             for o in np.geomspace(1.5, 1.9, 12)]  # fmt: skip
    assert len(set(np.round(found, 6))) == 12
    assert np.allclose(found, np.geomspace(1.5, 1.9, 12), rtol=0.005)


def test_diverged_seeds_are_censored_not_counted_at_chance():
    # At alpha 2.0 the largest-lr cell diverges in 3 of 8 seeds (recorded at chance, log 2.3): the
    # profile reads the other 5, so alpha* stays where the converged surface puts it.
    def at_chance(x, y, values):
        hit = np.isclose(np.exp(x), 2.0) & (y == y[np.isclose(np.exp(x), 2.0)].max())
        return hit[:, None] & (np.arange(values.shape[1]) < 3)[None, :]

    obs = _bowl(2.0, diverged=at_chance)
    obs.values[obs.diverged] = math.log(math.log(10))
    result = profile.analyse(obs, profile.Settings(), None, n_boot=20)
    assert math.exp(result.profile.log_star[0]) == pytest.approx(2.0, rel=0.005)
    old_way = estimate.Observations(obs.log_alpha, obs.values, obs.log_lr, np.zeros_like(obs.diverged), True)
    at_chance_star = math.exp(profile.analyse(old_way, profile.Settings(), None, n_boot=20).profile.log_star[0])
    assert abs(at_chance_star / 2.0 - 1) > 0.02  # counted at chance, the three seeds move alpha*


def test_a_cell_most_seeds_diverge_in_is_beyond_the_edge_and_flagged():
    def top_cells(x, y, values):  # the two largest lrs of every alpha diverge in 6 of 8 seeds
        top = np.array([yy >= np.sort(y[np.isclose(x, xx)])[-2] for xx, yy in zip(x, y, strict=True)])
        return top[:, None] & (np.arange(values.shape[1]) < 6)[None, :]

    obs = _bowl(1.7, lrs=4, diverged=top_cells)
    result = profile.analyse(obs, profile.Settings(), None, n_boot=20)
    assert np.all(result.profile.best_lr[0] == 1)  # the diverged cells never win, though their losses are least
    est = profile.estimate_of(obs, experiment.base_config("t").verdict.estimator, None)
    assert any("stability edge" in w for w in est.warnings)


def test_steps_never_reached_are_censored_not_twice_the_steps():
    # Steps to a threshold: at the two smallest alphas no seed reaches it (recorded as 2 x 500);
    # the profile counts them as worse than any count, the optimum stays interior.
    obs = _bowl(1.7)
    steps = np.exp(obs.values + 6.0)
    steps[obs.log_alpha < math.log(1.05)] = 1000.0
    counted = estimate.Observations(obs.log_alpha, np.log(steps), obs.log_lr, obs.diverged, True)
    result = profile.analyse(counted, profile.Settings(censored_above=math.log(500) + 1e-6), None, n_boot=20)
    assert np.all(np.isinf(result.profile.value[0][:2]))
    assert math.exp(result.profile.log_star[0]) == pytest.approx(1.7, rel=0.01)
    assert result.status == "ok"


def test_flat_and_untrainable_profiles_say_so():
    rng = np.random.default_rng(3)
    flat = _bowl(1.7, noise=0.05, rng=rng)
    flat = estimate.Observations(flat.log_alpha, -1 + 0.05 * rng.normal(size=flat.values.shape), flat.log_lr,
                                 flat.diverged, True)  # fmt: skip
    assert profile.analyse(flat, profile.Settings(), None, n_boot=100).status == "flat"
    chance = math.log(10)
    stuck = estimate.Observations(flat.log_alpha, math.log(chance) - 0.001 * rng.random(flat.values.shape),
                                  flat.log_lr, flat.diverged, True)  # fmt: skip
    assert profile.analyse(stuck, profile.Settings(), chance, n_boot=20).status == "untrainable"
    est = profile.estimate_of(stuck, experiment.base_config("t").verdict.estimator, chance, at=(1.0,))
    judged = verdicts.judge(est, [("xavier", 1.0)], 0.1, 0.9, 0.1, trained=True)
    assert judged[0].verdict == "inconclusive" and judged[0].regret is None


def test_cross_fitted_regret_has_no_winners_curse():
    # A flat truth with noise: the in-sample regret at any design alpha is positive by construction
    # (the minimum of noisy values sits below the truth); the cross-fitted one centres on 0.
    rng = np.random.default_rng(5)
    points = []
    for _ in range(20):
        obs = _bowl(1.7, noise=0.05, rng=rng)
        obs = estimate.Observations(obs.log_alpha, obs.values - (obs.log_alpha - math.log(1.7))[:, None] ** 2,
                                    obs.log_lr, obs.diverged, True)  # fmt: skip
        ((_, point, _),) = profile.analyse(obs, profile.Settings(), None, at=(2.0,), n_boot=20, n_splits=5).regrets
        points.append(point)
    assert abs(np.mean(points)) < 0.01  # noise 0.05 in log loss: an in-sample minimum sits ~0.04 low


def test_regret_of_a_costly_prediction_is_read_on_held_out_seeds():
    obs = _bowl(1.4, noise=0.02, rng=np.random.default_rng(2))
    ((_, point, se),) = profile.analyse(obs, profile.Settings(), None, at=(2.0,), n_boot=50).regrets
    truth = math.expm1(math.log(2.0 / 1.4) ** 2)  # the bowl's excess at 2 over its minimum
    assert point == pytest.approx(truth, abs=0.02) and 0 < se < 0.02


def test_a_verdict_a_variant_does_not_give_is_fragile():
    # Decisive under the primary reading, but the quadratic5 variant's alpha* is elsewhere.
    est = profile.estimate_of(_bowl(1.7, noise=0.01, rng=np.random.default_rng(1)),
                              experiment.base_config("t").verdict.estimator, None, at=(1.7,))  # fmt: skip
    moved = {**est.variants, "alpha_fit=quadratic5": estimate.Estimate(
        "ok", 2.5, est.se, est.df, est.variance_scale, est.n_trials, est.n_values, None, est.fit_alpha,
        est.fit_value, est.replicate_curves, design="ridge", regrets=est.regrets)}  # fmt: skip
    import dataclasses

    primary = verdicts.judge(est, [("he", 1.7)], 0.1, 0.9, 0.1, trained=True)[0]
    assert primary.verdict == "equivalent" and primary.fragile is None
    fragile = verdicts.judge(dataclasses.replace(est, variants=moved), [("he", 1.7)], 0.1, 0.9, 0.1, True)[0]
    assert fragile.verdict == "inconclusive"
    assert fragile.fragile.startswith("primary analysis equivalent, ")
    assert "alpha_fit=quadratic5 says different" in fragile.fragile


def test_window_holds_the_pilot_best_and_the_predictions():
    best = {0.707: (2.3, 10.0), 1.0: (1.0, 0.1), 1.414: (0.6, 0.02), 2.0: (0.5, 0.004), 2.83: (0.9, 1e-3)}
    w = ridge.window(best, 4, 7, (2.0,))
    assert len(w) == 7 and min(w) < 2.0 < max(w) and 2.0 in [round(a, 12) for a in w]
    assert np.allclose(np.diff(np.log2(w)), 0.25)
    # Xavier's 1 and a best alpha near 2: the window reaches down to 1 and keeps 2 off its end
    assert ridge.window(best, 4, 7, (1.0,)) == pytest.approx([2 ** (k / 4) for k in range(0, 7)])
    # the ridge interpolates in log-log between alphas that trained (0.707 sat at chance)
    assert ridge.ridge_at(best, 2 ** 0.75, chance=2.3) == pytest.approx(math.exp(np.interp(
        0.75 * math.log(2), np.log([1.0, 1.414, 2.0]), np.log([0.1, 0.02, 0.004]))), rel=1e-3)  # fmt: skip


def test_halving_keeps_a_run_of_cells_below_each_alphas_best_then_focuses_on_the_best_alphas():
    r = experiment.base_config("t").search.ridge
    r.unlock()
    r.update({"rungs": (1, 2), "keep": (4, 3), "keep_above": (1, 0), "focus": 5})
    lrs = [1e-3 * 2**k for k in range(7)]
    cells = [(a, lr) for a in (1.0, 2.0) for lr in lrs]
    # alpha 1: best at the 6th rate, the top one beyond the edge (NaN); alpha 2: best at the lowest
    means = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, np.nan, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    everyone = set(range(14))
    assert ridge.halved(r, 3, means, cells, everyone) == set()  # not a rung
    # rung 1 keeps 4 consecutive cells, one above the best: rates 4-7 at alpha 1; at alpha 2 the best
    # is the lowest rate, so the run starts there
    assert ridge.halved(r, 1, means, cells, everyone) == {0, 1, 2, 11, 12, 13}
    # rung 2 keeps 3 with none above: the best and the two below it
    assert ridge.halved(r, 2, means, cells, {3, 4, 5, 6, 7, 8, 9, 10}) == {6, 10}
    # focus: of 8 alphas only the 5 nearest the best (alpha 4, index 4) and the 3 nearest the tested 1.0 go on
    alphas = [2 ** (k / 2) for k in range(-2, 6)]
    grid = [(a, 0.01) for a in alphas]
    loss = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.5, 0.6, 0.7])
    gone = ridge.halved(r, 2, loss, grid, set(range(8)), tested=(1.0,))
    assert gone == {0, 7}  # indices 2-6 nearest the best, and 1.0's three nearest: 1-3
    assert ridge.halved(r, 2, loss, grid, set(range(8))) == {0, 1, 7}
    r.focus = 4  # a tie in distance (indices 2 and 6) goes to the lower loss
    assert ridge.halved(r, 2, loss, grid, set(range(8))) == {0, 1, 2, 7}
    assert ridge.halved(r, 1, loss, grid, set(range(8)), tested=(1.0,)) == set()  # focus at the last rung only


def test_a_ridge_experiment_expands_into_its_pilot_then_the_study():
    cfg = experiment.load("experiments/he_relu_mlp.py", "quick")
    members = studies.expand(cfg)
    pilot, main = members[0], members[1]
    assert studies.study_name(pilot).endswith("-train_loss-pilot") and pilot.search.seeds == 2
    assert main.search.sampler == "ridge" and main.search.seeds >= 8 and not main.train.shared_data_order
    assert main.search.trials == main.search.ridge.window * main.search.ridge.lrs
    assert main.search.ridge.lrs >= 7 and main.search.ridge.spacing <= 2
    # each seed at its own phase of the lr grid, evenly spread over one step; a replication elsewhere
    phases = np.sort(ridge.seed_phases(main))
    assert np.allclose(np.diff(phases), 1 / main.search.seeds) and -0.5 <= phases[0] < phases[-1] < 0.5
    other = experiment.derive(main, {"search.seed_offset": 100})
    assert not np.allclose(np.sort(ridge.seed_phases(other)), phases)


@pytest.mark.slow
def test_coverage_on_the_designs_that_run():
    # 300 simulated ridge studies per shape (a gentle ridge with a skewed bowl, a steep ridge whose
    # best lr sits one step under the stability cliff, a kinked bowl), pilot and halving in two
    # rungs included (the stopped cells censored, the early readings biased toward larger rates,
    # the last rung focused on the best alphas), at the quick profile's size (8 seeds).
    # Binomial(900, 0.95) lies in [0.93, 0.97] with probability 0.99; each shape's 300 in [0.91, 0.98].
    covered, different = [], 0
    for k, surface in enumerate(SURFACES.values()):
        rng = np.random.default_rng(200 + k)
        hits = 0
        for r in range(300):
            obs, window = ridge_design(surface, rng, PILOTS[surface.name], TESTED[surface.name])
            res = profile.analyse(obs, profile.Settings(), None, n_boot=200, n_splits=0, seed=r, design=window)
            star, half = res.profile.log_star[0], estimate.t_quantile(0.975, res.df) * res.se
            hits += star - half <= math.log(surface.truth) <= star + half
            different += verdicts.equivalence(star - math.log(surface.truth), res.se, res.df, 0.10, 0.90) == "different"
        covered.append(hits / 300)
    assert all(0.90 <= c <= 0.99 for c in covered), covered
    assert 0.92 <= np.mean(covered) <= 0.98, covered
    assert different / 900 <= 0.05


@pytest.mark.slow
def test_the_old_rectangle_fails_where_it_fails():
    # The design every trained headline used before: 6 alphas x 4 learning rates 4.6x apart x 3
    # seeds sharing everything, diverged seeds at chance, the 2-D local quadratic. On the same
    # surfaces its 95% intervals cover the optimum in about half the studies and call a true
    # equivalence "different" far more often than 5%.
    coverage, different = [], 0
    for k, surface in enumerate(SURFACES.values()):
        rng = np.random.default_rng(300 + k)
        alphas = np.geomspace(0.8, 4.0, 6) if surface.name == "ridge_cliff" else np.geomspace(0.5, 4.0, 6)
        hits = 0
        for r in range(30):
            est = estimate.estimate(rectangle(surface, rng, alphas, np.geomspace(3e-4, 3e-2, 4), 3),
                                    alpha_range=(alphas[0], alphas[-1]), n_boot=100, seed=r)  # fmt: skip
            lo, hi = est.interval(0.95)
            hits += lo <= surface.truth <= hi
            different += (
                verdicts.equivalence(math.log(est.alpha / surface.truth), est.se, est.df, 0.1, 0.9) == "different"
            )
        coverage.append(hits / 30)
    assert max(coverage) <= 0.75, coverage
    assert different / 90 > 0.10


def test_each_seed_trains_at_its_own_phase_of_the_lr_grid():
    from research import populations

    layout = populations.Layout(trials=2, seeds=3)
    pop = populations.population(layout, ("hidden",), ("hidden",), [1.0, 2.0], [0.01, 0.1], 0, [1.0, 1.25, 0.8])
    assert np.allclose(pop.learning_rate, [0.01, 0.0125, 0.008, 0.1, 0.125, 0.08])


@pytest.mark.slow
def test_a_ridge_sweep_runs_its_pilot_then_the_window_with_halving(tmp_path, data_root):
    from research import cli, coordination
    from tests import helpers

    ridge_settings = ["search.sampler='ridge'", "search.ridge.alphas=(0.5, 1.0, 2.0, 4.0, 8.0)",
                      "search.ridge.pilot_lr_range=(0.001, 1.0)", "search.ridge.pilot_steps=21", "search.ridge.lrs=4",
                      "search.ridge.rungs=(1,)", "search.ridge.keep=(3,)", "search.ridge.keep_above=(1,)",
                      "search.ridge.focus=0", "search.ridge.pilot_keep=4", "search.ridge.window=5",
                      "search.alpha_range=(0.25, 16.0)", "search.learning_rate_range=(1e-5, 10.0)",
                      "search.trials=20", "search.trials_per_batch=20", "search.seeds=3",
                      "train.shared_data_order=False", "verdict.estimator.n_boot=40", "verdict.estimator.splits=2",
                      "verdict.objectives=()"]  # fmt: skip
    overrides = helpers.overrides(tmp_path, data_root, *ridge_settings)
    url = str(tmp_path / "s.journal")
    argv = ["sweep", "--config", helpers.TINY, "--storage", url, "--workers", "1"]
    assert cli.main(argv + [a for o in overrides for a in ("--set", o)]) == 0
    import optuna

    pilot = optuna.load_study(study_name="tiny-quick-train_loss-pilot", storage=storage_of(url))
    counts = coordination.counts(pilot)  # 5 coarse alphas x 6 lrs 4x apart over 1e-3..1, 4 kept after 7 steps
    assert (counts["complete"], counts["pruned"]) == (5 * 4, 5 * 2)
    assert {t.user_attrs["stopped"]["chunk"] for t in pilot.trials if t.state.name == "PRUNED"} == {1}
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage_of(url))
    counts = coordination.counts(study)
    assert (counts["complete"], counts["pruned"]) == (15, 5)  # each alpha keeps 3 of its 4 rates after chunk 1
    stopped = [t.user_attrs["stopped"] for t in study.trials if t.state.name == "PRUNED"]
    assert all(s["chunk"] == 1 for s in stopped)
    design = study.user_attrs["design"]
    window = sorted({round(a, 9) for a, _ in design["cells"]})
    best = min(design["pilot_best"], key=lambda row: row[1])[0]  # the pilot's best alpha sits inside the window
    assert len(window) == 5 and window[0] < best < window[-1] and np.allclose(np.diff(np.log2(window)), 0.25)
    for alpha in window:  # 4 rates 2x apart at every alpha, centred on the pilot's ridge there
        rates = sorted(lr for a, lr in design["cells"] if round(a, 9) == alpha)
        assert np.allclose(np.diff(np.log2(rates)), 1.0)
    assert len(design["seed_lr_factors"]) == 3
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Raw data, tiny-quick-train_loss (train_loss)" in report and "Multiplicity: Benjamini-Hochberg" in report
    assert "tiny-quick-train_loss-pilot" not in report.split("Raw data")[0].split("| study |")[-1]


def storage_of(url):
    from research import storage

    return storage.open_existing(url)


def test_a_worker_of_a_ridge_study_waits_for_its_pilot_in_one_sentence(tmp_path, data_root):
    from research.errors import ConfigError
    from research.worker import Worker
    from tests import helpers

    ridge_settings = ["search.sampler='ridge'", "search.ridge.alphas=(0.5, 1.0, 2.0, 4.0, 8.0)",
                      "search.alpha_range=(0.25, 16.0)", "search.learning_rate_range=(1e-5, 10.0)",
                      "search.trials=20", "search.ridge.lrs=4", "search.ridge.window=5",
                      "search.ridge.keep=(3, 3)", "search.ridge.focus=5"]  # fmt: skip
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *ridge_settings))
    with pytest.raises(ConfigError) as err:
        Worker(cfg, str(tmp_path / "s.journal"), echo=lambda _: None)
    message = str(err.value)
    # 5 coarse alphas x 11 pilot rates (4x apart over the default 1e-5..10)
    assert "the pilot study tiny-quick-train_loss-pilot holds 0 of 55 finished trials; run it first" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("override", "message"),
    [("search.ridge.pilot_lr_range=(10.0, 1e-05)", r"search.ridge.pilot_lr_range must be \(low, high\)"),
     ("search.ridge.keep=(8, 3)", r"search.ridge.keep must give one count per rung, non-increasing, each from 3 to"
      r" search.ridge.lrs \(7\); got \(8, 3\)"),
     ("search.ridge.rungs=(2, 1)", r"search.ridge.rungs must list increasing chunk numbers >= 1"),
     ("search.ridge.keep_above=(4, 0)", "search.ridge.keep_above must give one count per rung, each from 0 to below"),
     ("search.ridge.focus=3", r"search.ridge.focus must be 0 \(all alphas\) or from 5 to search.ridge.window \(8\)"),
     ("search.ridge.pilot_keep=1", "search.ridge.pilot_keep must be 0 \\(all\\) or from 2 to the pilot's 11"),
     ("search.ridge.pilot_steps=100", r"search.ridge.pilot_steps \(100\) must be a multiple of 3 when the pilot"),
     ("search.ridge.alphas=(1.0, 2.0)", "search.ridge.alphas must list five or more alphas")],
)  # fmt: skip
def test_a_bad_ridge_setting_is_refused_in_one_sentence(override, message):
    from research.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as err:
        experiment.load("experiments/he_relu_mlp.py", "quick", [override])
    assert "\n" not in str(err.value)


def test_a_running_study_with_only_pruned_trials_is_not_judged_yet(tmp_path, data_root):
    """`research status` during a ridge study's first rung: trials pruned, none complete, nothing to read."""
    import optuna

    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root))
    url = str(tmp_path / "s.journal")
    study = studies.create(cfg, url)
    dist = optuna.distributions.FloatDistribution(0.5, 8.0, log=True)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, params={"alpha": 2.0},
                                              distributions={"alpha": dist}))  # fmt: skip
    assert verdicts.analyse_all(studies.load(study)) == []
