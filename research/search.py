"""Optuna search over the init scale: the search space, samplers, pruners and the worker loop.

A worker asks a batch of trials, runs them (each over several seeds) as one population,
reports every chunk for pruning, tells, and repeats until the study holds the requested
number of finished trials, a budget all workers share (coordination.py keeps it exact and
retries the trials of dead workers; populations.py runs a batch; objectives.py says what
is minimised).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable

import ml_collections
import numpy as np
import optuna

from research import data as datalib
from research import init, models, objectives, populations, predictions, provenance, storage
from research.coordination import Heartbeat, ask_batch, counts, reap_stale, record, release, retry
from research.errors import ConfigError, choice, integer, number, require
from research.names import CONFIG_CHANGES

SAMPLERS = ("tpe", "qmc", "grid", "gp", "random")
PRUNERS = ("none", "hyperband", "successive_halving", "median")
SERIES_FIELDS = ("width", "probe_input_scale")  # what a probe series varies
LEARNING_RATE_LIMITS = (1e-8, 1e2)  # what float32 updates hold (init.ALPHA_LIMITS: the same for alpha)


def default_config() -> ml_collections.ConfigDict:
    """Search settings: what is searched, how many trials, and how workers cooperate."""
    cfg = ml_collections.ConfigDict()
    cfg.objective = "train_loss"
    cfg.objectives = ()  # the objectives `research sweep` runs, one study each; empty: (objective,)
    cfg.alpha_range = (0.25, 16.0)  # log-uniform
    cfg.alpha_groups = ()  # layer groups alpha scales; empty: all (others stay at 1)
    cfg.learning_rate_range = ()  # (lo, hi) searches lr jointly (log-uniform); empty: train.learning_rate
    cfg.seeds = 3  # repeats of every trial; the objective is their mean
    cfg.seed_offset = 0  # trials run seeds seed_offset .. seed_offset + seeds - 1: a replication takes another
    cfg.probe_seeds = 8  # repeats for the (cheap) objectives at initialisation
    cfg.trials = 24  # finished trials the study must hold, shared by all workers
    cfg.trials_per_batch = 8  # trials trained as one program (population = this x seeds)
    cfg.sampler = "tpe"
    cfg.sampler_seed = 0
    cfg.grid_points = 16  # alphas on the grid sampler's geometric grid
    cfg.lr_points = 4  # learning rates on it (geometric, across learning_rate_range) when lr is searched
    cfg.arms = ()  # ((label, alpha), ...): the grid runs these named alphas, compared head to head (compare.py)
    cfg.pruner = "none"
    cfg.probe_batch = 256  # inputs for the signal-propagation objectives
    cfg.probe_input_scale = 1.0  # scales the probe inputs: small values start near q = 0
    cfg.probe_inputs = "data"  # or "gaussian": iid N(0, 1) inputs, the mean-field assumption
    # A probe objective over several values of `field` (the model's width, or the probe input
    # scale), one study each on a fixed grid of `points` alphas x `seeds`, extrapolated to
    # 1/width -> 0 or scale -> 0 (extrapolate.py); empty `values`: no series.
    cfg.series = ml_collections.ConfigDict(
        {"field": "width", "levels": (), "alpha_range": (1.0, 4.0), "points": 7, "seeds": 32}
    )
    # The design of a probe objective's study when the experiment's trained studies search the
    # learning rate or run named arms (meaningless at initialisation): applied by `probe_design`.
    cfg.probe = ml_collections.ConfigDict(
        {"sampler": "qmc", "trials": 16, "trials_per_batch": 8, "alpha_range": (0.25, 8.0)}
    )
    cfg.checkpoint_every_chunks = 2
    cfg.heartbeat_s = 10.0
    cfg.stale_after_s = 120.0  # a running trial without a heartbeat this long is failed and retried
    cfg.max_retries = 2  # retries of one trial whose workers keep dying; then it stays failed
    cfg.poll_s = 2.0
    cfg.runs_dir = "runs"
    # When the resolved config differs from the one a study of the same name was made with:
    # "stop" names the changed keys, "new" starts a study beside it (its name ends in -c<hash>).
    cfg.on_config_change = "stop"
    return cfg


# Fields that may change without splitting a study: the trial budget and its layout, the other
# objectives a sweep runs, where files go, timings and retry limits; everything else is the
# experiment a study's trials measure, so a change to it starts a new study or stops.
IDENTITY_EXCLUDED = (
    "data.data_dir",
    "train.member_block",
    "search.trials",
    "search.objectives",
    "search.trials_per_batch",
    "search.probe",
    "search.runs_dir",
    "search.checkpoint_every_chunks",
    "search.heartbeat_s",
    "search.stale_after_s",
    "search.max_retries",
    "search.poll_s",
    "search.on_config_change",
)


def validate(cfg) -> None:
    """Stop with one clear sentence on the first bad search setting."""
    for field in ("objectives", "alpha_groups"):
        require(isinstance(cfg[field], tuple | list), f"search.{field} must be a tuple of names; got {cfg[field]!r}.")
    for objective in (cfg.objective, *cfg.objectives):
        objectives.get(objective)
    number(cfg.probe_input_scale, "search.probe_input_scale", "a number > 0", lambda v: v > 0)
    if cfg.probe_inputs not in ("data", "gaussian"):
        raise choice("search.probe_inputs", cfg.probe_inputs, ("data", "gaussian"))
    require(isinstance(cfg.runs_dir, str) and cfg.runs_dir, f"search.runs_dir must be a path; got {cfg.runs_dir!r}.")
    if cfg.sampler not in SAMPLERS:
        raise choice("search.sampler", cfg.sampler, SAMPLERS)
    if cfg.pruner not in PRUNERS:
        raise choice("search.pruner", cfg.pruner, PRUNERS)
    if cfg.on_config_change not in CONFIG_CHANGES:
        raise choice("search.on_config_change", cfg.on_config_change, CONFIG_CHANGES)
    _check_range("search.alpha_range", cfg.alpha_range, init.ALPHA_LIMITS)
    if cfg.learning_rate_range != ():
        _check_range("search.learning_rate_range", cfg.learning_rate_range, LEARNING_RATE_LIMITS)
    integer(cfg.max_retries, "search.max_retries", minimum=0)
    integer(cfg.seed_offset, "search.seed_offset", minimum=0)
    _validate_series(cfg.series)
    _validate_arms(cfg)
    if cfg.probe.sampler not in SAMPLERS:
        raise choice("search.probe.sampler", cfg.probe.sampler, SAMPLERS)
    integer(cfg.probe.trials, "search.probe.trials")
    integer(cfg.probe.trials_per_batch, "search.probe.trials_per_batch")
    _check_range("search.probe.alpha_range", cfg.probe.alpha_range, init.ALPHA_LIMITS)
    for field in (
        "seeds",
        "probe_seeds",
        "trials",
        "trials_per_batch",
        "grid_points",
        "lr_points",
        "probe_batch",
        "checkpoint_every_chunks",
    ):
        integer(cfg[field], f"search.{field}")
    for field in ("heartbeat_s", "stale_after_s", "poll_s"):
        number(cfg[field], f"search.{field}", "a number of seconds > 0", lambda v: v > 0)
    require(
        cfg.stale_after_s > 2 * cfg.heartbeat_s,
        f"search.stale_after_s ({cfg.stale_after_s}) must exceed twice search.heartbeat_s ({cfg.heartbeat_s}).",
    )


def create_study(cfg, url: str) -> optuna.Study:
    """Create or load the experiment's study (`study_name`, or with search.on_config_change='new'
    its -c<hash> sibling when the config changed); the creator records config, its hash, theory
    predictions and provenance. A changed config never joins a study made with another one."""
    backend = storage.open_storage(url)
    digest = config_hash(cfg)
    name = resolve_name(cfg, backend)
    study = optuna.create_study(study_name=name, storage=backend, direction="minimize", load_if_exists=True)
    if "config" not in study.user_attrs:
        study.set_user_attr("config", json.loads(cfg.to_json_best_effort()))
        study.set_user_attr("config_hash", digest)
        study.set_user_attr("theory", predictions.for_model(cfg.model))  # idealised, in search units
        study.set_user_attr("objective", cfg.search.objective)
        study.set_user_attr("code_version", provenance.code_version())
        study.set_user_attr("provenance", provenance.record())
    return study


def resolve_name(cfg, backend: optuna.storages.BaseStorage) -> str:
    """The name of the study that holds `cfg`'s trials: `study_name(cfg)` unless a study of that
    name was made with another config; then per search.on_config_change, stop naming the changed
    keys, or its sibling `<name>-c<hash>`."""
    name, digest = study_name(cfg), config_hash(cfg)
    stored = stored_config(backend, name)
    if stored is None or _hash(stored) == digest:
        return name
    if cfg.search.on_config_change == "new":
        return f"{name}-c{digest}"
    changed = changed_keys(stored, json.loads(cfg.to_json_best_effort()))
    shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed[:6]) + ("; ..." if len(changed) > 6 else "")
    raise ConfigError(
        f"study {name} was made with another config ({shown}); run with --on-config-change new to start a"
        " new study beside it, or restore the config to continue that one."
    )


def find_study(cfg, backend: optuna.storages.BaseStorage) -> optuna.Study | None:
    """The existing study that holds `cfg`'s trials (same name and config hash), or None."""
    names = set(optuna.get_all_study_names(storage=backend))
    digest = config_hash(cfg)
    for name in (study_name(cfg), f"{study_name(cfg)}-c{digest}"):
        study = optuna.load_study(study_name=name, storage=backend) if name in names else None
        if study is not None and _hash(study.user_attrs.get("config")) == digest:
            return study
    return None


