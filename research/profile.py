"""alpha* of a ridge design (ridge.py): each alpha's best learning rate, then the profile's minimum.

Per design alpha, the cells that trained to the end; a diverged member is censored (beyond the
stability edge: it leaves its cell's mean, and a cell where most seeds diverged leaves the
profile), never counted at chance level. The profile value of an alpha is the minimum over log lr
of a parabola fitted to the members of its best cell and of the finished cells beside it (each seed
at its own phase of the grid, with its own level), and alpha* the minimum of a cubic through the
best profile value, its neighbours and the lower next one: continuous, with no evaluation lattice.
Seeds are the resampling unit (each ran every cell, with its own batch order): the interval uses
Student's t on S - 1 degrees of freedom with the bootstrap variance scaled by S / (S - 1). The
regret of a prediction is cross-fitted: alpha* chosen on half the seeds, the loss read on the other
half, so picking the minimum of noisy values does not make it look smaller.
Every setting is the study's pre-registered `verdict.estimator`; `variants` are the analyses a
reviewer could have chosen instead, and a verdict they do not all give is fragile (verdicts.py).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from research import estimate, ridge

METHODS = {"lr_fit": ("parabola", "best"), "alpha_fit": ("cubic4", "parabola", "quadratic5"),
           "divergence": ("censor", "exclude_seeds"), "drop_lr": ("none", "lowest", "highest")}  # fmt: skip
_UNTRAINABLE = math.log(0.98)  # every alpha's profile within 2% of the chance loss: nothing trained


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the profile is read: the primary analysis or one of its variants."""

    lr_fit: str = "parabola"
    alpha_fit: str = "cubic4"
    divergence: str = "censor"
    drop_lr: str = "none"
    censored_above: float | None = None  # steps to a threshold: values at or above it never reached it

    def varied(self, change: str) -> Settings:
        """This analysis with one `field=value` change (a pre-registered variant)."""
        field, _, value = change.partition("=")
        return dataclasses.replace(self, **{field: value})


@dataclasses.dataclass(frozen=True)
class Cells:
    """A ridge study's finished cells as arrays: [A] design alphas, [A, K] log learning rates in
    increasing order (NaN: no cell), [A, K, S] log values and divergence flags, [S] what each
    seed adds to its cells' log lr (its phase of the grid)."""

    log_alpha: np.ndarray
    log_lr: np.ndarray
    values: np.ndarray
    diverged: np.ndarray
    seed_log_lr: np.ndarray

    @classmethod
    def of(cls, obs: estimate.Observations, design: tuple[float, ...] = ()) -> Cells:
        """`design`: the study's alphas; one whose every cell halving stopped is a row with none."""
        alphas = np.unique(np.round(np.concatenate([obs.log_alpha, np.log(np.asarray(design, float))]), 9))
        rows = [np.flatnonzero(np.isclose(obs.log_alpha, a, atol=1e-8)) for a in alphas]
        rows = [r[np.argsort(obs.log_lr[r])] for r in rows]
        k, s = max(max(len(r) for r in rows), 1), obs.values.shape[1]
        log_lr, values, diverged = np.full((len(rows), k), np.nan), np.full((len(rows), k, s), np.nan), \
            np.zeros((len(rows), k, s), bool)  # fmt: skip
        div = obs.diverged if obs.diverged is not None else np.zeros(obs.values.shape, bool)
        for i, r in enumerate(rows):
            log_lr[i, : len(r)], values[i, : len(r)], diverged[i, : len(r)] = obs.log_lr[r], obs.values[r], div[r]
        offsets = np.zeros(s) if obs.seed_log_lr is None else np.asarray(obs.seed_log_lr, float)
        return cls(alphas, log_lr, values, diverged, offsets)

    @property
    def n_seeds(self) -> int:
        return self.values.shape[-1]


@dataclasses.dataclass(frozen=True)
class Profile:
    """Readings of the cells, one per seed resample: per alpha the best lr's value and which cell
    it is, and alpha*."""

    value: np.ndarray  # [B, A] profile value (NaN: no cell trained; inf: none reached a threshold)
    best_lr: np.ndarray  # [B, A] index of the best cell
    log_lr_star: np.ndarray  # [B, A] where the lr profile is least; NaN where the cells censor it (a window's end)
    log_star: np.ndarray  # [B] NaN: no optimum
    at_end: np.ndarray  # [B] the best profile value has no finished alpha on one side


