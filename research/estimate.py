"""alpha* from all trials of a study: a smooth fit, its optimum, and an interval that holds.

Every trial's seeds enter a local quadratic regression on log alpha of log(loss), whose noise is
closer to constant (a probe's zero is located by crossing.py). The bandwidth is chosen by
leave-one-trial-out cross-validation. A diverged seed is one bounded outcome (its loss is the
chance level the trainer records), never a gap. When every trial ran the same seeds (common
random numbers) the seeds are the independent units: the interval resamples them (the bandwidth
re-chosen in each replicate) and, with few seeds, uses Student's t on S - 1 degrees of freedom
with the bootstrap variance scaled by S/(S - 1); tests/test_estimate.py checks its coverage on
simulated studies fitted to real ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import special

from research import objectives

_GRID = 241  # evaluation points of the fit across the searched log-alpha range
BANDWIDTHS = (0.05, 2.0, 12)  # candidate kernel widths, geometric (first, last, count) in log alpha
_COARSE = 4  # with a searched lr, the surface is evaluated at every 4th grid alpha
NEAR_EDGE = 1.5  # alpha* this close (as a factor) to the divergence edge is flagged


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile: scipy.special's, which scipy.stats' t.ppf calls (importing scipy.stats
    costs the quick commands a second)."""
    return special.stdtrit(df, p)


@dataclasses.dataclass(frozen=True)
class Observations:
    """Per-trial, per-seed values: rows are trials, columns seeds (NaN: no value)."""

    log_alpha: np.ndarray  # [T]
    values: np.ndarray  # [T, S]: log(loss) for trained objectives, the signed log-ratio for probes
    log_lr: np.ndarray | None = None  # [T] when the learning rate was searched jointly
    diverged: np.ndarray | None = None  # [T, S] bool
    shared_seeds: bool = True  # column s is the same seed in every trial
    seed_log_lr: np.ndarray | None = None  # [S] what seed s adds to every trial's log lr (a ridge design's phases)

    @property
    def n_trials(self) -> int:
        return len(self.log_alpha)

    def take(self, trials: np.ndarray, seeds: np.ndarray) -> Observations:
        lr = None if self.log_lr is None else self.log_lr[trials]
        div = None if self.diverged is None else self.diverged[np.ix_(trials, seeds)]
        offsets = None if self.seed_log_lr is None else self.seed_log_lr[seeds]
        return Observations(self.log_alpha[trials], self.values[np.ix_(trials, seeds)], lr, div, self.shared_seeds,
                            offsets)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Estimate:
    """alpha* with its sampling distribution, the fitted curve and what limits them."""

    status: str  # "ok"; "edge" (optimum at the searched range's end); "flat"; "too few trials"
    alpha: float | None
    se: float | None  # standard error of log alpha*
    df: float  # degrees of freedom of the t quantile (inf: normal)
    variance_scale: float  # sqrt(S / (S - 1)): what the replicates' sd is multiplied by
    n_trials: int
    n_values: int
    bandwidth: float | None
    fit_alpha: np.ndarray  # the fitted curve, for figures and regret
    fit_value: np.ndarray
    replicate_curves: np.ndarray  # [B, grid] fitted curves of the resampling replicates
    fit_lr: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))  # lr*(alpha) on fit_alpha
    replicate_lr: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))  # [B, grid]
    lr_range: tuple[float, float] | None = None  # the learning rates the study ran
    divergence_edge: tuple[float, float, float] | None = None  # alpha where half the seeds diverge, 95% CI
    warnings: tuple[str, ...] = ()
    variants: dict = dataclasses.field(default_factory=dict)  # pre-registered variant -> its Estimate
    regrets: tuple = ()  # ((alpha, cross-fitted regret, its standard error), ...) where the design has them
    design: str = "smooth"  # "smooth": the local fit here; "ridge": profile.py's reading of a ridge design

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        """The two-sided `level` interval of alpha*."""
        if self.alpha is None:
            return None
        half = t_quantile(0.5 + level / 2, self.df) * self.se
        return math.exp(math.log(self.alpha) - half), math.exp(math.log(self.alpha) + half)

    def near_optimal(self, tolerance: float = 0.1) -> tuple[float, float] | None:
        """The contiguous alphas around the minimum whose fitted loss is within a relative
        `tolerance` of it (trained objectives: the fit is of log loss)."""
        if self.alpha is None:
            return None
        inside = np.expm1(self.fit_value - np.nanmin(self.fit_value)) <= tolerance
        best = int(np.nanargmin(self.fit_value))
        left, right = best, best
        while left > 0 and inside[left - 1]:
            left -= 1
        while right < len(inside) - 1 and inside[right + 1]:
            right += 1
        return float(self.fit_alpha[left]), float(self.fit_alpha[right])

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if not f.name.startswith("replicate") and f.name != "variants"}  # fmt: skip
        for name in ("fit_alpha", "fit_value", "fit_lr"):
            out[name] = getattr(self, name).tolist()
        out["interval"] = self.interval()
        out["lr_slope"] = self.lr_slope()
        return out

    def lr_slope(self, level: float = 0.95) -> tuple[float, float, float] | None:
        """d log lr* / d log alpha (least squares over the alphas whose lr* lies inside the run's
        learning rates, where the fit exists), with a `level` interval from the replicates."""
        if not self.fit_lr.size or self.alpha is None:
            return None
        slope = _slope(self.fit_alpha, self.fit_lr, self.lr_range)
        draws = np.array([_slope(self.fit_alpha, r, self.lr_range) for r in self.replicate_lr])
        draws = draws[np.isfinite(draws)]
        if not math.isfinite(slope) or len(draws) < 2 or np.ptp(draws) == 0:
            return None  # no replicate moved it: lr* is pinned by the design, not measured
        half = t_quantile(0.5 + level / 2, self.df) * float(np.std(draws, ddof=1)) * self.variance_scale
        return slope, slope - half, slope + half