def stored_config(backend: optuna.storages.BaseStorage, name: str) -> dict | None:
    """The config the study `name` was made with (None: no such study, or not yet recorded)."""
    if name not in optuna.get_all_study_names(storage=backend):
        return None
    return optuna.load_study(study_name=name, storage=backend).user_attrs.get("config")


def config_hash(cfg) -> str:
    """8 hex digits of the resolved config's identity: every field but `IDENTITY_EXCLUDED`."""
    return _hash(json.loads(cfg.to_json_best_effort()))


def _hash(config: dict | None) -> str | None:
    if config is None:
        return None
    kept = {k: v for k, v in _flat(config).items() if not _excluded(k)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]


def changed_keys(old: dict, new: dict) -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for every identity field that differs."""
    a, b = _flat(old), _flat(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if not _excluded(k) and a.get(k) != b.get(k)]


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _excluded(key: str) -> bool:
    return any(key == field or key.startswith(field + ".") for field in IDENTITY_EXCLUDED)


def study_name(cfg) -> str:
    """Studies are named after the experiment, the profile and the objective (and, in a series,
    the value: "-w256" for a width, "-s0.1" for a probe input scale)."""
    base = series_name(cfg)
    if not in_series(cfg):
        return base
    if cfg.search.series.field == "width":
        return f"{base}-w{models.width(cfg.model)}"
    return f"{base}-s{cfg.search.probe_input_scale:g}"


def series_name(cfg) -> str:
    """The experiment, profile and objective: a study's name, or a series' common stem."""
    return f"{cfg.name}-{cfg.profile}-{cfg.search.objective}"


def in_series(cfg) -> bool:
    """Whether the study is one member of a probe objective's series."""
    series = cfg.search.get("series")  # absent from studies made before series existed
    return bool(series and series.get("levels")) and not objectives.get(cfg.search.objective).trained


