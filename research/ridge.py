"""The ridge design: a pilot finds lr*(alpha), the confirmatory grid follows it (docs/theory.md).

The learning rate that trains best moves steeply with alpha (a deep bias-free ReLU net's effective
step grows about as alpha^(L-1)), so one rectangle of (alpha, lr) cells either misses the ridge or
wastes most of its cells. Two pre-registered stages (`search.ridge`, stored with the study):

1. the pilot (its own study, `<name>-pilot`): the coarse `alphas` x a wide geometric lr grid, few
   seeds, a short run. Its best lr per alpha traces the ridge lr*(alpha), and its best alpha says
   where the optimum is;
2. the study: `window` alphas on the fine grid 2^(k / per_octave) around the pilot's best alpha
   (placed to contain the tested predictions where it can), each at `lrs` learning rates `spacing`
   apart around the ridge; `seeds` seeds, each with its own batch order and its own phase of the
   learning-rate grid (every rate of the seed times spacing^phase, the phases spread evenly over
   one step in a random order drawn from the seed offset and `phase_seed`), so that how the grid
   falls against the ridge and the stability edge varies from seed to seed, and the interval,
   which resamples seeds, sees it. After `rung` chunks each alpha keeps its `keep` best cells
   (seed-mean training loss); the others leave the population (successive halving) and are
   recorded as stopped at that rung.
"""

from __future__ import annotations

import math

import ml_collections
import numpy as np
import optuna

from research.errors import ConfigError, integer, number, require
from research.init import ALPHA_LIMITS

LEARNING_RATE_LIMITS = (1e-8, 1e2)  # what float32 updates hold (search.py checks every lr range against it)

STAGES = ("", "pilot")


def default_config() -> ml_collections.ConfigDict:
    """The two stages of a ridge design (used when search.sampler is 'ridge')."""
    return ml_collections.ConfigDict(
        {
            "alphas": (),  # the pilot's coarse alphas
            "per_octave": 4,  # the confirmatory alphas lie on the grid 2^(k / per_octave) ...
            "window": 8,  # ... this many of them around the pilot's best alpha
            "pilot_lr_range": (1e-5, 10.0),  # the pilot's geometric lr grid spans this ...
            "pilot_lr_factor": 4.0,  # ... with this ratio between neighbours
            "pilot_seeds": 2,
            "pilot_steps": 150,
            "lrs": 7,  # confirmatory learning rates per alpha ...
            "spacing": 2.0,  # ... this ratio apart, centred on the pilot's best
            "keep": 4,  # cells per alpha that train past the rung (3: see docs/theory.md, coverage)
            "rung": 2,  # chunks after which the others leave
            "phase_seed": 0,
        }
    )


def validate(search) -> None:
    """One sentence on the first bad ridge setting (checked when search.sampler is 'ridge')."""
    r = search.ridge
    require(
        isinstance(r.alphas, tuple | list) and len(r.alphas) >= 5 and all(isinstance(a, int | float) and a > 0
                                                                         for a in r.alphas),
        f"search.ridge.alphas must list five or more alphas > 0; got {r.alphas!r}.",
    )  # fmt: skip
    lo, hi = search.alpha_range
    require(
        all(lo <= a <= hi for a in r.alphas), f"search.ridge.alphas must lie in search.alpha_range; got {r.alphas!r}."
    )
    number(r.pilot_lr_factor, "search.ridge.pilot_lr_factor", "a ratio > 1", lambda v: v > 1)
    number(r.spacing, "search.ridge.spacing", "a ratio in (1, 2]", lambda v: 1 < v <= 2)
    integer(r.lrs, "search.ridge.lrs", minimum=3)
    integer(r.per_octave, "search.ridge.per_octave")
    integer(r.window, "search.ridge.window", minimum=5)
    integer(r.keep, "search.ridge.keep", minimum=3)
    require(r.keep <= r.lrs, f"search.ridge.keep ({r.keep}) must not exceed search.ridge.lrs ({r.lrs}).")
    integer(r.pilot_seeds, "search.ridge.pilot_seeds")
    integer(r.pilot_steps, "search.ridge.pilot_steps")
    integer(r.rung, "search.ridge.rung")
    integer(r.phase_seed, "search.ridge.phase_seed", minimum=0)