def from_trials(
    trials: Sequence, objective: objectives.Objective, chunk_steps: int = 1, threshold: float = 1.0
) -> Observations:
    """Observations from Optuna trials (complete ones; every seed of each). A trained objective
    other than the study's own is read off the stored curves (chunks of `chunk_steps` steps)."""
    rows, alphas, lrs, flags, seed_lists = [], [], [], [], []
    for t in trials:
        if t.state.name != "COMPLETE" or "alpha" not in t.params:
            continue
        if objective.signed:
            values = t.user_attrs.get("log_slope", {}).get(objective.statistic) or [t.value]
        else:
            if "curves" in t.user_attrs:
                raw = objective.seed_values(t.user_attrs["curves"], chunk_steps, threshold).tolist()
            else:  # a study from before curves were stored: its own objective only
                raw = t.user_attrs.get("seed_values") or [t.value]
            values = [math.log(v) if v is not None and v > 0 else math.nan for v in raw]
        rows.append([v if v is not None and math.isfinite(v) else math.nan for v in values])
        flags.append(t.user_attrs.get("diverged") or [False] * len(values))
        seed_lists.append(tuple(t.user_attrs.get("seeds") or range(len(values))))
        alphas.append(math.log(t.params["alpha"]))
        lrs.append(math.log(t.params["learning_rate"]) if "learning_rate" in t.params else math.nan)
    width = max((len(r) for r in rows), default=0)
    values = np.full((len(rows), width), np.nan)
    diverged = np.zeros((len(rows), width), bool)
    for i, (r, f) in enumerate(zip(rows, flags, strict=True)):
        values[i, : len(r)], diverged[i, : len(f)] = r, f
    lr = np.asarray(lrs)
    return Observations(
        np.asarray(alphas), values, None if np.all(np.isnan(lr)) else lr, diverged, len(set(seed_lists)) <= 1
    )


