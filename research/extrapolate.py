"""Finite-width extrapolation: a probe's alpha*(n) over widths n, fitted to log alpha* = a + b/n.

At finite width the probes are biased: the log of a mean of squares drifts below the log of its
expectation by O(1/n) per layer (Hanin & Rolnick 2018), so a probe's zero sits above the
infinite-width theory by about b/n. A width series (search.width_series: one study per width)
measures alpha*(n); weighted least squares on 1/n gives the intercept exp(a), which is what
mean-field theory predicts, and it is judged against the predictions with the pre-registered
`verdict.width_limit_rope` (docs/theory.md, "Finite width").
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from research import models, predictions, search, verdicts


@dataclasses.dataclass(frozen=True)
class Extrapolation:
    """One width series: alpha* per width, the infinite-width intercept and the verdicts on it."""

    series: str
    widths: list[int]
    alphas: list[float]  # alpha*(n)
    ses: list[float]  # standard errors of log alpha*(n)
    intercept: float  # alpha* as 1/n -> 0
    se: float  # of log intercept
    df: float
    slope: float  # b: log alpha*(n) - log intercept = b / n
    slope_se: float
    verdicts: list[verdicts.Verdict]


def fit(widths, log_alphas, ses) -> tuple[float, float, float, float]:
    """(a, se(a), b, se(b)) of log alpha*(n) = a + b/n by weighted least squares (weights 1/se^2)."""
    x = np.stack([np.ones(len(widths)), 1.0 / np.asarray(widths, float)], axis=1)
    w = 1.0 / np.asarray(ses, float) ** 2
    cov = np.linalg.inv(x.T @ (x * w[:, None]))
    coef = cov @ x.T @ (w * np.asarray(log_alphas, float))
    return float(coef[0]), math.sqrt(cov[0, 0]), float(coef[1]), math.sqrt(cov[1, 1])


def series(analyses: list[verdicts.Analysis]) -> list[Extrapolation]:
    """Every width series among `analyses` with two or more widths estimated."""
    groups: dict[str, list[verdicts.Analysis]] = {}
    for analysis in analyses:
        cfg = analysis.cfg
        if search.in_width_series(cfg) and analysis.estimate.alpha is not None:
            groups.setdefault(f"{cfg.name}-{cfg.profile}-{cfg.search.objective}", []).append(analysis)
    out = []
    for name, members in sorted(groups.items()):
        if len(members) >= 2:
            out.append(_extrapolate(name, sorted(members, key=lambda m: models.width(m.cfg.model))))
    return out


def _extrapolate(name: str, members: list[verdicts.Analysis]) -> Extrapolation:
    widths = [models.width(m.cfg.model) for m in members]
    ests = [m.estimate for m in members]
    a, se_a, b, se_b = fit(widths, [math.log(e.alpha) for e in ests], [e.se for e in ests])
    df = min(e.df for e in ests)
    last = members[-1]
    compared, _ = predictions.compared(last.cfg, last.input_moment)
    rope = verdicts.width_limit_rope(last.cfg)
    level = verdicts.rule(last.cfg)[2]
    t = stats.t.ppf(0.975, df)
    judged = []
    for theories, alpha in compared:
        lo, hi = (math.exp(a + k * se_a) / alpha - 1 for k in (-t, t))
        judged.append(
            verdicts.Verdict(
                theories,
                alpha,
                math.exp(a) / alpha - 1,
                (lo, hi),
                verdicts.equivalence(a - math.log(alpha), se_a, df, rope, level),
            )  # fmt: skip
        )
    return Extrapolation(name, widths, [e.alpha for e in ests], [e.se for e in ests], math.exp(a), se_a, df, b, se_b,
                         judged)  # fmt: skip
