"""Sweeps: storages by URL, exact trial counts under concurrency, SIGKILL, the probe optimum."""

import json
import os
import signal

import jax.numpy as jnp
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from research import (
    cli,
    coordination,
    data,
    estimate,
    experiment,
    members,
    models,
    objectives,
    populations,
    probes,
    search,
    storage,
    studies,
    train,
    verdicts,
)
from research.errors import ConfigError
from research.worker import Worker
from tests import helpers


def test_journal_is_the_default_and_bad_urls_are_one_sentence(tmp_path):
    assert storage.default_url(tmp_path) == str(tmp_path / "studies.journal")
    assert isinstance(storage.open_storage(str(tmp_path / "a" / "s.journal")), optuna.storages.JournalStorage)
    with pytest.raises(ConfigError, match="scheme 'redis' is not one this tool reads"):
        storage.open_storage("redis://localhost:6379")
    with pytest.raises(ConfigError, match="unreachable"):
        storage.open_storage("postgresql://user:secret@127.0.0.1:1/db")
    with pytest.raises(ConfigError, match="storage must be"):
        storage.open_storage("")


def test_passwords_are_never_shown():
    assert "secret" not in storage.redact("postgresql://user:secret@host:5432/db")
    with pytest.raises(ConfigError) as err:
        storage.open_storage("postgresql://user:secret@127.0.0.1:1/db")
    assert "secret" not in str(err.value) and "***" in str(err.value)


def test_study_records_config_theory_and_version(tmp_path, data_root):
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root))
    study = studies.create(cfg, storage.default_url(tmp_path))
    assert study.user_attrs["config"]["model"]["depth"] == 3
    assert study.user_attrs["theory"]["he"] == 2.0 and study.user_attrs["theory"]["forward"] == pytest.approx(2.0)
    assert study.user_attrs["code_version"].startswith("0.")