def estimate(
    obs: Observations,
    *,
    alpha_range: tuple[float, float] | None = None,
    n_boot: int = 300,
    seed: int = 0,
    bandwidths: tuple[float, float, int] = BANDWIDTHS,
    near_edge: float = NEAR_EDGE,
) -> Estimate:
    """alpha* (the fit's minimum), its standard error and replicates;
    `bandwidths` and `near_edge` are the study's pre-registered settings (verdict.estimator)."""
    candidates = np.geomspace(*bandwidths)
    n_values = int(np.isfinite(obs.values).sum())
    edge = _divergence_edge(obs, n_boot, seed)
    if obs.n_trials < 6 or len(np.unique(obs.log_alpha)) < 5:
        empty = np.zeros(0)
        return Estimate("too few trials", None, None, math.inf, 1.0, obs.n_trials, n_values, None, empty, empty,
                        np.zeros((0, 0)), divergence_edge=edge)  # fmt: skip
    lo, hi = np.log(alpha_range) if alpha_range else (obs.log_alpha.min(), obs.log_alpha.max())
    grid = np.linspace(max(lo, obs.log_alpha.min()), min(hi, obs.log_alpha.max()), _GRID)
    bandwidth = choose_bandwidth(obs, candidates)
    curve, lr_curve = _profile(obs, grid, bandwidth)
    best, log_star = optimum(grid, curve)
    pairs, df = replicates(obs, lambda o: _profile(o, grid, choose_bandwidth(o, candidates)), n_boot, seed)
    curves, lr_curves = [c for c, _ in pairs], [lr for _, lr in pairs]
    draws = np.array([optimum(grid, c)[1] for c in curves if not np.all(np.isnan(c))])
    scale = variance_scale(obs)
    se = float(np.std(draws, ddof=1) * scale) if len(draws) > 1 else math.inf
    se = max(se, _per_seed_spread(obs, grid, bandwidth))
    warnings = []
    spacing = np.diff(np.unique(obs.log_alpha))
    if len(draws) > 1 and np.ptp(draws) == 0 and len(spacing):
        # A quantised objective (steps counted per chunk) can put every resample's optimum on one
        # design point; the interval is then no finer than the design: a uniform error over one spacing.
        se = max(se, float(np.median(spacing)) / math.sqrt(12))
        warnings.append("every resample found the same optimum: the interval is the design's resolution")
    if bandwidth in (candidates[0], candidates[-1]):
        warnings.append(f"the cross-validated bandwidth {bandwidth:.3g} sits at the end of the candidates")
    spread = float(np.nanmax(curve) - np.nanmin(curve))
    noise = _noise(obs)
    if 2 * t_quantile(0.975, df) * se > 0.5 * (grid[-1] - grid[0]) or spread < 2 * noise / math.sqrt(
        max(n_values / obs.n_trials, 1)
    ):
        status = "flat"
    elif best in (0, len(grid) - 1):
        status = "edge"
    else:
        status = "ok"
    alpha = math.exp(log_star)
    if edge and alpha * math.exp(t_quantile(0.975, df) * se) * near_edge >= edge[1]:
        warnings.append(
            f"alpha* lies within a factor {near_edge:g} of the divergence edge (half the seeds diverge at"
            f" {edge[0]:.3g}): the optimum may be where training turns unstable, not a property of the init"
        )
    lr_range = None if obs.log_lr is None else (float(np.exp(obs.log_lr.min())), float(np.exp(obs.log_lr.max())))
    return Estimate(status, alpha, se, df, scale, obs.n_trials, n_values, bandwidth, np.exp(grid), curve,
                    np.asarray(curves), np.exp(lr_curve), np.exp(np.asarray(lr_curves)), lr_range, edge,
                    tuple(warnings))  # fmt: skip


def for_trials(trials: Sequence, cfg, objective: str | None = None) -> tuple[Observations, Estimate]:
    """The estimate from the trials of a study of experiment `cfg` on `objective` (default: its own)."""
    objective = objectives.get(objective or cfg.search.objective)
    obs = from_trials(trials, objective, cfg.train.chunk_steps, cfg.verdict.loss_threshold)
    e = cfg.verdict.estimator
    return obs, estimate(obs, alpha_range=tuple(cfg.search.alpha_range),
                         n_boot=e.n_boot, bandwidths=tuple(e.bandwidths), near_edge=e.near_edge)  # fmt: skip


def replicates(obs: Observations, statistic: Callable, n_boot: int, seed: int) -> tuple[list, float]:
    """`statistic` on resampled studies and the t degrees of freedom: shared seeds are the units
    (resampled with replacement, all trials kept); otherwise trials are."""
    rng = np.random.default_rng(seed)
    trials, seeds = np.arange(obs.n_trials), np.arange(obs.values.shape[1])
    by_seed = _by_seed(obs)
    out = []
    for _ in range(n_boot):
        if by_seed:
            out.append(statistic(obs.take(trials, rng.choice(seeds, len(seeds)))))
        else:
            out.append(statistic(obs.take(rng.choice(trials, len(trials)), seeds)))
    return out, float(len(seeds) - 1) if by_seed else math.inf


def _per_seed_spread(obs: Observations, grid: np.ndarray, bandwidth: float) -> float:
    """The standard error of the mean of each shared seed's own optimum: a floor for the resampled
    one, which underestimates when every resample's optimum sticks to one sharp feature (a
    loss that falls until a divergence wall)."""
    seeds = obs.values.shape[1]
    if not _by_seed(obs):
        return 0.0
    trials = np.arange(obs.n_trials)
    optima = [optimum(grid, c)[1] for c in
              (_profile(obs.take(trials, np.array([s])), grid, bandwidth)[0] for s in range(seeds))
              if not np.all(np.isnan(c))]  # fmt: skip
    return float(np.std(optima, ddof=1) / math.sqrt(len(optima))) if len(optima) >= 3 else 0.0