def read(cells: Cells, settings: Settings, chosen: np.ndarray, locate: bool = True) -> Profile:
    """The profile and (with `locate`) alpha* of `cells` for each row of seed indices `chosen` [B, S]."""
    values = np.moveaxis(cells.values[..., chosen], 2, 0)  # [B, A, K, S]
    diverged = np.moveaxis(cells.diverged[..., chosen], 2, 0)
    present = np.isfinite(cells.log_lr)[None]
    beyond = diverged.mean(-1) * 2 > 1  # most seeds diverged: the cell is beyond the stability edge
    ok = ~diverged & np.isfinite(values)
    if settings.divergence == "exclude_seeds":  # a seed that diverged in any cell that counts leaves its alpha
        bad = np.any(diverged & (present & ~beyond)[..., None], axis=2, keepdims=True)
        ok &= ~bad
    if settings.censored_above is not None:  # never reached: worse than any step count, not twice the steps
        capped = np.where(ok & (values < settings.censored_above), values, np.inf)
        mean = np.median(capped, axis=-1)
    else:
        mean = ridge.censored_means(values, ok)
    mean = _dropped(np.where(present, mean, np.nan), settings.drop_lr)
    value, best = _minima(mean)
    present_cells = ~np.isnan(mean)
    first, last = np.argmax(present_cells, -1), mean.shape[-1] - 1 - np.argmax(present_cells[..., ::-1], -1)
    interior = (best > first) & (best < last)
    at_best = np.take_along_axis(np.broadcast_to(cells.log_lr, mean.shape), best[..., None], -1)[..., 0]
    lr_star = np.where(interior, at_best, np.nan)
    if settings.lr_fit == "parabola" and settings.censored_above is None:  # counts of steps: the best cell's
        used = ok & present_cells[..., None] & np.isfinite(values)
        u = cells.log_lr[None, :, :, None] + cells.seed_log_lr[chosen][:, None, None, :]
        value, lr_star = _member_parabola(u, values, used, best, value)
    stars = [_optimum(cells.log_alpha, v, settings.alpha_fit) if locate else (math.nan, False) for v in value]
    return Profile(value, best, lr_star, np.array([s for s, _ in stars]), np.array([e for _, e in stars]))


def every_seed(cells: Cells) -> np.ndarray:
    return np.arange(cells.n_seeds)[None]


def _dropped(mean: np.ndarray, which: str) -> np.ndarray:
    """`mean` [B, A, K] with each alpha's lowest or highest finished learning rate left out."""
    if which == "none":
        return mean
    present = ~np.isnan(mean)
    index = np.argmax(present, axis=-1) if which == "lowest" else mean.shape[-1] - 1 - np.argmax(present[..., ::-1], -1)
    out = mean.copy()
    drop = present.sum(-1) > 1
    b, a = np.nonzero(drop)
    out[b, a, index[b, a]] = np.nan
    return out


