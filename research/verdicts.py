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
from scipy import special

from research import crossing, estimate, objectives, predictions, profile
from research.errors import choice, integer, number, require

VERDICTS = ("equivalent", "different", "inconclusive")


def default_config() -> ml_collections.ConfigDict:
    """The decision rule, fixed before the run: ROPE per objective, regret tolerance, levels."""
    cfg = ml_collections.ConfigDict()
    cfg.rope = ml_collections.ConfigDict({name: o.rope for name, o in objectives.REGISTRY.items()})
    cfg.regret_tolerance = 0.10  # relative excess loss at a prediction that still counts as near-optimal
    cfg.level = 0.90  # the interval the equivalence test reads (two one-sided 5% tests)
    cfg.series_rope = 0.01  # a series' intercept: infinite width, or vanishing input (extrapolate.py)
    cfg.series_slope_rope = 0.25  # width series: slope b, relative to its prediction; depth series: exponent, absolute
    # Trained studies are also judged on these objectives, read off the same stored curves
    # (objectives.py); steps_to_threshold counts steps until the training loss reaches loss_threshold.
    cfg.objectives = ("train_loss", "val_loss_early_stopped", "val_error_early_stopped")
    cfg.loss_threshold = 1.0
    cfg.lr_slope_rope = 0.25  # d log lr*/d log alpha against homogeneity's slope: relative tolerance
    cfg.alternatives = ()  # ((label, alpha), ...): competing conventions judged beside the theories
    # How a ridge design's trained studies are read (profile.py), and the variants a reviewer could
    # have chosen instead: a verdict is decisive only when every variant gives it.
    cfg.estimator = ml_collections.ConfigDict(
        {"lr_fit": "parabola", "alpha_fit": "cubic4", "divergence": "censor", "drop_lr": "none",
         "variants": ("lr_fit=best", "alpha_fit=parabola", "alpha_fit=quadratic5", "divergence=exclude_seeds",
                      "drop_lr=lowest", "drop_lr=highest"),
         "n_boot": 300, "splits": 10,
         # the smooth fit of other designs (estimate.py): its bandwidth candidates and near-edge factor
         "bandwidths": estimate.BANDWIDTHS, "near_edge": estimate.NEAR_EDGE,
         # a probe's zero (crossing.py): the trials each side of the sign change its line goes
         # through, and the counts a reviewer could have chosen instead
         "crossing_neighbours": 1, "crossing_variants": (2,)}
    )  # fmt: skip
    return cfg


def validate(cfg) -> None:
    for name, value in cfg.rope.items():
        objectives.get(name)
        number(value, f"verdict.rope.{name}", "a relative tolerance in (0, 1)", lambda v: 0 < v < 1)
    number(cfg.regret_tolerance, "verdict.regret_tolerance", "a relative tolerance > 0", lambda v: v > 0)
    number(cfg.level, "verdict.level", "a probability in (0.5, 1)", lambda v: 0.5 < v < 1)
    number(cfg.series_rope, "verdict.series_rope", "a relative tolerance in (0, 1)", lambda v: 0 < v < 1)
    number(cfg.series_slope_rope, "verdict.series_slope_rope", "a relative tolerance in (0, 1)", lambda v: 0 < v < 1)
    require(
        isinstance(cfg.objectives, tuple | list),
        f"verdict.objectives must be a tuple of names; got {cfg.objectives!r}.",
    )
    for name in cfg.objectives:
        require(objectives.get(name, "verdict.objectives").trained, f"verdict.objectives: {name!r} is not trained.")
    number(cfg.loss_threshold, "verdict.loss_threshold", "a loss > 0", lambda v: v > 0)
    ok = all(
        isinstance(a, tuple | list) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], int | float)
        and a[1] > 0
        for a in cfg.alternatives
    )  # fmt: skip
    require(ok, f"verdict.alternatives must be ((label, alpha > 0), ...); got {cfg.alternatives!r}.")
    number(cfg.lr_slope_rope, "verdict.lr_slope_rope", "a relative tolerance in (0, 1)", lambda v: 0 < v < 1)
    _validate_estimator(cfg.estimator)


