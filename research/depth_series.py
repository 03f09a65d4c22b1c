"""How a trained optimum moves with depth: the exponent of alpha*(L) across studies that differ only in
their depth, judged against each rule's (docs/theory.md section 10: Fixup's branch scale goes as 1/L).

Studies of one experiment run at several `model.depth` values (`experiment.py:depth=4`, `:depth=16`)
form a series when some rule of their family moves with depth. Weighted least squares on
log alpha*(L) = a + s log L (the resolved depths, weights 1/se^2) gives the exponent s; each rule's
exponent, read off its predictions at the series' end depths, is judged against it with the
pre-registered `verdict.series_slope_rope` as a region on the exponent. Series that differ only in
their seeds are replications (replication.py): a verdict they do not all give is inconclusive.
"""

from __future__ import annotations

import dataclasses
import math

from research import estimate, extrapolate, objectives, predictions, replication, studies, verdicts


@dataclasses.dataclass(frozen=True)
class DepthSeries:
    """One experiment's trained optimum at each depth, its fitted exponent and the verdict on each rule's."""

    series: str  # "<experiment stem>[-c<hash> for other seeds] (<objective>)"
    seed_offset: int
    depths: list[int]
    alphas: list[float | None]  # alpha*(L); None where that depth's optimum is not resolved
    intervals: list[tuple[float, float] | None]  # alpha*(L)'s 95% interval where resolved
    statuses: list[str]
    intercept: float | None  # a in log alpha* = a + s log L
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
    replications: dict[tuple[str, str], list[DepthSeries]] = {}
    for (objective, digest), members in groups.items():
        members = sorted(members, key=lambda m: m.cfg.model.depth)
        if len({m.cfg.model.depth for m in members}) < 2:
            continue
        rules = _rule_exponents(members[0].cfg, members[-1].cfg)
        if any(abs(s) > 1e-9 for _, _, s in rules):
            replicated = (objective, studies.config_hash(members[0].cfg, _VARYING + replication.SEED_KEYS))
            replications.setdefault(replicated, []).append(_fit(members, rules, digest))
    return sorted((d for group in replications.values() for d in _agreed(group)), key=lambda d: d.series)


_VARYING = ("name", "model.depth")  # what a series' members may differ in


def _key(a: verdicts.Analysis) -> tuple[str, str]:
    """What a series' members share: the whole config but its name and depth, and the objective."""
    return a.objective, studies.config_hash(a.cfg, varying=_VARYING)


def _agreed(group: list[DepthSeries]) -> list[DepthSeries]:
    """Replications of one series: a rule's verdict that not every run gives becomes inconclusive."""
    out = list(group)
    for i in range(len(group[0].rules)):
        said = [d.rules[i][3].split(" ")[0] for d in group]  # the verdict, less why it is inconclusive
        runs = replication.disagreement([d.seed_offset for d in group], said)
        if runs is None:
            continue
        for j, d in enumerate(out):
            rules = list(d.rules)
            rules[i] = (*rules[i][:3], f"inconclusive (not replicated: {runs})")
            out[j] = dataclasses.replace(d, rules=rules)
    return out


def _seeded(cfg) -> bool:
    """Whether the study runs on other seeds than the defaults (a replication)."""
    return any(_dotted(cfg, key) for key in replication.SEED_KEYS)


def _dotted(cfg, key: str):
    for part in key.split("."):
        cfg = cfg.get(part) if cfg is not None else None
    return cfg


def _rule_exponents(shallow, deep) -> list[tuple[str, float, float]]:
    """(rule, alpha at the shallowest depth, d log alpha / d log L between the shallowest and deepest)."""
    at = [predictions.for_model(c.model) for c in (shallow, deep)]
    span = math.log(deep.model.depth / shallow.model.depth)
    return [(name, alpha, math.log(at[1][name] / alpha) / span) for name, alpha in at[0].items()
            if alpha is not None and at[1].get(name) is not None]  # fmt: skip


def _fit(members: list[verdicts.Analysis], rules: list[tuple[str, float, float]], digest: str) -> DepthSeries:
    first = members[0]
    tag = f"-c{digest}" if _seeded(first.cfg) else ""
    name = f"{studies.depth_stem(first.cfg)}{tag} ({first.objective})"
    offset = int(first.cfg.search.seed_offset)
    resolved = [m for m in members if m.estimate.status == "ok" and m.estimate.alpha is not None]
    depths = [m.cfg.model.depth for m in members]
    alphas = [m.estimate.alpha if m in resolved else None for m in members]
    intervals = [m.estimate.interval() if m in resolved else None for m in members]
    statuses = [m.estimate.status for m in members]
    if len({m.cfg.model.depth for m in resolved}) < 2:
        judged = [(rule, a, s, "inconclusive (fewer than two depths resolved)") for rule, a, s in rules]
        return DepthSeries(name, offset, depths, alphas, intervals, statuses, None, None, None, math.inf, judged)
    x = [math.log(m.cfg.model.depth) for m in resolved]
    intercept, _, slope, se = extrapolate.fit(x, [math.log(m.estimate.alpha) for m in resolved],
                                      [m.estimate.se for m in resolved])  # fmt: skip
    df = min(m.estimate.df for m in resolved)
    level, rope = verdicts.rule(first.cfg)[2], float(first.cfg.verdict.series_slope_rope)
    half = estimate.t_quantile(0.5 + level / 2, df) * se
    judged = [(rule, a, s, verdicts.three_way(slope - half, slope + half, s - rope, s + rope)) for rule, a, s in rules]
    return DepthSeries(name, offset, depths, alphas, intervals, statuses, intercept, slope, se, df, judged)
