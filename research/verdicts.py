"""Pre-registered three-way verdicts: is the measured optimum equivalent to a prediction?

Each experiment declares before it runs (config section `verdict`, stored with the study) a
region of practical equivalence per objective: a relative tolerance on alpha. A prediction is
`equivalent` when the 90% interval of alpha* lies inside that region around it, `different`
when it lies wholly outside, else `inconclusive`: a wide interval proves nothing either way
(Kruschke 2018; Lakens 2017). For trained objectives the regret of using the prediction,
(loss there - the fitted minimum) / the minimum, is `near-optimal` when its 95% interval ends
below `verdict.regret_tolerance`, `costly` when it starts above, else `inconclusive`.
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections
import numpy as np
from scipy import stats

from research import estimate, objectives, predictions
from research.errors import number

VERDICTS = ("equivalent", "different", "inconclusive")


def default_config() -> ml_collections.ConfigDict:
    """The decision rule, fixed before the run: ROPE per objective, regret tolerance, levels."""
    cfg = ml_collections.ConfigDict()
    cfg.rope = ml_collections.ConfigDict({name: o.rope for name, o in objectives.REGISTRY.items()})
    cfg.regret_tolerance = 0.10  # relative excess loss at a prediction that still counts as near-optimal
    cfg.level = 0.90  # the interval the equivalence test reads (two one-sided 5% tests)
    cfg.series_rope = 0.01  # a series' intercept: infinite width, or vanishing input (extrapolate.py)
    return cfg


def validate(cfg) -> None:
    for name, value in cfg.rope.items():
        objectives.get(name)
        number(value, f"verdict.rope.{name}", "a relative tolerance in (0, 1)", lambda v: 0 < v < 1)
    number(cfg.regret_tolerance, "verdict.regret_tolerance", "a relative tolerance > 0", lambda v: v > 0)
    number(cfg.level, "verdict.level", "a probability in (0.5, 1)", lambda v: 0.5 < v < 1)
    number(cfg.series_rope, "verdict.series_rope", "a relative tolerance in (0, 1)", lambda v: 0 < v < 1)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One prediction (every theory that gives it) against one study's alpha*."""

    theories: str  # "he = forward", or "as run"
    alpha: float
    relative_error: float | None  # alpha* / prediction - 1
    error_interval: tuple[float, float] | None  # its 95% interval
    verdict: str  # equivalent | different | inconclusive
    regret: float | None = None  # trained objectives: relative excess loss at the prediction
    regret_interval: tuple[float, float] | None = None
    regret_verdict: str | None = None  # near-optimal | costly | inconclusive


def rule(cfg) -> tuple[float, float, float]:
    """(ROPE, regret tolerance, level) a study pre-registered; studies older than the rule get the
    registry's defaults."""
    defaults = default_config()
    stored = cfg.get("verdict") or defaults
    objective = cfg.search.objective
    rope = (stored.get("rope") or {}).get(objective, defaults.rope[objective])
    tolerance = stored.get("regret_tolerance", defaults.regret_tolerance)
    return float(rope), float(tolerance), float(stored.get("level", defaults.level))


def series_rope(cfg) -> float:
    """The region a series' intercept is judged with (the default for older studies)."""
    defaults = default_config()
    return float((cfg.get("verdict") or defaults).get("series_rope", defaults.series_rope))


def equivalence(log_ratio: float, se: float, df: float, rope: float, level: float) -> str:
    """Three-way verdict from log(alpha*/prediction), its standard error and t degrees of freedom."""
    half = stats.t.ppf(0.5 + level / 2, df) * se
    bound = math.log1p(rope)
    lo, hi = log_ratio - half, log_ratio + half
    if -bound <= lo and hi <= bound:
        return "equivalent"
    if hi < -bound or lo > bound:
        return "different"
    return "inconclusive"


def judge(est, predictions: list[tuple[str, float]], rope: float, level: float, regret_tolerance: float,
          trained: bool) -> list[Verdict]:  # fmt: skip
    """A verdict for each (theories, alpha) prediction against the estimate `est`."""
    out = []
    for names, alpha in predictions:
        if est.alpha is None or est.status == "flat":
            out.append(Verdict(names, alpha, None, None, "inconclusive"))
            continue
        log_ratio = math.log(est.alpha / alpha)
        lo, hi = est.interval(0.95)
        regret = _regret(est, alpha, regret_tolerance) if trained else (None, None, None)
        out.append(
            Verdict(
                names,
                alpha,
                math.expm1(log_ratio),
                (lo / alpha - 1, hi / alpha - 1),
                equivalence(log_ratio, est.se, est.df, rope, level),
                *regret,
            )  # fmt: skip
        )
    return out


def _regret(est, alpha: float, tolerance: float) -> tuple[float | None, tuple | None, str | None]:
    """Relative excess loss of the fitted log-loss curve at `alpha`, with a 95% interval from the
    estimate's replicates (each replicate resamples whole seeds: the comparison is paired)."""
    x = np.log(est.fit_alpha)
    if not x[0] <= math.log(alpha) <= x[-1]:
        return None, None, "outside the searched range"

    def excess(curve: np.ndarray) -> float:
        at = np.interp(math.log(alpha), x, curve)
        return float(math.expm1(at - np.nanmin(curve)))

    value = excess(est.fit_value)
    draws = np.array([excess(c) for c in est.replicate_curves if not np.all(np.isnan(c))])
    draws = draws[np.isfinite(draws)]
    if len(draws) < 2:
        return value, None, "inconclusive"
    half = stats.t.ppf(0.975, est.df) * float(np.std(draws, ddof=1)) * est.variance_scale
    lo, hi = max(value - half, 0.0), value + half
    verdict = "near-optimal" if hi < tolerance else ("costly" if lo > tolerance else "inconclusive")
    return value, (lo, hi), verdict


@dataclasses.dataclass(frozen=True)
class Analysis:
    """One study judged by its own pre-registered rule."""

    cfg: ml_collections.ConfigDict
    observations: estimate.Observations
    estimate: estimate.Estimate
    verdicts: list[Verdict]
    not_applicable: list[str]  # theories whose derivation does not cover this activation
    rope: float
    input_moment: list | None  # the probe inputs' mean square per position, as the study recorded it


def analyse(study) -> Analysis:
    """Estimate alpha* for an Optuna study and judge every prediction by the study's stored rule."""
    cfg = ml_collections.ConfigDict(study.user_attrs["config"])
    obs, est = estimate.for_study(study, cfg)
    moment = study.user_attrs.get("probe_input_moment")
    compared, skipped = predictions.compared(cfg, moment)
    rope, tolerance, level = rule(cfg)
    trained = objectives.get(cfg.search.objective).trained
    return Analysis(cfg, obs, est, judge(est, compared, rope, level, tolerance, trained), skipped, rope, moment)