def pilot_points(r) -> int:
    return 1 + round(math.log(r.pilot_lr_range[1] / r.pilot_lr_range[0]) / math.log(r.pilot_lr_factor))


def pilot_changes(cfg) -> dict:
    """The config changes that make a ridge study's pilot (a rectangular grid, few seeds, short)."""
    r, alphas = cfg.search.ridge, cfg.search.ridge.alphas
    n = pilot_points(r)
    return {"search.stage": "pilot", "search.sampler": "grid", "search.alpha_range": (min(alphas), max(alphas)),
            "search.grid_points": len(alphas), "search.learning_rate_range": tuple(r.pilot_lr_range),
            "search.lr_points": n, "search.trials": len(alphas) * n, "search.trials_per_batch": len(alphas) * n,
            "search.seeds": r.pilot_seeds, "search.pruner": "none", "train.steps": r.pilot_steps,
            "train.chunk_steps": r.pilot_steps, "verdict.objectives": ()}  # fmt: skip


def pilot_best(cfg, pilot_trials) -> dict[float, tuple[float, float]]:
    """Each coarse alpha's best pilot cell: (seed-mean final training loss, its learning rate); a
    diverged seed counts at its recorded chance loss, so a cell that diverges never wins."""
    best: dict[float, tuple[float, float]] = {}
    for t in pilot_trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        alpha = _nearest(cfg.search.ridge.alphas, t.params["alpha"])
        if alpha not in best or t.value < best[alpha][0]:
            best[alpha] = (t.value, t.params["learning_rate"])
    missing = [a for a in cfg.search.ridge.alphas if a not in best]
    if missing:
        raise ConfigError(f"the pilot has no finished cell at alpha {missing}; rerun it (research sweep does).")
    return best


def window(best: dict[float, tuple[float, float]], per_octave: int, size: int, predictions: tuple[float, ...]
           ) -> list[float]:  # fmt: skip
    """The confirmatory alphas: `size` consecutive alphas of the grid 2^(k / per_octave) holding the
    pilot's best alpha (not at an end), placed to contain as many `predictions` as possible, then
    as centred on it as possible."""
    centre = round(per_octave * math.log2(min(best, key=lambda a: best[a][0])))
    wanted = [per_octave * math.log2(p) for p in predictions]

    def score(start: int) -> tuple[int, float]:
        held = sum(start - 1e-9 <= w <= start + size - 1 + 1e-9 for w in wanted)
        return held, -abs(start + (size - 1) / 2 - centre)

    start = max(range(centre - size + 2, centre), key=score)
    return [2 ** ((start + i) / per_octave) for i in range(size)]


def ridge_at(best: dict[float, tuple[float, float]], alpha: float, chance: float = math.inf) -> float:
    """The pilot's lr*(alpha): a least-squares line in log-log through the three coarse alphas
    nearest `alpha` that trained (best loss below 98% of the `chance` loss: at the others every
    learning rate is as bad), so one noisy pilot cell does not move a whole window."""
    coarse = sorted(a for a in best if best[a][0] < 0.98 * chance) or sorted(best)
    near = sorted(coarse, key=lambda a: abs(math.log(a / alpha)))[:3]
    x, y = np.log(near), np.log([best[a][1] for a in near])
    if len(near) < 2 or np.ptp(x) == 0:
        return float(np.exp(y[0]))
    slope, intercept = np.polyfit(x, y, 1)
    return float(np.exp(intercept + slope * math.log(alpha)))