def _validate_estimator(e) -> None:
    for field, options in profile.METHODS.items():
        if e[field] not in options:
            raise choice(f"verdict.estimator.{field}", e[field], options)
    require(isinstance(e.variants, tuple | list), f"verdict.estimator.variants must be a tuple; got {e.variants!r}.")
    for change in e.variants:
        field, _, value = str(change).partition("=")
        require(
            value in profile.METHODS.get(field, ()),
            f"verdict.estimator.variants: {change!r} is not field=value with a field of {sorted(profile.METHODS)}"
            " and one of its options.",
        )
    integer(e.n_boot, "verdict.estimator.n_boot", minimum=20)
    integer(e.splits, "verdict.estimator.splits")
    lo, hi, count = (tuple(e.bandwidths) + (None, None, None))[:3]
    require(
        len(e.bandwidths) == 3 and isinstance(count, int) and count >= 2 and 0 < lo < hi,
        f"verdict.estimator.bandwidths must be (first, last, count) with 0 < first < last and count >= 2;"
        f" got {e.bandwidths!r}.",
    )
    number(e.near_edge, "verdict.estimator.near_edge", "a factor >= 1", lambda v: v >= 1)
    integer(e.crossing_neighbours, "verdict.estimator.crossing_neighbours")
    require(
        isinstance(e.crossing_variants, tuple | list)
        and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in e.crossing_variants),
        f"verdict.estimator.crossing_variants must be a tuple of integers >= 1; got {e.crossing_variants!r}.",
    )


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
    fragile: str | None = None  # the pre-registered variants that disagreed with a decisive verdict
    p_equivalent: float | None = None  # one-sided p of the equivalence test (TOST's larger), for multiplicity.py
    p_different: float | None = None  # one-sided p of "outside the region"


def rule(cfg, objective: str | None = None) -> tuple[float, float, float]:
    """(ROPE, regret tolerance, level) a study pre-registered for `objective` (default: its own);
    an objective its rule does not name gets the registry's region."""
    objective = objective or cfg.search.objective
    rope = cfg.verdict.rope.get(objective, objectives.get(objective).rope)
    return float(rope), float(cfg.verdict.regret_tolerance), float(cfg.verdict.level)


def equivalence(log_ratio: float, se: float, df: float, rope: float, level: float) -> str:
    """Three-way verdict from log(alpha*/prediction), its standard error and t degrees of freedom."""
    half = estimate.t_quantile(0.5 + level / 2, df) * se
    bound = math.log1p(rope)
    return three_way(log_ratio - half, log_ratio + half, -bound, bound)


def three_way(lo: float, hi: float, low: float, high: float) -> str:
    """An interval [lo, hi] against a region [low, high]: inside, wholly outside, or neither."""
    if low <= lo and hi <= high:
        return "equivalent"
    if hi < low or lo > high:
        return "different"
    return "inconclusive"


def judge(est, predictions: list[tuple[str, float]], rope: float, level: float, regret_tolerance: float,
          trained: bool) -> list[Verdict]:  # fmt: skip
    """A verdict for each (theories, alpha) prediction against the estimate `est`; where the estimate
    carries pre-registered variants, a decisive verdict they do not all give becomes inconclusive
    and says which variant disagreed."""
    out = _judged(est, predictions, rope, level, regret_tolerance, trained)
    if not est.variants:
        return out
    others = {name: _judged(v, predictions, rope, level, regret_tolerance, trained) for name, v in est.variants.items()}
    for i, v in enumerate(out):
        disagree, changes = [], {}
        if v.verdict != "inconclusive":
            against = [f"{name} says {o[i].verdict}" for name, o in others.items() if o[i].verdict != v.verdict]
            disagree += [f"primary analysis {v.verdict}, " + ", ".join(against)] if against else []
            changes["verdict"] = "inconclusive" if against else v.verdict
        if v.regret_verdict in ("near-optimal", "costly"):
            against = [f"{name} says {o[i].regret_verdict}" for name, o in others.items()
                       if o[i].regret_verdict != v.regret_verdict]  # fmt: skip
            disagree += [f"primary analysis regret {v.regret_verdict}, " + ", ".join(against)] if against else []
            changes["regret_verdict"] = "inconclusive" if against else v.regret_verdict
        if disagree:
            out[i] = dataclasses.replace(v, fragile="; ".join(disagree), **changes)
    return out