def series_x(cfg) -> float:
    """Where the study sits on its series' axis, 0 at the limit: 1/width, or the input scale squared
    (the first layer's input variance q1 is proportional to it)."""
    if cfg.search.series.field == "width":
        return 1.0 / models.width(cfg.model)
    return float(cfg.search.probe_input_scale) ** 2


def probe_design(cfg) -> list[str]:
    """Overrides that give a probe objective's study its own design (`search.probe`) when the
    experiment's design is about training (a learning-rate grid or named arms mean nothing at
    initialisation); otherwise, and for trained objectives, none."""
    if objectives.get(cfg.search.objective).trained or not (cfg.search.learning_rate_range or cfg.search.arms):
        return []
    p = cfg.search.probe
    return [f"search.sampler='{p.sampler}'", f"search.trials={p.trials}",
            f"search.trials_per_batch={p.trials_per_batch}", f"search.alpha_range={tuple(p.alpha_range)}",
            "search.learning_rate_range=()", "search.arms=()"]  # fmt: skip


def series(cfg) -> list[list[str]]:
    """Overrides that make each member study of the series: a fixed grid design."""
    s = cfg.search.series
    require(s.field != "width" or not cfg.model.get("widths"), "search.series over width needs model.widths empty.")
    design = ["search.sampler='grid'", f"search.alpha_range={tuple(s.alpha_range)}",
              f"search.grid_points={s.points}", f"search.trials={s.points}",
              f"search.probe_seeds={s.seeds}", "search.trials_per_batch=1"]  # fmt: skip
    field = f"model.{models.family(cfg.model).width_field}" if s.field == "width" else "search.probe_input_scale"
    return [[*design, f"{field}={v}"] for v in s.levels]