@pytest.mark.slow
def test_three_workers_on_a_journal_finish_exactly_the_budget(tmp_path, data_root):
    url = str(tmp_path / "tiny.journal")
    overrides = helpers.overrides(tmp_path, data_root, "search.trials=13")
    workers = [helpers.worker(url, overrides, i) for i in range(3)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    helpers.assert_exactly_once(study, 13)
    assert sum(1 for out in outputs if "trials [" in out) >= 2  # the work was shared


@pytest.mark.slow
def test_a_sigkilled_worker_loses_no_trial_and_its_trials_resume(tmp_path, data_root):
    url = str(tmp_path / "tiny.journal")
    long = helpers.overrides(tmp_path, data_root, "train.steps=3000", "train.chunk_steps=100", "search.trials=6")
    victim = helpers.worker(url, long, 0)
    ckpts = tmp_path / "checkpoints" / "tiny-quick-train_loss"
    assert helpers.poll(lambda: any(p.name.isdigit() for p in ckpts.rglob("*") if p.is_dir()), 300)
    victim.send_signal(signal.SIGKILL)  # mid-population, after a checkpoint
    victim.wait()
    survivor = helpers.worker(url, long, 1)
    out = survivor.communicate(timeout=600)[0]
    assert survivor.returncode == 0, out
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    complete = helpers.assert_exactly_once(study, 6, chunks=30)
    failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
    stale = [t for t in failed if not t.user_attrs.get("surplus")]
    assert stale, "the killed worker held trials"
    resumed = [t for t in complete if "retry_of" in t.user_attrs]
    assert len(resumed) == len(stale)
    assert all(t.user_attrs["resumed_from_step"] > 0 for t in resumed), "retries restarted from step 0"
    assert "resuming trials" in out
    assert list(ckpts.iterdir()) == []  # the killed population's checkpoint went once its retries finished


@pytest.mark.slow
def test_probe_sweep_finds_he_on_relu(tmp_path, data_root):
    overrides = helpers.overrides(
        tmp_path,
        data_root,
        "model.depth=20",
        "model.width=128",
        "search.objective='forward_log_ratio'",
        "search.trials=40",
        "search.trials_per_batch=10",
        "search.probe_batch=256",
    )
    cfg = experiment.load(helpers.TINY, "quick", overrides)
    worker = Worker(cfg, str(tmp_path / "probe.journal"), echo=lambda _: None)
    assert worker.run() == 40
    best = worker.study.best_trial.params["alpha"]
    assert abs(best / 2.0 - 1.0) < 0.05


@pytest.mark.slow
def test_sweep_command_prints_three_way_verdicts(tmp_path, data_root, capsys):
    overrides = helpers.overrides(tmp_path, data_root, "search.trials=8", "search.trials_per_batch=4")
    argv = ["sweep", "--config", helpers.TINY, "--storage", str(tmp_path / "s.journal"), "--workers", "1"]
    assert cli.main(argv + [a for o in overrides for a in ("--set", o)]) == 0
    out = capsys.readouterr().out
    assert "8 finished trials" in out and "alpha* = " in out and "ROPE ±10%" in out
    # One block per objective the study is judged on: its own, then those read off its stored curves.
    judged = [line.split(":")[0].strip() for line in out.splitlines() if "alpha* = " in line]
    assert judged == ["train_loss", "val_loss_early_stopped", "val_error_early_stopped"]
    verdict = next(line for line in out.splitlines() if line.startswith("    he = forward"))
    assert verdict.split(": ")[1].split(",")[0] in verdicts.VERDICTS and "regret" in verdict
    assert "supported" not in out and "refuted" not in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.sampler='annealing'", "search.sampler must be one of"),
        ("search.objective='accuracy'", "search.objective must be one of"),
        ("search.alpha_range=(2.0, 1.0)", "search.alpha_range must be"),
        ("search.alpha_range=(1e-300, 1e300)", r"search.alpha_range must be .* <= 1e\+06 \(float32 training\)"),
        ("search.learning_rate_range=(1e-3, 1e30)", "search.learning_rate_range must be"),
        ("search.max_retries=-1", "search.max_retries must be an integer from 0 to"),
        ("search.trials=0", "search.trials must be an integer from 1 to"),
        ("search.stale_after_s=0.5", "search.stale_after_s"),
        ("search.nonsense=1", "names no config field"),
        ("model.depth='deep'", "'model.depth' must be of type int"),
    ],
)
def test_bad_search_settings_name_the_field(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        experiment.load(helpers.TINY, "quick", [override])


def test_worker_cli_rejects_a_missing_config(capsys):
    assert cli.main(["worker", "--config", "no/such/file.py"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_jsonable_user_attrs():
    assert coordination.jsonable({"a": [np.float32(1.5), float("nan")], "b": np.int64(3)}) == {"a": [1.5, None], "b": 3}
    json.dumps(coordination.jsonable([np.inf]), allow_nan=False)


PROBE = ["search.objective='forward_log_ratio'", "search.trials=8", "search.trials_per_batch=4",
         "search.probe_seeds=2", "search.probe_batch=32", "search.grid_points=8"]  # fmt: skip


def _complete(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "qmc", "grid", "random"])
def test_every_sampler_fills_the_budget_with_distinct_alphas_in_range(sampler, tmp_path, data_root):
    cfg = experiment.load(
        helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *PROBE, f"search.sampler='{sampler}'")
    )
    worker = Worker(cfg, str(tmp_path / "s.journal"), echo=lambda _: None)
    assert worker.run() == 8
    alphas = sorted(t.params["alpha"] for t in _complete(worker.study))
    assert len(alphas) == 8 == len(set(alphas)) and 0.5 <= alphas[0] and alphas[-1] <= 8.0
    if sampler == "grid":  # the geometric grid, each point once
        np.testing.assert_allclose(alphas, np.geomspace(0.5, 8.0, 8), rtol=1e-12)


def test_the_gp_sampler_names_its_missing_dependency():
    cfg = experiment.load(helpers.TINY, "quick", ["search.sampler='gp'"])
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="search.sampler 'gp' needs PyTorch"):
            search.make_sampler(cfg.search, 0)
    else:
        assert isinstance(search.make_sampler(cfg.search, 0), optuna.samplers.GPSampler)


@pytest.mark.slow
def test_pruned_trials_fill_the_budget_and_keep_no_result(tmp_path, data_root):
    extra = ["search.pruner='median'", "search.sampler='random'", "search.alpha_range=(0.01, 100.0)",
             "search.trials=12", "search.trials_per_batch=3"]  # fmt: skip
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *extra))
    worker = Worker(cfg, str(tmp_path / "s.journal"), echo=lambda _: None)
    assert worker.run() == 12
    trials = worker.study.get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert coordination.counts(worker.study)["finished"] == 12 and pruned, [t.state for t in trials]
    assert all("seed_values" not in t.user_attrs for t in pruned)
    assert all(len(t.user_attrs["seed_values"]) == 2 for t in _complete(worker.study))
    # A pruned trial was told at the chunk it was pruned at, and no later.
    assert all(max(t.intermediate_values) < 4 for t in pruned)


