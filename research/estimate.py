"""alpha* from all trials of a study: a smooth fit, its minimiser, a bootstrap interval.

The optimum of a noisy objective is not the best trial. Every seed of every trial enters a
local quadratic regression of the objective on log alpha (bandwidth by 10-fold
cross-validation over trials); alpha* is the fit's minimiser, and trials resampled with replacement
give its 95% interval. Diverged seeds are left out of the fit and reported; a study with
too few or uninformative trials says so instead of returning a number it cannot support.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from research import objectives

_GRID = 241  # evaluation points of the fit across the searched log-alpha range
_BANDWIDTHS = np.array([0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0])  # in units of log alpha


@dataclasses.dataclass(frozen=True)
class Observations:
    """Per-seed objective values: x = log alpha (and log lr when searched jointly)."""

    log_alpha: np.ndarray  # [n]
    value: np.ndarray  # [n]
    trial: np.ndarray  # [n] trial index, the unit the bootstrap resamples
    log_lr: np.ndarray | None = None
    diverged_alpha: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    seed: np.ndarray | None = None  # [n] seed of each value; shared seeds are resampled too


@dataclasses.dataclass(frozen=True)
class Comparison:
    theory: str
    alpha: float | None
    relative_error: float | None  # alpha_theory / alpha* - 1
    covered: bool | None  # the interval covers the prediction
    verdict: str


@dataclasses.dataclass(frozen=True)
class Estimate:
    """alpha* with its interval and how much the data support it."""

    status: str  # "ok"; "edge" (at the searched range's end); "flat" (interval over half the range); "too few trials"
    alpha: float | None
    interval: tuple[float, float] | None
    band: tuple[float, float] | None  # alphas whose fitted objective is within `tolerance` of the best
    n_trials: int
    n_values: int
    bandwidth: float | None
    diverged_above: float | None  # smallest alpha with a diverged seed, if any
    fit_alpha: np.ndarray  # the fitted curve, for figures
    fit_value: np.ndarray
    comparisons: tuple[Comparison, ...] = ()

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["fit_alpha"], out["fit_value"] = self.fit_alpha.tolist(), self.fit_value.tolist()
        out["comparisons"] = [dataclasses.asdict(c) for c in self.comparisons]
        return out


def from_trials(trials: Sequence, signed: str | None = None) -> Observations:
    """Observations from Optuna trials (complete ones; every seed of each).

    `signed` names a probe statistic whose signed per-seed log-ratio (user attribute
    "log_slope") replaces the objective: its zero, not a minimum, is then the optimum.
    """
    xs, ys, ids, lrs, diverged, seeds = [], [], [], [], [], []
    for i, t in enumerate(trials):
        if t.state.name != "COMPLETE" or "alpha" not in t.params:
            continue
        values = (
            (t.user_attrs.get("log_slope", {}).get(signed) if signed else None)
            or t.user_attrs.get("seed_values")
            or [t.value]
        )
        flags = t.user_attrs.get("diverged") or [False] * len(values)
        seed_ids = t.user_attrs.get("seeds") or list(range(len(values)))
        for value, bad, seed in zip(values, flags, seed_ids, strict=False):
            if bad or value is None or not math.isfinite(value):
                diverged.append(t.params["alpha"])
                continue
            xs.append(math.log(t.params["alpha"]))
            ys.append(value)
            ids.append(i)
            seeds.append(seed)
            lrs.append(math.log(t.params["learning_rate"]) if "learning_rate" in t.params else np.nan)
    lr = np.asarray(lrs)
    return Observations(
        np.asarray(xs), np.asarray(ys, float), np.asarray(ids), None if np.all(np.isnan(lr)) else lr,
        np.asarray(diverged), np.asarray(seeds),
    )  # fmt: skip


def estimate(
    obs: Observations,
    predictions: Mapping[str, float | None] | None = None,
    *,
    alpha_range: tuple[float, float] | None = None,
    tolerance: float = 0.05,
    n_boot: int = 400,
    seed: int = 0,
    signed: bool = False,
) -> Estimate:
    """alpha*, its bootstrap 95% interval, the near-optimal band and each theory's verdict.

    `tolerance` is the near-optimal band's width as a fraction of the fitted objective's
    range over the searched alphas. With `signed`, the values are a signed log-ratio and
    alpha* is the fit's zero (the objective is its absolute value).
    """
    n_trials = len(np.unique(obs.trial))
    diverged_above = float(obs.diverged_alpha.min()) if obs.diverged_alpha.size else None
    lo, hi = (
        (np.log(alpha_range) if alpha_range else (obs.log_alpha.min(), obs.log_alpha.max()))
        if obs.log_alpha.size
        else (0, 0)
    )
    if diverged_above is not None:
        hi = min(hi, math.log(diverged_above))
    empty = np.zeros(0)
    if n_trials < 6 or len(np.unique(obs.log_alpha)) < 5:
        few = "too few trials"
        return Estimate(few, None, None, None, n_trials, len(obs.value), None, diverged_above, empty, empty,
                        _compare(predictions, None, None, few))  # fmt: skip
    grid = np.linspace(max(lo, obs.log_alpha.min()), min(hi, obs.log_alpha.max()), _GRID)
    bandwidth = _choose_bandwidth(obs)
    fit = _profile(obs, grid, bandwidth)
    curve = np.abs(fit) if signed else fit
    best, log_star = _optimum(grid, fit, signed)
    spread = np.nanmax(curve) - np.nanmin(curve)
    band = _band(grid, curve, tolerance * spread)
    noise = _noise(obs)
    minima = _bootstrap_optima(obs, grid, bandwidth, signed, n_boot, seed)
    interval = (float(np.exp(np.percentile(minima, 2.5))), float(np.exp(np.percentile(minima, 97.5))))
    alpha = float(np.exp(log_star))
    seeds = max(len(obs.value) / max(n_trials, 1), 1)
    wide = math.log(interval[1] / interval[0]) > 0.5 * (grid[-1] - grid[0])
    if wide or spread < 2 * noise / math.sqrt(seeds):  # the minimiser wanders: no optimum to report
        status = "flat"
    elif best in (0, len(grid) - 1):
        status = "edge"
    else:
        status = "ok"
    return Estimate(
        status, alpha, interval, band, n_trials, len(obs.value), bandwidth, diverged_above,
        np.exp(grid), curve, _compare(predictions, alpha, interval, status),
    )  # fmt: skip


def for_study(study, cfg, predictions: Mapping[str, float | None]) -> tuple[Observations, Estimate]:
    """The estimate for an Optuna study of experiment `cfg` (probe objectives: the signed zero)."""
    objective = objectives.get(cfg.search.objective)
    obs = from_trials(study.get_trials(deepcopy=False), signed=objective.statistic)
    return obs, estimate(obs, predictions, alpha_range=tuple(cfg.search.alpha_range), signed=objective.signed)


def _bootstrap_optima(obs: Observations, grid, bandwidth: float, signed: bool, n_boot: int, seed: int) -> list:
    """log alpha* of each bootstrap replicate (replicates with no fit anywhere are skipped)."""
    rng = np.random.default_rng(seed)
    minima = []
    for _ in range(n_boot):
        boot = _profile(_take(obs, _resample(obs, rng)), grid, bandwidth)
        if np.all(np.isnan(boot)):
            continue
        minima.append(_optimum(grid, boot, signed)[1])
    return minima


def _optimum(grid: np.ndarray, fit: np.ndarray, signed: bool) -> tuple[int, float]:
    """(grid index, log alpha) of the fit's minimum, or of its zero crossing nearest |fit|'s minimum."""
    best = int(np.nanargmin(np.abs(fit) if signed else fit))
    if not signed:
        return best, float(grid[best])
    crossings = np.flatnonzero(np.sign(fit[:-1]) * np.sign(fit[1:]) < 0)
    if not len(crossings):
        return best, float(grid[best])
    i = int(crossings[np.argmin(np.abs(crossings - best))])
    root = grid[i] - fit[i] * (grid[i + 1] - grid[i]) / (fit[i + 1] - fit[i])
    return int(np.argmin(np.abs(grid - root))), float(root)


def _compare(predictions, alpha, interval, status) -> tuple[Comparison, ...]:
    out = []
    for name, pred in (predictions or {}).items():
        if pred is None or alpha is None:
            out.append(Comparison(name, pred, None, None, "no prediction" if pred is None else status))
            continue
        covered = interval[0] <= pred <= interval[1]
        if status in ("flat", "too few trials"):
            verdict = status
        else:
            verdict = (
                "supported" if covered else ("refuted" if status == "ok" else "outside (optimum at the range edge)")
            )
        out.append(Comparison(name, pred, pred / alpha - 1.0, covered, verdict))
    return tuple(out)


def _resample(obs: Observations, rng: np.random.Generator) -> np.ndarray:
    """Rows of one bootstrap draw: trials with replacement and, when every trial ran the same
    seeds (common random numbers: the same weight draws at every alpha), seeds too, so the
    interval carries the seed-to-seed variation that no number of trials averages out."""
    trials = np.unique(obs.trial)
    picked_trials = rng.choice(trials, size=len(trials), replace=True)
    by_trial = {t: np.flatnonzero(obs.trial == t) for t in trials}
    if obs.seed is None or len(np.unique(obs.seed)) < 2:
        return np.concatenate([by_trial[t] for t in picked_trials])
    seeds = np.unique(obs.seed)
    picked_seeds = rng.choice(seeds, size=len(seeds), replace=True)
    rows = [by_trial[t][obs.seed[by_trial[t]] == s] for t in picked_trials for s in picked_seeds]
    return np.concatenate(rows)


def _take(obs: Observations, rows: np.ndarray) -> Observations:
    lr = None if obs.log_lr is None else obs.log_lr[rows]
    seed = None if obs.seed is None else obs.seed[rows]
    return Observations(obs.log_alpha[rows], obs.value[rows], obs.trial[rows], lr, seed=seed)


def _profile(obs: Observations, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """The fitted objective at each grid alpha; with a searched lr, the minimum over lr."""
    if obs.log_lr is None:
        return _local_quadratic(obs.log_alpha[:, None], obs.value, grid[:, None], np.array([bandwidth]))
    lr_grid = np.linspace(obs.log_lr.min(), obs.log_lr.max(), 25)
    points = np.stack(np.meshgrid(grid, lr_grid, indexing="ij"), -1).reshape(-1, 2)
    spread = np.array([bandwidth, bandwidth * (np.ptp(obs.log_lr) / max(np.ptp(obs.log_alpha), 1e-9))])
    x = np.stack([obs.log_alpha, obs.log_lr], axis=1)
    surface = _local_quadratic(x, obs.value, points, spread).reshape(len(grid), len(lr_grid))
    lowest = np.min(np.where(np.isnan(surface), np.inf, surface), axis=1)
    return np.where(np.isinf(lowest), np.nan, lowest)  # no data near any lr at this alpha


def _local_quadratic(x: np.ndarray, y: np.ndarray, at: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Gaussian-kernel weighted quadratic regression (no cross terms), evaluated at `at`."""
    d = (x[None, :, :] - at[:, None, :]) / bandwidth  # [m, n, k]
    w = np.exp(-0.5 * np.sum(d * d, axis=-1))  # [m, n]
    design = np.concatenate([np.ones(d.shape[:2] + (1,)), d, d * d], axis=-1)  # [m, n, 1 + 2k]
    gram = np.einsum("mn,mni,mnj->mij", w, design, design) + 1e-9 * np.eye(design.shape[-1])
    rhs = np.einsum("mn,mni,n->mi", w, design, y)
    enough = w.sum(axis=1) > 3.0  # too little data near a point: no estimate there
    coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
    return np.where(enough, coef[:, 0], np.nan)