def variance_scale(obs: Observations) -> float:
    """sqrt(S / (S - 1)): the bootstrap over S units underestimates the variance by (S - 1) / S."""
    s = obs.values.shape[1] if _by_seed(obs) else obs.n_trials
    return math.sqrt(s / (s - 1))


def _by_seed(obs: Observations) -> bool:
    """Seeds are the resampling unit when every trial ran the same three or more of them."""
    return obs.shared_seeds and obs.values.shape[1] >= 3


def optimum(grid: np.ndarray, fit: np.ndarray) -> tuple[int, float]:
    """(grid index, log alpha) of the fit's minimum."""
    best = int(np.nanargmin(fit))
    return best, float(grid[best])


def _trial_means(obs: Observations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x [T, k], mean value [T], number of values [T]) of the trials that have any value."""
    count = np.isfinite(obs.values).sum(axis=1)
    keep = count > 0
    mean = np.nanmean(np.where(keep[:, None], obs.values, 0.0), axis=1)
    x = obs.log_alpha[:, None] if obs.log_lr is None else np.stack([obs.log_alpha, obs.log_lr], 1)
    return x[keep], mean[keep], count[keep].astype(float)


def _scales(obs: Observations, bandwidth: float) -> np.ndarray:
    if obs.log_lr is None:
        return np.array([bandwidth])
    return np.array([bandwidth, bandwidth * (np.ptp(obs.log_lr) / max(np.ptp(obs.log_alpha), 1e-9))])


def _profile(obs: Observations, grid: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """The fitted objective at each grid alpha and, with a searched lr, the minimum over lr and
    the log lr where it falls (lr*(alpha)); without, an empty lr curve."""
    x, y, n = _trial_means(obs)
    if obs.log_lr is None:
        return _local_quadratic(x, y, n, grid[:, None], _scales(obs, bandwidth))[0], np.zeros(0)
    # The surface on a coarser grid (a quarter of the alphas x 17 lrs), its profile interpolated
    # back onto `grid`: the fit is smooth on that scale, and the bootstrap redoes this 300 times.
    coarse = grid[::_COARSE] if (len(grid) - 1) % _COARSE == 0 else grid
    lr_grid = np.linspace(obs.log_lr.min(), obs.log_lr.max(), 17)
    points = np.stack(np.meshgrid(coarse, lr_grid, indexing="ij"), -1).reshape(-1, 2)
    surface = _local_quadratic(x, y, n, points, _scales(obs, bandwidth))[0].reshape(len(coarse), len(lr_grid))
    filled = np.where(np.isnan(surface), np.inf, surface)
    lowest, where = np.min(filled, axis=1), np.argmin(filled, axis=1)
    lowest, best_lr = np.where(np.isinf(lowest), np.nan, lowest), lr_grid[where]  # NaN: no data near any lr
    if coarse is grid:
        return lowest, np.where(np.isnan(lowest), np.nan, best_lr)
    profile = np.interp(grid, coarse, lowest)  # NaN spreads to the neighbouring interval, as it should
    return profile, np.where(np.isnan(profile), np.nan, np.interp(grid, coarse, best_lr))


def _slope(alpha: np.ndarray, lr: np.ndarray, lr_range: tuple[float, float], span: float = 0.5) -> float:
    """Least-squares slope of log lr against log alpha where lr lies strictly inside `lr_range`
    (at its ends lr* is censored by the design); NaN unless those alphas span at least `span` of
    the fitted log-alpha range (a few neighbouring points of the fine grid give slopes like -98)."""
    lo, hi = np.log(lr_range)
    log_lr, log_alpha = np.log(lr), np.log(alpha)
    inside = np.isfinite(log_lr) & (log_lr > lo + 1e-6) & (log_lr < hi - 1e-6)
    if inside.sum() < 3 or np.ptp(log_alpha[inside]) < span * np.ptp(log_alpha):
        return math.nan
    return float(np.polyfit(np.log(alpha[inside]), log_lr[inside], 1)[0])


def _local_quadratic(x, y, n, at, scale, leverage: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Gaussian-kernel weighted quadratic regression (no cross terms) evaluated at `at`, with case
    weights `n`; with `leverage`, also each fit's own weight on the point at its centre (the hat
    matrix diagonal when `at` is `x`)."""
    d = (x[None, :, :] - at[:, None, :]) / scale  # [m, t, k]
    w = n[None, :] * np.exp(-0.5 * np.sum(d * d, axis=-1))  # [m, t]
    design = np.concatenate([np.ones(d.shape[:2] + (1,)), d, d * d], axis=-1)
    weighted = np.swapaxes(design * w[..., None], 1, 2)  # [m, i, t]: batched BLAS, not einsum loops
    gram = weighted @ design + 1e-9 * np.eye(design.shape[-1])
    rhs = weighted @ y
    enough = w.sum(axis=1) / max(n.max(), 1.0) > 3.0  # too little data near a point: no estimate there
    if leverage:
        inverse = np.linalg.inv(gram)
        return np.where(enough, (inverse @ rhs[..., None])[:, 0, 0], np.nan), inverse[:, 0, 0]
    return np.where(enough, np.linalg.solve(gram, rhs[..., None])[:, 0, 0], np.nan), None


