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
   which resamples seeds, sees it. Successive halving along the learning rate: at each of
   the `rungs` (chunks) each alpha keeps `keep` consecutive cells around its best so far (seed-mean
   training loss), `keep_above` of them above it, the rest below, since early readings favour too
   large a rate (short-horizon bias, Wu et al. 2018); at the last rung only the `focus` alphas
   nearest the best and those beside each tested prediction go on. The others leave the population
   and are recorded as stopped at their rung; the estimator reads them as censored. The pilot
   halves once too: after a third of its steps each alpha keeps `pilot_keep` rates.
"""

from __future__ import annotations

import math

import ml_collections
import numpy as np
import optuna

from research.errors import ConfigError, integer, number, require
from research.init import ALPHA_LIMITS

LEARNING_RATE_LIMITS = (1e-8, 1e2)  # what float32 updates hold (search.py checks every lr range against it)


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
            "rungs": (1, 2),  # chunks after which the cells that fall behind leave ...
            "keep": (4, 3),  # ... each alpha keeping this many consecutive cells around its best ...
            "keep_above": (1, 0),  # ... this many of them at larger rates than the best
            "focus": 6,  # at the last rung, alphas nearest the best that go on (0: all)
            "pilot_keep": 4,  # rates per alpha the pilot keeps after a third of its steps (0: all)
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
    integer(r.pilot_seeds, "search.ridge.pilot_seeds")
    integer(r.pilot_steps, "search.ridge.pilot_steps")
    integer(r.phase_seed, "search.ridge.phase_seed", minimum=0)
    _validate_halving(r)


def _validate_halving(r) -> None:
    rungs, keep, above = (tuple(v) if isinstance(v, tuple | list) else v for v in (r.rungs, r.keep, r.keep_above))
    ints = lambda v: isinstance(v, tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)  # noqa: E731
    require(ints(rungs) and all(a < b for a, b in zip((0, *rungs), rungs, strict=False)),
            f"search.ridge.rungs must list increasing chunk numbers >= 1; got {r.rungs!r}.")  # fmt: skip
    require(ints(keep) and len(keep) == len(rungs) and all(3 <= k <= r.lrs for k in keep)
            and list(keep) == sorted(keep, reverse=True),
            f"search.ridge.keep must give one count per rung, non-increasing, each from 3 to search.ridge.lrs"
            f" ({r.lrs}); got {r.keep!r}.")  # fmt: skip
    require(ints(above) and len(above) == len(rungs) and all(0 <= a < k for a, k in zip(above, keep, strict=True)),
            f"search.ridge.keep_above must give one count per rung, each from 0 to below its keep; got"
            f" {r.keep_above!r}.")  # fmt: skip
    integer(r.focus, "search.ridge.focus", minimum=0)
    require(r.focus == 0 or 5 <= r.focus <= r.window,
            f"search.ridge.focus must be 0 (all alphas) or from 5 to search.ridge.window ({r.window});"
            f" got {r.focus!r}.")  # fmt: skip
    integer(r.pilot_keep, "search.ridge.pilot_keep", minimum=0)
    require(r.pilot_keep == 0 or 2 <= r.pilot_keep <= pilot_points(r),
            f"search.ridge.pilot_keep must be 0 (all) or from 2 to the pilot's {pilot_points(r)} learning rates;"
            f" got {r.pilot_keep!r}.")  # fmt: skip
    require(
        r.pilot_keep == 0 or r.pilot_steps % 3 == 0,
        f"search.ridge.pilot_steps ({r.pilot_steps}) must be a multiple of 3 when the pilot halves"
        " (search.ridge.pilot_keep > 0): it halves after a third of them.",
    )


def pilot_points(r) -> int:
    return 1 + round(math.log(r.pilot_lr_range[1] / r.pilot_lr_range[0]) / math.log(r.pilot_lr_factor))


def pilot_changes(cfg) -> dict:
    """The config changes that make a ridge study's pilot (a rectangular grid, few seeds, short)."""
    r, alphas = cfg.search.ridge, cfg.search.ridge.alphas
    n = pilot_points(r)
    halving = {"search.ridge.rungs": (1,), "search.ridge.keep": (r.pilot_keep,), "search.ridge.keep_above": (1,),
               "search.ridge.focus": 0, "train.chunk_steps": r.pilot_steps // 3} if r.pilot_keep else {}  # fmt: skip
    return {"search.stage": "pilot", "search.sampler": "grid", "search.alpha_range": (min(alphas), max(alphas)),
            "search.grid_points": len(alphas), "search.learning_rate_range": tuple(r.pilot_lr_range),
            "search.lr_points": n, "search.trials": len(alphas) * n, "search.trials_per_batch": len(alphas) * n,
            "search.seeds": r.pilot_seeds, "search.pruner": "none", "train.steps": r.pilot_steps,
            "train.chunk_steps": r.pilot_steps, "verdict.objectives": (), **halving}  # fmt: skip


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


def halved(r, chunk: int, means: np.ndarray, cells: list[tuple[float, float]], alive: set[int],
           tested: tuple[float, ...] = ()) -> set[int]:  # fmt: skip
    """The trials (cells: (alpha, lr) each) that leave at `chunk` if it is a rung: per alpha, all but
    `keep` consecutive cells around its best by `means` (censored_means: a cell beyond the stability
    edge is worst; ties: the smaller rate), `keep_above` of them above it; at the last rung, with
    `focus`, every cell of an alpha neither among the `focus` nearest the best alpha nor among the
    three nearest a `tested` prediction."""
    if chunk not in r.rungs:
        return set()
    rung = list(r.rungs).index(chunk)
    keep, above = r.keep[rung], r.keep_above[rung]
    score = lambda i: math.inf if not np.isfinite(means[i]) else float(means[i])  # noqa: E731
    out, best = set(), {}
    for alpha in sorted({cells[i][0] for i in alive}):
        mine = sorted((i for i in alive if cells[i][0] == alpha), key=lambda i: cells[i][1])
        b = min(range(len(mine)), key=lambda k: (score(mine[k]), k))
        start = min(max(b - (keep - 1 - above), 0), max(len(mine) - keep, 0))
        out.update(mine[:start] + mine[start + keep :])
        best[alpha] = score(mine[b])
    if r.focus and rung == len(r.rungs) - 1 and len(best) > r.focus:
        alphas = sorted(best)
        top = min(range(len(alphas)), key=lambda k: (best[alphas[k]], k))
        near = sorted(range(len(alphas)), key=lambda k: (abs(k - top), best[alphas[k]]))[: r.focus]
        for p in tested:
            near += sorted(range(len(alphas)), key=lambda k: abs(math.log(alphas[k] / p)))[:3]
        gone = {alphas[k] for k in range(len(alphas))} - {alphas[k] for k in near}
        out.update(i for i in alive if cells[i][0] in gone)
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