def _validate_series(s) -> None:
    if s.field not in SERIES_FIELDS:
        raise choice("search.series.field", s.field, SERIES_FIELDS)
    kind = int if s.field == "width" else int | float
    require(
        isinstance(s.levels, tuple | list) and all(isinstance(v, kind) and v > 0 for v in s.levels),
        f"search.series.levels must be a tuple of {'integers' if s.field == 'width' else 'numbers'} > 0;"
        f" got {s.levels!r}.",
    )
    require(len(s.levels) != 1, "search.series.levels needs two values or more to extrapolate; got one.")
    _check_range("search.series.alpha_range", s.alpha_range, init.ALPHA_LIMITS)
    integer(s.points, "search.series.points", minimum=6)
    integer(s.seeds, "search.series.seeds", minimum=3)


def make_sampler(cfg, worker_seed: int) -> optuna.samplers.BaseSampler:
    """The configured sampler; TPE and random are seeded per worker, QMC shares its sequence. TPE
    asks a batch at once: `constant_liar` counts the batch's running trials as poor, so one batch
    spreads out instead of repeating one alpha; `multivariate` models alpha and lr jointly."""
    if cfg.sampler == "tpe":
        with warnings.catch_warnings():  # both options are marked experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=worker_seed, n_startup_trials=min(10, cfg.trials // 2 or 1), constant_liar=True, multivariate=True
            )
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=worker_seed)
    if cfg.sampler == "qmc":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=cfg.sampler_seed)
    if cfg.sampler == "grid":
        alphas = [float(a) for _, a in cfg.arms] or np.geomspace(*cfg.alpha_range, cfg.grid_points).tolist()
        space = {"alpha": alphas}
        if cfg.learning_rate_range:
            space["learning_rate"] = np.geomspace(*cfg.learning_rate_range, cfg.lr_points).tolist()
        return _GridSampler(space, seed=cfg.sampler_seed)
    try:
        import torch  # noqa: F401  (GPSampler's dependency)
    except ImportError:
        raise ConfigError(
            "search.sampler 'gp' needs PyTorch; pip install torch, or use tpe, qmc, grid or random."
        ) from None
    return optuna.samplers.GPSampler(seed=worker_seed)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, less its `study.stop()` once the grid is exhausted: that call works
    only inside `study.optimize`, and workers ask and tell; here `search.trials` ends a study."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_pruner(cfg, chunks: int) -> optuna.pruners.BasePruner:
    """The configured pruner; its resource is the chunk (hyperband: all chunks of a run)."""
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=chunks)
    if cfg.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