def seed_phases(cfg) -> np.ndarray:
    """Each seed's phase of the learning-rate grid, in steps in [-0.5, 0.5): evenly spread (one per
    1/S of a step, at a random offset) in a random order."""
    seeds = cfg.search.seeds
    rng = np.random.default_rng([cfg.search.ridge.phase_seed, cfg.search.seed_offset])
    return (rng.permutation(seeds) + rng.uniform()) / seeds - 0.5


def seed_lr_factors(cfg) -> np.ndarray:
    """What each seed's learning rates are multiplied by: spacing^phase."""
    return cfg.search.ridge.spacing ** seed_phases(cfg)


def cells(cfg, best: dict[float, tuple[float, float]], predictions: tuple[float, ...], chance: float = math.inf
          ) -> list[dict[str, float]]:  # fmt: skip
    """The confirmatory (alpha, learning rate) cells: the window's alphas, each at `lrs` rates
    `spacing` apart around the pilot's ridge (each seed then at its own phase: `seed_lr_factors`)."""
    r = cfg.search.ridge
    offsets = np.arange(r.lrs) - (r.lrs - 1) / 2
    lo, hi = cfg.search.learning_rate_range
    out = []
    for alpha in window(best, r.per_octave, r.window, predictions):
        centre = ridge_at(best, alpha, chance)
        out += [
            {"alpha": float(alpha), "learning_rate": float(np.clip(centre * r.spacing**k, lo, hi))} for k in offsets
        ]
    return out


def envelope(r) -> tuple[tuple[float, float], tuple[float, float]]:
    """The alpha and learning-rate ranges every confirmatory cell lies in (search.alpha_range and
    search.learning_rate_range)."""
    reach = r.spacing ** (r.lrs / 2 + 1)
    wide = 2 ** (r.window / r.per_octave)
    (alo, ahi), (llo, lhi) = ALPHA_LIMITS, LEARNING_RATE_LIMITS
    alphas = (max(min(r.alphas) / wide, alo), min(max(r.alphas) * wide, ahi))
    return alphas, (max(r.pilot_lr_range[0] / reach, llo), min(r.pilot_lr_range[1] * reach, lhi))


def censored_means(values: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Each cell's mean over the members that count (the last axis; not diverged, finite); NaN
    where they are not most of its members: the cell is beyond the stability edge. The one rule
    halving, the estimator (profile.py) and the report's raw table read cells by."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counted, values, 0.0).sum(-1) / counted.sum(-1)
    return np.where(counted.sum(-1) * 2 > values.shape[-1], mean, np.nan)


def halved(r, chunk: int, means: np.ndarray, alphas: list[float], alive: set[int]) -> set[int]:
    """The trials that leave at `chunk` (the rung): every cell of an alpha beyond its `keep` best by
    `means` (censored_means: a cell beyond the stability edge is worst; ties: the first stays)."""
    if chunk != r.rung:
        return set()
    out = set()
    for alpha in set(alphas):
        mine = [i for i in alive if alphas[i] == alpha]
        ranked = sorted(mine, key=lambda i: (math.inf if not np.isfinite(means[i]) else means[i], i))
        out.update(ranked[r.keep :])
    return out


class CellSampler(optuna.samplers.GridSampler):
    """A list of (alpha, learning rate) cells run as Optuna's grid sampler runs its grid, each trial
    taking an unvisited cell. Optuna's grid is a product of per-parameter values, and a ridge's cells
    are not; the sampler grids over cell indices and answers each parameter from the trial's cell,
    read from the `grid_id` system attribute Optuna's GridSampler sets in `before_trial`."""

    def __init__(self, cells: list[dict[str, float]], seed: int):
        super().__init__({"cell": list(range(len(cells)))}, seed=seed)
        self._cells = cells

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._cells[trial.system_attrs["grid_id"]][param_name]

    def after_trial(self, study, trial, state, values) -> None:
        pass  # see search._GridSampler: `search.trials` ends a study


def _nearest(alphas, value: float) -> float:
    return min(alphas, key=lambda a: abs(math.log(a / value)))
