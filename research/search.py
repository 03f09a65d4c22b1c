"""Optuna search over the init scale: the search section of a config, samplers and pruners.

What is searched (alpha, and the learning rate jointly where the experiment says), how many
trials and seeds, and how workers cooperate; worker.py runs the loop that asks and tells.
"""

from __future__ import annotations

import warnings

import ml_collections
import numpy as np
import optuna

from research import bracket, init, objectives, ridge
from research.errors import INT32_MAX, ConfigError, choice, integer, number, require
from research.names import CONFIG_CHANGES

SAMPLERS = ("tpe", "qmc", "grid", "gp", "random", "ridge", "bracket")  # ridge: a pilot, then cells along lr*(alpha);
# bracket: a probe's zero bracketed, then alphas dense around it
STAGES = ("", "pilot", "bracket")  # a ridge design's pilot, a bracket design's first stage
PRUNERS = ("none", "hyperband", "successive_halving", "median")
SERIES_FIELDS = ("width", "probe_input_scale")  # what a probe series varies
LEARNING_RATE_LIMITS = ridge.LEARNING_RATE_LIMITS  # what float32 updates hold (init.ALPHA_LIMITS: alpha's)


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
    cfg.stage = ""  # the first stage of a two-stage design, its own study: "pilot" (ridge.py), "bracket" (bracket.py)
    cfg.ridge = ridge.default_config()  # the ridge design, when sampler is "ridge"
    cfg.bracket = bracket.default_config()  # a probe's two-stage design, when sampler is "bracket"
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
    # Its default is the bracket design (bracket.py): 16 alphas x search.bracket.seeds, then 12 dense ones.
    cfg.probe = ml_collections.ConfigDict(
        {"sampler": "bracket", "trials": 12, "trials_per_batch": 12, "alpha_range": (0.25, 8.0)}
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
    if cfg.stage not in STAGES:
        raise choice("search.stage", cfg.stage, STAGES)
    _validate_two_stage(cfg)
    if cfg.pruner not in PRUNERS:
        raise choice("search.pruner", cfg.pruner, PRUNERS)
    if cfg.on_config_change not in CONFIG_CHANGES:
        raise choice("search.on_config_change", cfg.on_config_change, CONFIG_CHANGES)
    _check_range("search.alpha_range", cfg.alpha_range, init.ALPHA_LIMITS)
    if cfg.learning_rate_range != ():
        _check_range("search.learning_rate_range", cfg.learning_rate_range, LEARNING_RATE_LIMITS)
    integer(cfg.max_retries, "search.max_retries", minimum=0)
    integer(cfg.seed_offset, "search.seed_offset", minimum=0, maximum=INT32_MAX - 10**6)  # room for the seeds after it
    integer(cfg.sampler_seed, "search.sampler_seed", minimum=0, maximum=INT32_MAX - 10**9)  # room for worker streams
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
    if cfg.sampler in ("grid", "ridge", "bracket"):
        _validate_grid(cfg)
    require(
        cfg.stale_after_s > 2 * cfg.heartbeat_s,
        f"search.stale_after_s ({cfg.stale_after_s}) must exceed twice search.heartbeat_s ({cfg.heartbeat_s}).",
    )


def _validate_two_stage(cfg) -> None:
    """The ridge design needs a learning-rate range; the bracket design is for probes only."""
    if cfg.sampler == "ridge":
        require(cfg.learning_rate_range != (), "search.sampler 'ridge' needs search.learning_rate_range.")
        _check_range("search.ridge.pilot_lr_range", cfg.ridge.pilot_lr_range, LEARNING_RATE_LIMITS)
        ridge.validate(cfg)
    if cfg.sampler == "bracket":
        require(
            not cfg.learning_rate_range and not objectives.get(cfg.objective).trained,
            f"search.sampler 'bracket' locates a probe's zero; search.objective {cfg.objective!r} is trained"
            " or search.learning_rate_range is set (set search.probe.sampler instead).",
        )
    bracket.validate(cfg)


def _validate_grid(cfg) -> None:
    cells = grid_cells(cfg)
    shape = f"{len(cfg.arms)} arms" if cfg.arms else f"search.grid_points {cfg.grid_points}"
    shape += f" x search.lr_points {cfg.lr_points}" if cfg.learning_rate_range else ""
    if cfg.sampler == "ridge":
        shape = f"search.ridge.window {cfg.ridge.window} x search.ridge.lrs {cfg.ridge.lrs}"
    if cfg.sampler == "bracket":
        shape = f"search.bracket.dense {cfg.bracket.dense}"
    require(
        cfg.trials <= cells,
        f"search.trials ({cfg.trials}) exceeds the grid's {cells} cells ({shape}): a grid never repeats a cell;"
        f" ask for at most {cells} trials or enlarge the grid (search.seeds repeats every cell).",
    )


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


def make_sampler(cfg, worker_seed: int, cells: list | None = None) -> optuna.samplers.BaseSampler:
    """The configured sampler (a ridge design's, over its `cells`); TPE and random are seeded per
    worker, QMC shares its sequence. TPE
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
    if cfg.sampler in ("ridge", "bracket"):
        return ridge.CellSampler(cells, seed=cfg.sampler_seed)
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


def grid_cells(cfg) -> int:
    """How many distinct (alpha, learning rate) cells the grid sampler of search config `cfg` has."""
    if cfg.sampler == "ridge":
        return cfg.ridge.window * cfg.ridge.lrs
    if cfg.sampler == "bracket":
        return cfg.bracket.dense
    alphas = len(cfg.arms) or cfg.grid_points
    return alphas * (cfg.lr_points if cfg.learning_rate_range else 1)


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