def _choose_bandwidth(obs: Observations) -> float:
    """10-fold cross-validation over trials (whole trials held out) on a small set of bandwidths."""
    trials = np.unique(obs.trial)
    folds = np.array_split(np.random.default_rng(0).permutation(trials), min(10, len(trials)))
    scores = []
    for h in _BANDWIDTHS:
        err = []
        for fold in folds:
            held = np.isin(obs.trial, fold)
            if held.all():
                continue
            train = _take(obs, np.flatnonzero(~held))
            if obs.log_lr is None:
                pred = _local_quadratic(
                    train.log_alpha[:, None], train.value, obs.log_alpha[held][:, None], np.array([h])
                )
            else:
                x = np.stack([train.log_alpha, train.log_lr], 1)
                spread = np.array([h, h * (np.ptp(obs.log_lr) / max(np.ptp(obs.log_alpha), 1e-9))])
                pred = _local_quadratic(x, train.value, np.stack([obs.log_alpha[held], obs.log_lr[held]], 1), spread)
            err.append((pred - obs.value[held]) ** 2)
        err = np.concatenate(err)
        scores.append(np.nanmean(err) if np.isfinite(err).mean() > 0.8 else np.inf)
    return float(_BANDWIDTHS[int(np.argmin(scores))])


def _band(grid: np.ndarray, curve: np.ndarray, tolerance: float) -> tuple[float, float]:
    best = int(np.nanargmin(curve))
    inside = curve <= curve[best] + tolerance
    left, right = best, best
    while left > 0 and inside[left - 1]:
        left -= 1
    while right < len(grid) - 1 and inside[right + 1]:
        right += 1
    return float(np.exp(grid[left])), float(np.exp(grid[right]))


def _noise(obs: Observations) -> float:
    """Pooled within-trial sd of the seeds (0 when every trial has one seed)."""
    residuals = [obs.value[obs.trial == t] - obs.value[obs.trial == t].mean() for t in np.unique(obs.trial)]
    dof = sum(len(r) - 1 for r in residuals)
    return float(math.sqrt(sum(float(np.sum(r * r)) for r in residuals) / dof)) if dof > 0 else 0.0
