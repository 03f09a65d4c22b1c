"""Extrapolating a probe's optimum to the limit theory speaks of: infinite width, or a vanishing input.

At finite width the probes are biased: the log of a mean of squares drifts below the log of its
expectation by O(1/n) per layer (Hanin & Rolnick 2018), so a probe's zero sits above the
infinite-width theory by about b/n. With faint inputs a tanh net sits near the q -> 0 edge of
chaos, displaced by O(q1). A series (search.series: one study per width, or per probe input
scale s, q1 proportional to s^2) measures alpha*(x); weighted least squares on
log alpha*(x) = log a + b x gives the intercept a, which is judged against the predictions at
the limit with the pre-registered `verdict.series_rope` (docs/theory.md, "Finite width").
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from research import activations, asrun, estimate, models, predictions, studies, verdicts

AXES = {"width": "1/width", "probe_input_scale": "input scale^2"}


@dataclasses.dataclass(frozen=True)
class Extrapolation:
    """One series: alpha* at each point, the intercept at x -> 0 and the verdicts on it."""

    series: str
    axis: str  # what x is: "1/width" or "input scale^2"
    x: list[float]
    alphas: list[float]  # alpha*(x)
    ses: list[float]  # standard errors of log alpha*(x)
    intercept: float  # alpha* as x -> 0
    se: float  # of log intercept
    df: float
    slope: float  # b: log alpha*(x) - log intercept = b x
    slope_se: float
    slope_sign: str  # b against its prediction (finite_width.py), or where none is derived its sign's
    verdicts: list[verdicts.Verdict]
    slope_predicted: float | None = None  # b to first order in 1/n, where finite_width.py derives it
    note: str = ""  # what the intercept tests

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The intercept's interval at `level` (t on the fit's degrees of freedom, in log alpha)."""
        half = estimate.t_quantile(0.5 + level / 2, self.df) * self.se
        return self.intercept * math.exp(-half), self.intercept * math.exp(half)


def fit(x, log_alphas, ses) -> tuple[float, float, float, float]:
    """(a, se(a), b, se(b)) of log alpha*(x) = a + b x by weighted least squares (weights 1/se^2)."""
    design = np.stack([np.ones(len(x)), np.asarray(x, float)], axis=1)
    w = 1.0 / np.asarray(ses, float) ** 2
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    coef = cov @ design.T @ (w * np.asarray(log_alphas, float))
    return float(coef[0]), math.sqrt(cov[0, 0]), float(coef[1]), math.sqrt(cov[1, 1])


def series(analyses: list[verdicts.Analysis]) -> list[Extrapolation]:
    """Every series among `analyses` with two or more members estimated."""
    groups: dict[str, list[verdicts.Analysis]] = {}
    for analysis in analyses:
        if studies.in_series(analysis.cfg) and analysis.estimate.alpha is not None:
            groups.setdefault(studies.series_name(analysis.cfg), []).append(analysis)
    return [
        _extrapolate(name, sorted(members, key=lambda m: studies.series_x(m.cfg)))
        for name, members in sorted(groups.items())
        if len(members) >= 2
    ]


def _extrapolate(name: str, members: list[verdicts.Analysis]) -> Extrapolation:
    x = [studies.series_x(m.cfg) for m in members]
    ests = [m.estimate for m in members]
    a, se_a, b, se_b = fit(x, [math.log(e.alpha) for e in ests], [e.se for e in ests])
    df = min(e.df for e in ests)
    first = members[0]
    field = first.cfg.search.series.field
    moment = first.input_moment
    if field == "probe_input_scale" and moment is not None:  # the limit: a vanishing input
        moment = (np.asarray(moment) * 1e-8).tolist()
    compared, _ = predictions.compared(first.cfg, moment, limit=True)
    rope, level, t = float(first.cfg.verdict.series_rope), verdicts.rule(first.cfg)[2], estimate.t_quantile(0.975, df)
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
    shift = asrun.width_shift(first.cfg) if field == "width" else None
    predicted = None if shift is None else shift * models.width(first.cfg.model)  # b: the shift is b / n
    if predicted is None:
        judged_slope = _sign(field, b, se_b * t)
    else:
        half = estimate.t_quantile(0.5 + level / 2, df) * se_b
        region = float(first.cfg.verdict.series_slope_rope) * abs(predicted)
        verdict = verdicts.three_way(b - half, b + half, predicted - region, predicted + region)
        judged_slope = f"predicted {predicted:+.3g}: {verdict}"
    homogeneous = field == "width" and activations.get(first.cfg.model.activation).homogeneous
    note = ("a check of the pipeline: for a homogeneous activation the infinite-width optimum is algebraic"
            if homogeneous else "")  # fmt: skip
    return Extrapolation(name, AXES[field], x, [e.alpha for e in ests], [e.se for e in ests], math.exp(a), se_a,
                         df, b, se_b, judged_slope, judged, predicted, note)  # fmt: skip


def _sign(field: str, slope: float, half: float) -> str:
    """Finite width moves a probe's zero up (b > 0, section 5 of docs/theory.md); is that resolved?"""
    if field != "width" or abs(slope) <= half:
        return "unresolved" if field == "width" else "not predicted"
    return "positive, as predicted" if slope > 0 else "negative, against the prediction"