class Worker:
    """One process's share of a sweep: ask, run as a population, tell, until the budget is met."""

    def __init__(
        self, cfg, url: str, *, worker_index: int = 0, echo: Callable = print, stop: threading.Event | None = None
    ):
        self.cfg, self.scfg = cfg, cfg.search
        self.stop = stop or threading.Event()  # set (by a signal handler): checkpoint, release, return
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.echo = echo
        self.objective = objectives.get(self.scfg.objective)
        self.groups = models.groups(cfg.model)
        self.searched = tuple(self.scfg.alpha_groups) or self.groups
        unknown = set(self.searched) - set(self.groups)
        require(
            not unknown,
            f"search.alpha_groups {sorted(unknown)} are not layer groups of this model ({sorted(self.groups)}).",
        )
        self.worker_seed = self.scfg.sampler_seed + 1000 * worker_index
        sampler = make_sampler(self.scfg, self.worker_seed)
        self._stream_set = False
        self.seeds = self.scfg.seeds if self.objective.trained else self.scfg.probe_seeds
        size = self.scfg.trials_per_batch * self.seeds
        runner = populations.Trained if self.objective.trained else populations.Probed
        self.runner = runner(cfg, datalib.load(cfg.data), self.objective, size)  # sized before any write
        self.study = retry(lambda: create_study(cfg, url))  # a worker may start while the DB is down
        self.name = self.study.study_name
        if not self.objective.trained:
            retry(self._record_probe_inputs)
        self.study.sampler = sampler
        chunks = self.runner.trainer.num_chunks if self.objective.trained else 1
        self.study.pruner = make_pruner(self.scfg, chunks)
        self.ckpt_root = os.path.join(self.scfg.runs_dir, "checkpoints", self.name)

    def _record_probe_inputs(self) -> None:
        """The probe inputs' mean square per position, once per study: the as-run theory's input."""
        if "probe_input_moment" not in self.study.user_attrs:
            self.study.set_user_attr("probe_input_moment", self.runner.input_moment)

    def run(self, max_batches: int | None = None) -> int:
        """Work until the study holds `search.trials` finished trials; returns trials told here."""
        told, batches = 0, 0
        with Heartbeat(self.scfg.heartbeat_s, self.id) as heartbeat:
            while (max_batches is None or batches < max_batches) and not self.stop.is_set():
                retry(lambda: reap_stale(self.study, self.scfg.stale_after_s, self.scfg.max_retries))
                trials = retry(
                    lambda: ask_batch(
                        self.study, heartbeat, self.scfg.trials, self.scfg.trials_per_batch, self._suggest
                    )
                )
                if not trials:
                    if retry(lambda: counts(self.study))["finished"] >= self.scfg.trials:
                        break
                    time.sleep(self.scfg.poll_s)  # others hold the rest; wait to reap or finish
                    continue
                for group in _groups(trials):
                    told += self._run_group(group, heartbeat)
                batches += 1
        return told

    def _suggest(self, trial: optuna.Trial) -> str | None:
        """Sample (or, for an enqueued retry, read back) the trial's alpha and learning rate; a
        retry from an older, wider search space is refused with the reason (None: it may run)."""
        self._set_stream(trial.number)
        spaces = {"alpha": self.scfg.alpha_range, "learning_rate": self.scfg.learning_rate_range}
        for name, (lo, hi) in ((k, v) for k, v in spaces.items() if v):
            with warnings.catch_warnings():  # Optuna warns, then uses an out-of-range fixed value
                warnings.simplefilter("ignore", UserWarning)
                value = trial.suggest_float(name, lo, hi, log=True)
            if not lo <= value <= hi:
                return f"{name} {value:g} lies outside the current search.{name}_range [{lo:g}, {hi:g}]"
        return None

    def _set_stream(self, first_trial: int) -> None:
        """Seed this run's sampler from the study's state when it starts (its first trial's number):
        the configured stream for a fresh study, a new one after a restart or beside another sweep,
        so no two runs replay the same draws. QMC and grid share one sequence by design."""
        if not self._stream_set and first_trial and self.scfg.sampler in ("tpe", "random", "gp"):
            self.study.sampler = make_sampler(self.scfg, self.worker_seed + 7919 * first_trial)
        self._stream_set = True

    def _run_group(self, trials: list[optuna.Trial], heartbeat: Heartbeat) -> int:
        layout = populations.Layout(len(trials), self.seeds)
        lrs = [t.params.get("learning_rate", self.cfg.train.learning_rate) for t in trials]
        alphas = [t.params["alpha"] for t in trials]
        pop = populations.population(layout, self.groups, self.searched, alphas, lrs, self.scfg.seed_offset)
        self.echo(f"[{self.id}] trials {[t.number for t in trials]}: alpha {[round(a, 3) for a in alphas]}")
        if self.objective.trained:
            outcomes = self._train(trials, layout, pop)
        else:
            outcomes = self.runner.run(layout, pop)
        told = 0
        for trial, outcome in zip(trials, outcomes, strict=True):
            heartbeat.release(trial)
            try:
                if outcome.attrs.get("preempted"):
                    retry(lambda: release(self.study, trial))  # noqa: B023  (called at once)
                    continue
                retry(lambda: record(self.study, trial, *outcome))  # noqa: B023  (called at once)
                told += 1
            except optuna.exceptions.UpdateFinishedTrialError:
                self.echo(f"[{self.id}] trial {trial.number} was taken over by another worker; its result is dropped")
        return told

    def _train(self, trials, layout: populations.Layout, pop) -> list[populations.Outcome]:
        """Train a group, checkpointed where a retry can find it; retries resume a dead group's members."""
        # A group of retries shares one dead population (see _groups); read where it stopped
        # before this population's own checkpoint and slots replace those attributes.
        source = trials[0].user_attrs.get("checkpoint") if all("retry_of" in t.user_attrs for t in trials) else None
        initial = populations.resume(
            self.runner.trainer, layout, pop, source, [t.user_attrs.get("slot") for t in trials]
        )
        ckpt_dir = os.path.join(self.ckpt_root, uuid.uuid4().hex[:12])
        for slot, trial in enumerate(trials):
            retry(lambda: trial.set_user_attr("checkpoint", ckpt_dir))  # noqa: B023  (called at once)
            retry(lambda: trial.set_user_attr("slot", slot))  # noqa: B023
        pruned: set[int] = set()

        def prune(chunk: int, values: np.ndarray) -> set[int]:
            for i, trial in enumerate(trials):
                if i not in pruned:
                    retry(lambda: trial.report(float(values[i]), chunk))  # noqa: B023  (called at once)
                    if self.scfg.pruner != "none" and retry(trial.should_prune):
                        pruned.add(i)
            return pruned

        if initial is not None:
            self.echo(f"[{self.id}] resuming trials {[t.number for t in trials]} at step {initial.step}")
            for chunk, row in enumerate(initial.curves.array(self.objective.metric).T, start=1):  # retries keep curves
                for i, trial in enumerate(trials):
                    retry(lambda: trial.report(float(layout.per_trial(row)[i].mean()), chunk))  # noqa: B023
        return self.runner.run(layout, pop, ckpt_dir, prune, initial, pause=self.stop.is_set)