@pytest.mark.slow
def test_a_jointly_searched_learning_rate_trains_each_trial_at_its_own_rate(tmp_path, data_root):
    extra = ["search.learning_rate_range=(0.003, 0.3)", "search.trials=4", "search.trials_per_batch=2"]
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *extra))
    worker = Worker(cfg, str(tmp_path / "s.journal"), echo=lambda _: None)
    assert worker.run() == 4
    trials = _complete(worker.study)
    assert all(0.003 <= t.params["learning_rate"] <= 0.3 for t in trials)
    assert len({t.params["learning_rate"] for t in trials}) == 4
    assert estimate.from_trials(trials, objectives.get("train_loss")).log_lr is not None
    # The first trial, retrained alone at its alpha and learning rate, gives the stored per-seed losses.
    first = trials[0]
    trainer = train.Trainer(cfg.model, cfg.train, data.load(cfg.data))
    pop = members.Population.create(
        models.groups(cfg.model), first.params["alpha"], first.params["learning_rate"], [0, 1]
    )
    np.testing.assert_allclose(
        train.train(trainer, pop).final["train_loss"], first.user_attrs["seed_values"], rtol=1e-3
    )


@pytest.mark.slow
def test_alpha_groups_scale_only_the_named_layer_groups(tmp_path, data_root):
    extra = ["model.hidden=16", "search.objective='forward_log_ratio'", "search.trials=2", "search.trials_per_batch=2",
             "search.probe_seeds=2", "search.probe_batch=16"]  # fmt: skip
    cfg = experiment.load(
        f"{helpers.EXPERIMENTS}/rnn_recurrent_init.py", "quick", helpers.overrides(tmp_path, data_root, *extra)
    )
    assert tuple(cfg.search.alpha_groups) == ("recurrent",)
    worker = Worker(cfg, str(tmp_path / "s.journal"), echo=lambda _: None)
    assert worker.run() == 2
    x = data.load(cfg.data).x_train[:16] * cfg.search.probe_input_scale
    for trial in _complete(worker.study):
        a = jnp.array([trial.params["alpha"]])
        only_recurrent = probes.grid(cfg.model, {"input": jnp.ones(1), "recurrent": a}, jnp.arange(2), x)
        both = probes.grid(cfg.model, {"input": a, "recurrent": a}, jnp.arange(2), x)
        stored = np.asarray(trial.user_attrs["per_layer"]["forward"])
        np.testing.assert_allclose(stored, np.median(np.asarray(only_recurrent.forward)[0], axis=0), rtol=1e-4)
        assert not np.allclose(stored, np.median(np.asarray(both.forward)[0], axis=0), rtol=1e-2)


def test_alpha_groups_must_name_layer_groups(tmp_path, data_root):
    cfg = experiment.load(
        helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, "search.alpha_groups=('recurrent',)")
    )
    with pytest.raises(ConfigError, match=r"search.alpha_groups \['recurrent'\] are not layer groups"):
        Worker(cfg, str(tmp_path / "s.journal"), echo=lambda _: None)


@pytest.mark.slow
def test_a_retry_outside_the_current_range_is_rejected_and_the_study_still_finishes(tmp_path, data_root):
    # A retry enqueued under an older, wider range (or a poisoned one) must neither train nor block.
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, "search.trials=3"))
    url = str(tmp_path / "s.journal")
    study = studies.create(cfg, url)
    study.enqueue_trial({"alpha": 1e30}, user_attrs={"retry_of": 99, "attempt": 1})
    worker = Worker(cfg, url, echo=lambda _: None)
    assert worker.run() == 3
    trials = worker.study.get_trials(deepcopy=False)
    poisoned = [t for t in trials if t.params.get("alpha") == 1e30]
    assert len(poisoned) == 1 and poisoned[0].state == TrialState.FAIL
    assert "outside the current search.alpha_range" in poisoned[0].user_attrs["rejected"]
    assert len(_complete(worker.study)) == 3 and all(0.5 <= t.params["alpha"] <= 8.0 for t in _complete(worker.study))


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_restarted_or_concurrent_worker_draws_new_alphas(sampler, tmp_path, data_root):
    extra = [*PROBE, "search.trials=16", f"search.sampler='{sampler}'"]  # tpe: 8 random startup trials
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *extra))
    url = str(tmp_path / "s.journal")
    first = Worker(cfg, url, echo=lambda _: None)
    assert first.run(max_batches=1) == 4
    # The same worker index again, as after a kill and restart, and a second sweep beside it.
    restarted = Worker(cfg, url, echo=lambda _: None)
    beside = Worker(cfg, url, echo=lambda _: None)
    assert restarted.run(max_batches=1) == 4 and beside.run(max_batches=1) == 4
    assert first.run() == 4
    alphas = [t.params["alpha"] for t in _complete(first.study)]
    assert len(alphas) == 16 and len(set(alphas)) == 16, sorted(alphas)