def choose_bandwidth(obs: Observations, candidates: np.ndarray) -> float:
    """Leave-one-trial-out cross-validation over the `candidates` (closed form through the hat diagonal)."""
    x, y, n = _trial_means(obs)
    scores = []
    for h in candidates:
        fit, h00 = _local_quadratic(x, y, n, x, _scales(obs, h), leverage=True)
        leverage = n * h00  # the kernel is 1 at the trial's own point
        loo = (y - fit) / np.maximum(1.0 - leverage, 1e-3)
        ok = np.isfinite(loo) & (leverage < 0.999)
        scores.append(np.sum(n[ok] * loo[ok] ** 2) / n[ok].sum() if ok.mean() > 0.8 else np.inf)
    return float(candidates[int(np.argmin(scores))])


def _noise(obs: Observations) -> float:
    """Pooled within-trial sd of the seeds (0 when every trial has one seed)."""
    counts = np.isfinite(obs.values).sum(axis=1, keepdims=True)
    centred = obs.values - np.nansum(obs.values, axis=1, keepdims=True) / np.maximum(counts, 1)
    dof = int(np.sum(np.isfinite(obs.values).sum(axis=1) - 1).clip(0))
    return float(math.sqrt(np.nansum(centred**2) / dof)) if dof > 0 else 0.0


def _divergence_edge(obs: Observations, n_boot: int, seed: int) -> tuple[float, float, float] | None:
    """The alpha where a logistic fit of divergence on log alpha crosses one half, with a 95%
    interval from resampling trials; None when nothing diverged or everything did. With a searched
    learning rate, only the lowest quarter of the learning rates counts: beyond that edge no
    learning rate of the design trains."""
    if obs.diverged is not None and obs.log_lr is not None:  # with lr profiled out: the wall of the
        stable = obs.log_lr <= np.quantile(obs.log_lr, 0.25)  # profile, where even the smallest lrs diverge
        obs = obs.take(np.flatnonzero(stable), np.arange(obs.values.shape[1]))
    if obs.diverged is None or not obs.diverged.any() or obs.diverged.all():
        return None
    rate = obs.diverged.mean(axis=1)
    center = _logistic_midpoint(obs.log_alpha, rate)
    rng = np.random.default_rng(seed + 1)
    draws = [_logistic_midpoint(obs.log_alpha[i], rate[i]) for i in (rng.choice(obs.n_trials, obs.n_trials)
                                                                   for _ in range(min(n_boot, 200)))]  # fmt: skip
    draws = np.array([d for d in draws if np.isfinite(d)])
    lo, hi = np.percentile(draws, [2.5, 97.5]) if len(draws) else (center, center)
    return float(np.exp(center)), float(np.exp(lo)), float(np.exp(hi))


def _logistic_midpoint(x: np.ndarray, rate: np.ndarray) -> float:
    """Where P(diverged) = 1/2 under a logistic model fitted by a few Newton steps."""
    if rate.min() == rate.max():
        return math.nan
    b = np.array([-np.mean(x), 1.0])
    X = np.stack([np.ones_like(x), x], 1)
    for _ in range(30):  # separable data never converge: the midpoint still settles between the groups
        p = 1 / (1 + np.exp(-np.clip(X @ b, -30, 30)))
        grad = X.T @ (rate - p)
        hess = X.T @ (X * (p * (1 - p) + 1e-6)[:, None]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        b = b + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(-b[0] / b[1]) if abs(b[1]) > 1e-9 else math.nan
