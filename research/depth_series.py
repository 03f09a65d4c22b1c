"""How a trained optimum moves with depth: the exponent of alpha*(L) across studies that differ only in
their depth, judged against each rule's (docs/theory.md section 10: Fixup's branch scale goes as 1/L).

Studies of one experiment run at several `model.depth` values (`experiment.py:depth=4`, `:depth=16`)
form a series when some rule of their family moves with depth. Weighted least squares on
log alpha*(L) = a + s log L (the resolved depths, weights 1/se^2) gives the exponent s; each rule's
exponent, read off its predictions at the series' end depths, is judged against it with the
pre-registered `verdict.series_slope_rope` as a region on the exponent.
"""

from __future__ import annotations

import dataclasses
import math

from research import estimate, extrapolate, objectives, predictions, studies, verdicts


@dataclasses.dataclass(frozen=True)
class DepthSeries:
    """One experiment's trained optimum at each depth, its fitted exponent and the verdict on each rule's."""

    series: str  # "<experiment stem> (<objective>)"
    depths: list[int]
    alphas: list[float | None]  # alpha*(L); None where that depth's optimum is not resolved
    statuses: list[str]
    exponent: float | None  # s in alpha* ~ L^s
    se: float | None
    df: float
    rules: list[tuple[str, float, float, str]]  # (rule, its alpha at the shallowest depth, its exponent, verdict)

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        """The exponent's interval at `level` (t on the fit's degrees of freedom)."""
        if self.exponent is None:
            return None
        half = estimate.t_quantile(0.5 + level / 2, self.df) * self.se
        return self.exponent - half, self.exponent + half


def series(analyses: list[verdicts.Analysis]) -> list[DepthSeries]:
    """Every depth series among the trained `analyses` with two or more depths."""
    groups: dict[tuple[str, str], list[verdicts.Analysis]] = {}
    for a in analyses:
        if objectives.get(a.objective).trained and "depth" in a.cfg.model and not a.cfg.search.arms:
            groups.setdefault(_key(a), []).append(a)
    found = []
    for members in groups.values():
        members = sorted(members, key=lambda m: m.cfg.model.depth)
        if len({m.cfg.model.depth for m in members}) < 2:
            continue
        rules = _rule_exponents(members[0].cfg, members[-1].cfg)
        if any(abs(s) > 1e-9 for _, _, s in rules):
            found.append(_fit(members, rules))
    return sorted(found, key=lambda d: d.series)


def _key(a: verdicts.Analysis) -> tuple[str, str]:
    """What a series' members share: the whole config but its name and depth, and the objective."""
    return a.objective, studies.config_hash(a.cfg, varying=("name", "model.depth"))


def _rule_exponents(shallow, deep) -> list[tuple[str, float, float]]:
    """(rule, alpha at the shallowest depth, d log alpha / d log L between the shallowest and deepest)."""
    at = [predictions.for_model(c.model) for c in (shallow, deep)]
    span = math.log(deep.model.depth / shallow.model.depth)
    return [(name, alpha, math.log(at[1][name] / alpha) / span) for name, alpha in at[0].items()
            if alpha is not None and at[1].get(name) is not None]  # fmt: skip


def _fit(members: list[verdicts.Analysis], rules: list[tuple[str, float, float]]) -> DepthSeries:
    first = members[0]
    name = f"{studies.depth_stem(first.cfg)} ({first.objective})"
    resolved = [m for m in members if m.estimate.status == "ok" and m.estimate.alpha is not None]
    depths = [m.cfg.model.depth for m in members]
    alphas = [m.estimate.alpha if m in resolved else None for m in members]
    statuses = [m.estimate.status for m in members]
    if len({m.cfg.model.depth for m in resolved}) < 2:
        judged = [(rule, a, s, "inconclusive (fewer than two depths resolved)") for rule, a, s in rules]
        return DepthSeries(name, depths, alphas, statuses, None, None, math.inf, judged)
    x = [math.log(m.cfg.model.depth) for m in resolved]
    _, _, slope, se = extrapolate.fit(x, [math.log(m.estimate.alpha) for m in resolved],
                                      [m.estimate.se for m in resolved])  # fmt: skip
    df = min(m.estimate.df for m in resolved)
    level, rope = verdicts.rule(first.cfg)[2], float(first.cfg.verdict.series_slope_rope)
    half = estimate.t_quantile(0.5 + level / 2, df) * se
    judged = [(rule, a, s, verdicts.three_way(slope - half, slope + half, s - rope, s + rope)) for rule, a, s in rules]
    return DepthSeries(name, depths, alphas, statuses, slope, se, df, judged)