@pytest.mark.slow
def test_a_fresh_study_keeps_the_configured_sampler_stream(tmp_path, data_root):
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *PROBE))
    runs = []
    for name in ("a", "b"):
        worker = Worker(cfg, str(tmp_path / f"{name}.journal"), echo=lambda _: None)
        worker.run()
        runs.append([t.params["alpha"] for t in _complete(worker.study)])
    assert runs[0] == runs[1]  # reproducible: the same config on a fresh study draws the same alphas


def test_probe_studies_of_a_learning_rate_grid_take_their_own_design():
    cfg = experiment.load(f"{helpers.EXPERIMENTS}/xavier_tanh_mlp.py")
    assert cfg.search.sampler == "ridge" and cfg.search.trials == 56 and cfg.search.learning_rate_range
    designed = studies.probe_design(experiment.derive(cfg, {"search.objective": "jacobian_log_gain"}))
    assert designed.search.sampler == "bracket" and designed.search.trials == 12
    assert designed.search.learning_rate_range == () and tuple(designed.search.alpha_range) == (0.25, 8.0)
    assert studies.probe_design(cfg) is cfg  # the trained study keeps its ridge design
    tiny = experiment.load(helpers.TINY, "quick", ["search.objective='forward_log_ratio'"])
    assert studies.probe_design(tiny) is tiny  # no lr grid, no arms: the experiment's own design


def test_seed_offset_shifts_every_trials_seeds():
    layout = populations.Layout(trials=2, seeds=3)
    pop = populations.population(layout, ("hidden",), ("hidden",), [1.0, 2.0], [0.01, 0.01], seed_offset=100)
    assert pop.seed.tolist() == [100, 101, 102, 100, 101, 102]


def test_tpe_spreads_a_batch_asked_at_once():
    # Without constant_liar the 8 alphas of one batch nearly coincide (median smallest log gap about
    # 0.002 over these seeds); counting running trials as poor spreads them (about 0.05).
    cfg = experiment.load(helpers.TINY, "quick", []).search
    gaps = []
    for seed in range(10):
        study = optuna.create_study(sampler=search.make_sampler(cfg, seed))
        study.optimize(lambda t: np.log(t.suggest_float("alpha", 0.25, 16, log=True) / 2) ** 2, n_trials=12)
        batch = [study.ask() for _ in range(8)]
        alphas = np.sort(np.log([t.suggest_float("alpha", 0.25, 16, log=True) for t in batch]))
        gaps.append(np.min(np.diff(alphas)))
    assert np.median(gaps) > 0.02


@pytest.mark.slow
def test_a_worker_with_every_objective_fills_every_study_a_sweep_would(tmp_path, data_root):
    url = str(tmp_path / "s.journal")
    overrides = helpers.overrides(tmp_path, data_root, "search.objectives=('forward_log_ratio', 'jacobian_log_gain')",
                                  "search.trials=4", "search.trials_per_batch=4")  # fmt: skip
    argv = [*helpers.worker_argv(url, overrides), "--every-objective"]
    assert cli.main(argv) == 0
    backend = storage.open_storage(url)
    names = sorted(optuna.get_all_study_names(storage=backend))
    assert names == ["tiny-quick-forward_log_ratio", "tiny-quick-jacobian_log_gain"]
    for name in names:
        trials = optuna.load_study(study_name=name, storage=backend).get_trials(deepcopy=False)
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 4


def test_a_grid_asked_for_more_trials_than_cells_is_refused_with_the_count():
    with pytest.raises(ConfigError) as err:
        experiment.load(os.path.join(helpers.EXPERIMENTS, "he_relu_mlp.py"), "quick", ["search.trials=57"])
    message = str(err.value)
    assert "search.trials (57) exceeds the grid's 56 cells (search.ridge.window 8 x search.ridge.lrs 7)" in message
    assert "\n" not in message
    assert experiment.load(os.path.join(helpers.EXPERIMENTS, "he_relu_mlp.py"), "quick", ["search.trials=56"])
    with pytest.raises(ConfigError, match="search.trials \\(40\\) exceeds the grid's 24 cells \\(search.grid_points 6 x"
                       " search.lr_points 4\\)"):  # fmt: skip
        grid = ["search.sampler='grid'", "search.grid_points=6", "search.lr_points=4"]
        experiment.load(helpers.TINY, "quick", [*grid, "search.learning_rate_range=(0.001, 0.1)", "search.trials=40"])