def _member_parabola(u: np.ndarray, v: np.ndarray, used: np.ndarray, best: np.ndarray, least: np.ndarray
                     ) -> np.ndarray:  # fmt: skip
    """Per alpha, the minimum over log lr of a parabola fitted to the members of the best cell and
    of the finished cells beside it ([B, A, K, S] log lrs `u`, values `v`, mask `used`), each seed
    with its own level (seeds sit at their own phases of the grid, so together they trace the bowl
    between cells); the vertex is kept inside the lrs fitted. Where no upward parabola fits: `least`.
    Returns the values and the vertices' log lrs (NaN where none fits or it sits at a fitted end)."""
    k = np.arange(u.shape[2])[None, None, :, None]
    w = (used & (np.abs(k - best[..., None, None]) <= 1)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = w.sum(2, keepdims=True)
        centre = lambda a: a - (w * a).sum(2, keepdims=True) / per_seed  # noqa: E731
        x1, x2, y = (
            centre(np.where(w > 0, u, 0.0)),
            centre(np.where(w > 0, u * u, 0.0)),
            centre(np.where(w > 0, v, 0.0)),
        )
        s11, s12, s22 = ((w * a * b).sum((2, 3)) for a, b in ((x1, x1), (x1, x2), (x2, x2)))
        s1y, s2y = (w * x1 * y).sum((2, 3)), (w * x2 * y).sum((2, 3))
        det = s11 * s22 - s12 * s12
        b = (s22 * s1y - s12 * s2y) / det
        c = (s11 * s2y - s12 * s1y) / det
        n = w.sum((2, 3))
        level = (w * np.where(w > 0, v - b[..., None, None] * u - c[..., None, None] * u * u, 0.0)).sum((2, 3)) / n
        lo = np.where(w > 0, u, np.inf).min((2, 3))
        hi = np.where(w > 0, u, -np.inf).max((2, 3))
        vertex = np.clip(-b / (2 * c), lo, hi)
        fitted = level + b * vertex + c * vertex * vertex
    cells_used = (w.sum(3) > 0).sum(2)
    good = (cells_used >= 3) & (c > 0) & np.isfinite(fitted) & (det > 1e-12)
    interior = good & (vertex > lo + 1e-9) & (vertex < hi - 1e-9)
    return np.where(good, fitted, least), np.where(interior, vertex, np.nan)


def _minima(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per alpha the least cell value and the best cell's index; [B, A, K] -> [B, A] (NaN where no
    cell finished)."""
    filled = np.where(np.isnan(mean), np.inf, mean)
    best = np.argmin(filled, axis=-1)
    low = np.take_along_axis(filled, best[..., None], -1)[..., 0]
    return np.where(np.all(np.isnan(mean), axis=-1), np.nan, low), best


def _optimum(log_alpha: np.ndarray, value: np.ndarray, fit: str) -> tuple[float, bool]:
    """log alpha* from one profile and whether it lies at the design's end: the design alpha with the
    least value, moved to the vertex of a cubic (`cubic4`: through it, both neighbours and the lower
    next one) or parabola fitted near it when both neighbours finished; an unfinished neighbour
    (every cell diverged, or none at all) means the optimum may lie beyond it."""
    finite = np.isfinite(value)
    if finite.sum() < 3:
        return math.nan, False
    i = int(np.argmin(np.where(finite, value, np.inf)))
    for side in (i - 1, i + 1):
        if not 0 <= side < len(value) or np.isnan(value[side]):
            return float(log_alpha[i]), True
    if not (finite[i - 1] and finite[i + 1]):  # a neighbour never reached the threshold: bracketed
        return float(log_alpha[i]), False
    x, y = log_alpha, value
    lo, hi = x[i - 1], x[i + 1]
    run = _finite_run(finite, i)
    if fit == "cubic4" and run.stop - run.start >= 4:
        below = i - 2 >= run.start and (i + 2 >= run.stop or y[i - 2] < y[i + 2])
        start = i - 2 if below else i - 1
        coef = np.polyfit(x[start : start + 4], y[start : start + 4], 3)
        roots = np.roots(np.polyder(coef))
        minima = [r.real for r in roots if abs(r.imag) < 1e-12 and np.polyval(np.polyder(coef, 2), r.real) > 0
                  and lo <= r.real <= hi]  # fmt: skip
        return (float(minima[0]) if minima else float(x[i])), False
    near = _nearest(run, i, 5) if fit == "quadratic5" else slice(i - 1, i + 2)
    a, b, _ = np.polyfit(x[near], y[near], 2)
    if a <= 0:
        return float(x[i]), False
    return float(np.clip(-b / (2 * a), lo, hi)), False


def _finite_run(finite: np.ndarray, i: int) -> range:
    """The longest stretch of finite values around index i."""
    lo, hi = i, i + 1
    while lo > 0 and finite[lo - 1]:
        lo -= 1
    while hi < len(finite) and finite[hi]:
        hi += 1
    return range(lo, hi)


def _nearest(run: range, i: int, width: int) -> slice:
    start = min(max(i - width // 2, run.start), max(run.stop - width, run.start))
    return slice(start, min(start + width, run.stop))


def loss_at(log_alpha: np.ndarray, value: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The profile's value at log alpha `at` [...] for profiles `value` [..., A]: the parabola
    through the three finished design alphas nearest it (the value itself at a design alpha; NaN
    outside the finished ones, or where `at` is NaN)."""
    value = np.asarray(value, float)
    finite, at = np.isfinite(value), np.broadcast_to(np.asarray(at, float), value.shape[:-1])
    order = np.argsort(~finite, axis=-1, kind="stable")  # each row's finished alphas first, in order
    x = np.where(np.take_along_axis(finite, order, -1), log_alpha[order], np.inf)
    y = np.take_along_axis(value, order, -1)
    n = finite.sum(-1)
    i = np.clip((x < at[..., None]).sum(-1), 1, np.clip(n - 2, 1, value.shape[-1] - 2))
    pick = lambda a, k: np.take_along_axis(a, np.clip(i + k, 0, a.shape[-1] - 1)[..., None], -1)[..., 0]  # noqa: E731
    (x0, x1, x2), (y0, y1, y2) = (pick(x, k) for k in (-1, 0, 1)), (pick(y, k) for k in (-1, 0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (y0 * (at - x1) * (at - x2) / ((x0 - x1) * (x0 - x2))
               + y1 * (at - x0) * (at - x2) / ((x1 - x0) * (x1 - x2))
               + y2 * (at - x0) * (at - x1) / ((x2 - x0) * (x2 - x1)))  # Lagrange's form  # fmt: skip
    for xk, yk in ((x0, y0), (x1, y1), (x2, y2)):
        out = np.where(np.abs(xk - at) < 1e-9, yk, out)
    last = np.take_along_axis(x, np.maximum(n - 1, 0)[..., None], -1)[..., 0]
    inside = (n >= 3) & np.isfinite(at) & (at >= x[..., 0] - 1e-9) & (at <= last + 1e-9)
    return np.where(inside, out, np.nan)


@dataclasses.dataclass(frozen=True)
class Result:
    """One analysis: the profile of every seed, its seed resamples, alpha*'s spread over them, the
    status and the cross-fitted regret at each tested alpha."""

    cells: Cells
    profile: Profile  # of every seed (one row)
    replicates: Profile  # of each seed resample
    se: float
    df: float
    scale: float
    status: str
    regrets: tuple  # ((alpha, regret, its standard error), ...)


def analyse(obs: estimate.Observations, settings: Settings, chance: float | None, at: tuple[float, ...] = (),
            n_boot: int = 300, n_splits: int = 10, seed: int = 0, design: tuple[float, ...] = ()
            ) -> Result:  # fmt: skip
    """One analysis of a ridge study's observations (`chance`: the chance-level loss, for losses;
    `design`: its alphas, those halving stopped whole included)."""
    cells = Cells.of(obs, design)
    s = cells.n_seeds
    rng = np.random.default_rng(seed)
    boots = rng.integers(0, s, (n_boot, s))
    main, reps = read(cells, settings, every_seed(cells)), read(cells, settings, boots)
    finite = reps.log_star[np.isfinite(reps.log_star)]
    scale = math.sqrt(s / (s - 1))
    se = float(np.std(finite, ddof=1) * scale) if len(finite) > 2 else math.inf
    orders = np.array([rng.permutation(s) for _ in range(n_splits)]).reshape(n_splits, s)
    halves = [
        (orders[:, : s // 2], orders[:, s // 2 : 2 * (s // 2)]),
        (orders[:, s // 2 : 2 * (s // 2)], orders[:, : s // 2]),
    ]
    regrets = _regrets(cells, settings, at, halves, boots, scale)
    return Result(cells, main, reps, se, float(s - 1), scale, _status(main, reps, chance, s - 1, scale), regrets)


def _regrets(cells: Cells, settings: Settings, at: tuple, halves: list, boots: np.ndarray, scale: float) -> tuple:
    """((alpha, cross-fitted regret, its standard error), ...) for each alpha in `at`: alpha* chosen
    on half the seeds, the excess loss at `alpha` over the loss at that alpha* read on the other
    half, averaged over the splits; the same for each seed resample (its seeds split the same way)."""
    if not at:
        return ()
    every = np.concatenate([every_seed(cells), boots])  # [1 + B, S]
    stars, values = [], []
    for choose, measure in halves:
        chosen = read(cells, settings, every[:, choose].reshape(-1, choose.shape[1]))
        measured = read(cells, settings, every[:, measure].reshape(-1, measure.shape[1]), locate=False)
        stars.append(chosen.log_star.reshape(len(every), -1))
        values.append(measured.value.reshape(len(every), choose.shape[0], -1))
    stars, values = np.concatenate(stars, axis=1), np.concatenate(values, axis=1)  # [1 + B, 2n], [1 + B, 2n, A]
    return tuple(_regret(cells.log_alpha, alpha, stars, values, scale) for alpha in at)


def _regret(log_alpha: np.ndarray, alpha: float, stars: np.ndarray, values: np.ndarray, scale: float) -> tuple:
    excess = loss_at(log_alpha, values, math.log(alpha)) - loss_at(log_alpha, values, stars)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where no split found alpha*: NaN
        mean = np.nanmean(excess, axis=1)
    point, draws = float(np.expm1(mean[0])), np.expm1(mean[1:])
    draws = draws[np.isfinite(draws)]
    se = float(np.std(draws, ddof=1) * scale) if len(draws) > 2 else math.inf
    return float(alpha), point, se


def _status(main: Profile, reps: Profile, chance: float | None, df: float, scale: float) -> str:
    """'untrainable' (every alpha within 2% of the chance loss, or none reached the threshold), 'too
    few trials', 'flat' (no alpha is worse than the best by more than the seeds resolve: each
    difference over its resampled standard error below Student's t at 5% two-sided, Bonferroni
    over the alphas), 'edge' or 'ok'."""
    value = main.value[0]
    finite = np.isfinite(value)
    if (chance and finite.any() and np.all(value[finite] >= math.log(chance) + _UNTRAINABLE)) or (
            np.isinf(value).any() and not finite.any()):  # fmt: skip
        return "untrainable"
    if not math.isfinite(main.log_star[0]) or np.sum(~np.isnan(value)) < 5:
        return "too few trials"
    best = int(np.argmin(np.where(finite, value, np.inf)))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an alpha no resample finished: no z there
        diffs = reps.value - reps.value[:, best : best + 1]
        se = np.nanstd(np.where(np.isfinite(diffs), diffs, np.nan), axis=0, ddof=1) * scale
        z = (value - value[best]) / se
    others = finite & (np.arange(len(value)) != best)
    if not np.any(z[others] > estimate.t_quantile(1 - 0.025 / max(others.sum(), 1), df)):
        return "flat"
    return "edge" if main.at_end[0] else "ok"


def estimate_of(obs: estimate.Observations, estimator_cfg, chance: float | None, at: tuple[float, ...] = (),
                censored_above: float | None = None, design: tuple[float, ...] = ()) -> estimate.Estimate:  # fmt: skip
    """The study's pre-registered analysis (`verdict.estimator`) as an `estimate.Estimate`, with
    each variant's beside it (`variants`) and the cross-fitted regret at the alphas `at`."""
    primary = dataclasses.replace(Settings(**{f: estimator_cfg[f] for f in METHODS}), censored_above=censored_above)
    n_boot, n_splits = int(estimator_cfg.n_boot), int(estimator_cfg.splits)
    run = lambda settings: analyse(obs, settings, chance, at, n_boot, n_splits, seed=0, design=design)  # noqa: E731
    variants = {change: _as_estimate(obs, run(primary.varied(change)), {}) for change in estimator_cfg.variants}
    return _as_estimate(obs, run(primary), variants)


def _as_estimate(obs, result: Result, variants: dict) -> estimate.Estimate:
    cells, main = result.cells, result.profile
    star = float(main.log_star[0])
    decided = math.isfinite(star) and result.status in ("ok", "edge")  # a flat profile has no alpha* to print
    return estimate.Estimate(
        result.status, math.exp(star) if decided else None, result.se, result.df, result.scale,
        obs.n_trials, int(np.isfinite(obs.values).sum()), None, np.exp(cells.log_alpha), main.value[0],
        result.replicates.value, np.exp(main.log_lr_star[0]), np.exp(result.replicates.log_lr_star),
        (float(np.exp(np.nanmin(cells.log_lr))), float(np.exp(np.nanmax(cells.log_lr)))), None,
        _warnings(result), variants=variants, regrets=result.regrets, design="ridge",
    )  # fmt: skip


def _warnings(result: Result) -> tuple[str, ...]:
    """Where the optimum meets the design's limits: the stability edge or a window's end."""
    cells, main = result.cells, result.profile
    star = float(main.log_star[0])
    if not math.isfinite(star):
        return ()
    i = int(np.argmin(np.abs(cells.log_alpha - star)))
    j, out, alpha = int(main.best_lr[0, i]), [], math.exp(cells.log_alpha[i])
    above = j + 1 < cells.log_lr.shape[1] and np.isfinite(cells.log_lr[i, j + 1])
    if above and cells.diverged[i, j + 1].mean() > 0.5:
        out.append(f"at alpha {alpha:.3g} the best learning rate is the largest that did not diverge: the optimum"
                   " sits at the stability edge")  # fmt: skip
    if j in (0, int(np.sum(np.isfinite(cells.log_lr[i]))) - 1):
        out.append(f"at alpha {alpha:.3g} the best learning rate is at the end of the cells that trained to the end:"
                   " lr* there is censored by the design")  # fmt: skip
    return tuple(out)