_UNDECIDED = ("flat", "untrainable", "too few trials")  # statuses that decide nothing


def _judged(est, predictions: list[tuple[str, float]], rope: float, level: float, regret_tolerance: float,
            trained: bool) -> list[Verdict]:  # fmt: skip
    out = []
    for names, alpha in predictions:
        if est.alpha is None or est.status in _UNDECIDED:
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
                None,
                *p_values(log_ratio, est.se, est.df, rope),
            )  # fmt: skip
        )
    return out


def p_values(log_ratio: float, se: float, df: float, rope: float) -> tuple[float, float]:
    """(p of equivalence: the larger of the two one-sided tests that log alpha*/prediction lies inside
    the region; p of difference: the one-sided test that it lies outside), Student's t on `df`."""
    bound = math.log1p(rope)
    if not se or not math.isfinite(se):
        return 1.0, 1.0
    upper = lambda t: float(special.stdtr(df, -t))  # noqa: E731  P(T > t)
    return max(upper((log_ratio + bound) / se), upper((bound - log_ratio) / se)), upper((abs(log_ratio) - bound) / se)


def _regret(est, alpha: float, tolerance: float) -> tuple[float | None, tuple | None, str | None]:
    """Relative excess loss of the fitted log-loss curve at `alpha`, with a 95% interval from the
    estimate's replicates (each replicate resamples whole seeds: the comparison is paired); a ridge
    design's is cross-fitted (profile.py)."""
    if est.design == "ridge":
        return _cross_fitted(est, alpha, tolerance)
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
    half = estimate.t_quantile(0.975, est.df) * float(np.std(draws, ddof=1)) * est.variance_scale
    lo, hi = max(value - half, 0.0), value + half
    return value, (lo, hi), _regret_verdict(lo, hi, tolerance)


def _cross_fitted(est, alpha: float, tolerance: float) -> tuple[float | None, tuple | None, str | None]:
    found = [(value, se) for a, value, se in est.regrets if math.isclose(a, alpha)]
    if not found or not math.isfinite(found[0][0]):
        return None, None, "outside the searched range"
    value, se = found[0]
    if not math.isfinite(se):
        return value, None, "inconclusive"
    half = estimate.t_quantile(0.975, est.df) * se
    lo, hi = value - half, value + half
    return value, (lo, hi), _regret_verdict(lo, hi, tolerance)


def _regret_verdict(lo: float, hi: float, tolerance: float) -> str:
    return "near-optimal" if hi < tolerance else ("costly" if lo > tolerance else "inconclusive")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """One study judged by its own pre-registered rule."""

    cfg: ml_collections.ConfigDict
    objective: str
    observations: estimate.Observations
    estimate: estimate.Estimate
    verdicts: list[Verdict]
    not_applicable: list[str]  # theories whose derivation does not cover this activation
    rope: float
    input_moment: list | None  # each probe input's mean square per position, as the study recorded it
    lr_slope: dict | None = None  # with a searched lr: lr*(alpha)'s slope, homogeneity's, the verdict
    rule_note: str | None = None  # where the study's stored rule lacks a setting today's defaults supply
    chance: float | None = None  # the chance-level loss, for objectives that are losses


def analyse(record, objective: str | None = None, judged=None) -> Analysis:
    """Estimate alpha* for a study (a `studies.Record`) on `objective` (default: its own; a trained
    study's stored curves serve any trained objective) and judge every prediction by the study's
    stored rule (`judged`: `predictions.compared`, when already known)."""
    cfg = record.cfg
    objective = objective or cfg.search.objective
    moment = record.input_moment
    compared, skipped = judged or predictions.compared(cfg, moment)
    trained = objectives.get(objective).trained
    rope, tolerance, level = rule(cfg, objective)
    obs, est, chance = _estimate(record, objective, compared, rope)
    verdicts = judge(est, compared, rope, level, tolerance, trained)
    return Analysis(cfg, objective, obs, est, verdicts, skipped, rope, moment, judge_lr_slope(est, cfg, level),
                    rule_note(record.attrs.get("config") or {}), chance)  # fmt: skip