def _groups(trials: list[optuna.Trial]) -> list[list[optuna.Trial]]:
    """Retries of the same dead population run together (resumable), fresh trials together."""
    by_source: dict[str | None, list[optuna.Trial]] = {}
    for t in trials:
        key = t.user_attrs.get("checkpoint") if "retry_of" in t.user_attrs else None
        by_source.setdefault(key, []).append(t)
    return [group for key, group in sorted(by_source.items(), key=lambda kv: kv[0] is None)]


def _validate_arms(cfg) -> None:
    arms = cfg.arms
    ok = isinstance(arms, tuple | list) and all(
        isinstance(a, tuple | list) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], int | float)
        for a in arms
    )
    require(ok, f"search.arms must be ((label, alpha), ...); got {arms!r}.")
    lo, hi = cfg.alpha_range
    require(all(lo <= a <= hi for _, a in arms), f"search.arms alphas must lie in search.alpha_range; got {arms!r}.")
    require(not arms or cfg.sampler == "grid", f"search.arms needs search.sampler 'grid'; got {cfg.sampler!r}.")


def _check_range(field: str, value, limits: tuple[float, float]) -> None:
    ok = isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)
    lo, hi = limits
    require(
        ok and lo <= value[0] < value[1] <= hi,
        f"{field} must be (low, high) with {lo:g} <= low < high <= {hi:g} (float32 training); got {value!r}.",
    )
