"""A probe's zero located where it is: a straight line through the trials beside the sign change.

The seed-mean log-ratio is a monotone crossing that may be kinked at the zero or nearly flat
around it; a smooth fit over the whole range (a local quadratic with a bandwidth of half an
octave) rounds a kink off and wanders on a flat stretch, and its interval does not see it. Here
the zero is where a least-squares line through the `neighbours` trials on each side of the
first upward sign change (bracket.crossing) meets zero. Seeds are the resampling units, as in
estimate.py: each replicate re-finds the sign change and refits. The slope of the line at the zero
is reported; where its interval holds 0, or replicates find no sign change, the status is
`flat` (no zero is located), and where the zero's interval is wider than the region of
equivalence the estimate says the curve is too flat to decide there. docs/theory.md section 6.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from research import bracket, estimate

_GRID = 241  # points of the piecewise-linear curve drawn in figures


def locate(obs: estimate.Observations, *, neighbours: int = 1, variants: tuple[int, ...] = (), rope: float = 0.02,
           n_boot: int = 300, seed: int = 0) -> estimate.Estimate:  # fmt: skip
    """alpha* (the zero of the probe's log-ratio), its standard error, the local slope and, for
    each count in `variants`, the same estimate with that many `neighbours`."""
    x, mean = means(obs)
    n_values = int(np.isfinite(obs.values).sum())
    empty = np.zeros(0)
    if len(x) < 4:
        return estimate.Estimate("too few trials", None, None, math.inf, 1.0, obs.n_trials, n_values, None, empty,
                                 empty, np.zeros((0, 0)))  # fmt: skip
    grid = np.linspace(x[0], x[-1], _GRID)
    root = _line_zero(x, mean, neighbours)
    resampled, df = estimate.replicates(obs, means, n_boot, seed)
    roots = np.array([_line_zero(*m, neighbours) for m in resampled])
    curves = np.array([np.interp(grid, *m) for m in resampled])
    scale = estimate.variance_scale(obs)
    found = np.isfinite(roots)
    se = float(np.std(roots[found], ddof=1) * scale) if found.sum() > 1 else math.inf
    t = estimate.t_quantile(0.975, df)
    near = _near(x, mean)  # the slope is read on fixed trials, the same in every replicate
    slope = _slope(x[near], mean[near])
    slope_half = t * float(np.std([_slope(m[0][near], m[1][near]) for m in resampled], ddof=1)) * scale
    warnings = [f"the log-ratio's slope at the zero is {slope:.3g} [{slope - slope_half:.3g}, "
                f"{slope + slope_half:.3g}] per unit log alpha"]  # fmt: skip
    if not math.isfinite(root) or found.mean() < 0.9 or abs(slope) <= slope_half:
        status, root = "flat", float(x[int(np.argmin(np.abs(mean)))])
    elif bracket.crossing(x, mean) is None:  # the zero lies beyond the alphas run
        status, root = "edge", float(x[int(np.argmin(np.abs(mean)))])
    else:
        status = "ok"
        if t * se > math.log1p(rope):
            warnings.append(f"too flat to locate the zero within the region (+-{rope:.0%}) at this many seeds")
    est = estimate.Estimate(status, math.exp(root), se, df, scale, obs.n_trials, n_values, None, np.exp(grid),
                            np.interp(grid, x, mean), curves, warnings=tuple(warnings), design="crossing")  # fmt: skip
    if variants:
        other = {f"neighbours={k}": locate(obs, neighbours=k, rope=rope, n_boot=n_boot, seed=seed) for k in variants}
        est = dataclasses.replace(est, variants=other)
    return est


def means(obs: estimate.Observations) -> tuple[np.ndarray, np.ndarray]:
    """(log alpha, seed-mean log-ratio) per distinct alpha, sorted; trials at one alpha pooled."""
    values = np.where(np.isfinite(obs.values), obs.values, 0.0)
    counts = np.isfinite(obs.values).sum(axis=1)
    x, where = np.unique(obs.log_alpha, return_inverse=True)
    total, n = np.bincount(where, values.sum(axis=1), len(x)), np.bincount(where, counts, len(x))
    keep = n > 0
    return x[keep], total[keep] / n[keep]


def _near(x: np.ndarray, mean: np.ndarray, each_side: int = 2) -> slice:
    """The trials `each_side` of the sign change (or of the end nearest zero): where the slope is read."""
    i = _crossing_or_end(x, mean)
    return slice(max(i - each_side + 1, 0), min(i + each_side + 1, len(x)))


def _crossing_or_end(x: np.ndarray, mean: np.ndarray) -> int:
    """The sign change's index, or without one the pair at the end nearest zero."""
    i = bracket.crossing(x, mean) if len(x) >= 2 else None
    if i is None:
        i = 0 if abs(mean[0]) < abs(mean[-1]) else len(x) - 2
    return i


def _slope(xs: np.ndarray, ys: np.ndarray) -> float:
    centre = xs.mean()
    return float(np.sum((xs - centre) * (ys - ys.mean())) / np.sum((xs - centre) ** 2))


def _line_zero(x: np.ndarray, mean: np.ndarray, neighbours: int) -> float:
    """log alpha where the least-squares line through the `neighbours` points each side of the sign
    change is zero (beyond the alphas run: extrapolated from the end nearest zero); NaN if flat."""
    take = _near(x, mean, neighbours)
    xs, ys = x[take], mean[take]
    slope = _slope(xs, ys)
    if slope == 0 or not math.isfinite(slope):
        return math.nan
    return float(xs.mean() - ys.mean() / slope)