def _estimate(record, objective: str, compared, rope: float) -> tuple:
    """(observations, estimate, chance-level loss or None) by the study's design: a ridge design's
    profile (profile.py), a probe's zero (crossing.py), else the smooth fit (estimate.py)."""
    cfg, o, e = record.cfg, objectives.get(objective), record.cfg.verdict.estimator
    if o.signed:
        obs = estimate.from_trials(record.trials, o)
        est = crossing.locate(obs, neighbours=e.crossing_neighbours, variants=tuple(e.crossing_variants), rope=rope,
                              n_boot=e.n_boot)  # fmt: skip
        return obs, est, None
    ridge_design = o.trained and cfg.search.sampler == "ridge"
    chance, censored_above = _scale_of(record, objective) if ridge_design or (o.trained and cfg.search.arms) else (
        None, None)  # fmt: skip
    if not ridge_design:
        obs, est = estimate.for_trials(record.trials, cfg, objective)
        return obs, est, chance
    obs = estimate.from_trials(record.trials, o, cfg.train.chunk_steps, cfg.verdict.loss_threshold)
    design = record.attrs.get("design", {})
    factors, alphas = design.get("seed_lr_factors"), tuple(sorted({c[0] for c in design.get("cells", ())}))
    obs = dataclasses.replace(obs, seed_log_lr=None if factors is None else np.log(factors)[: obs.values.shape[1]])
    est = profile.estimate_of(obs, e, chance, tuple(a for _, a in compared), censored_above, alphas)
    return obs, est, chance


def rule_note(stored: dict) -> str | None:
    """One sentence when the study's stored rule predates a setting it is judged by (None: complete)."""
    missing = sorted(set(default_config().to_dict()) - set(stored.get("verdict", {})))
    if not missing:
        return None
    return (f"this study's stored rule has no verdict.{', verdict.'.join(missing)} (made by older code): judged by"
            " today's defaults there")  # fmt: skip


def _scale_of(record, objective: str) -> tuple[float | None, float | None]:
    """(the chance-level loss, for objectives that are losses; the value above which a count of
    steps never reached its threshold, for those that count steps)."""
    o = objectives.get(objective)
    if o.reduce == "steps_to":
        return None, math.log(record.cfg.train.steps) + 1e-6
    return (record.chance_loss if o.metric.endswith("loss") else None), None


def judge_lr_slope(est, cfg, level: float) -> dict | None:
    """The measured slope of lr*(alpha) (95% interval) against each of homogeneity's predictions,
    judged three ways at `level` with the study's `verdict.lr_slope_rope` (relative to each); None
    where the design censors lr* over too much of the range to measure a slope."""
    measured = est.lr_slope(0.95)
    if measured is None:
        return None
    predicted = predictions.lr_slopes(cfg) or {}
    rope = float(cfg.verdict.lr_slope_rope)
    _, lo, hi = est.lr_slope(level)
    judged = {name: three_way(lo, hi, p - rope * abs(p), p + rope * abs(p)) for name, p in predicted.items()}
    return {"slope": measured[0], "interval": measured[1:], "predicted": predicted, "verdicts": judged}


def analyse_all(record) -> list[Analysis]:
    """The study (a `studies.Record`) judged on each of its objectives (`judged_objectives`), its own
    first; none for a design's pilot (ridge.py), which places cells and tests nothing, nor for a
    study with no complete trial yet (a running one whose first rung pruned all it has finished)."""
    if record.cfg.search.stage or not any(t.state.name == "COMPLETE" for t in record.trials):
        return []
    judged = predictions.compared(record.cfg, record.input_moment)
    return [analyse(record, name, judged) for name in judged_objectives(record.cfg)]


def judged_objectives(cfg) -> tuple[str, ...]:
    """The objectives a study is judged on: its own, then (trained studies) `verdict.objectives`."""
    own = cfg.search.objective
    if not objectives.get(own).trained:
        return (own,)
    return (own, *(o for o in cfg.verdict.objectives if o != own))
