"""Named inits head to head: each arm at its best learning rate, and paired differences by seed.

A study with `search.arms` runs a few named alphas (He's 2 against Xavier's 1, say) on a grid of
learning rates with shared seeds. Each arm takes the learning rate with its lowest seed-mean
objective; the difference between two arms is the mean over seeds of log(value_b / value_a),
paired because both arms ran the same seeds, with a Student t interval on S - 1 degrees of
freedom. It is judged three ways against `verdict.regret_tolerance`: `equivalent` when the
interval of the relative difference lies inside +-tolerance, `different` when outside, else
`inconclusive`; two arms that both sit within 2% of the chance-level loss are `untrainable`, not
equivalent. Picking each arm's lr on the same seeds favours both arms alike.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from research import estimate, verdicts


@dataclasses.dataclass(frozen=True)
class Arm:
    """One named alpha at its best learning rate: per-seed values of the objective."""

    label: str
    alpha: float
    learning_rate: float | None
    values: list[float]  # per seed, in the objective's units (loss, steps, error)
    diverged: float  # fraction of its seeds that diverged at that learning rate
    trial_index: int  # the row of the observations it came from


@dataclasses.dataclass(frozen=True)
class Difference:
    """Arm `b` against arm `a`: exp(mean log(b / a)) - 1 over paired seeds, with its interval."""

    a: str
    b: str
    relative: float
    interval: tuple[float, float]
    seeds: int
    verdict: str


def arms(obs: estimate.Observations, named: list[tuple[str, float]]) -> list[Arm]:
    """Each named alpha's trials reduced to its best learning rate (lowest seed mean)."""
    out = []
    for label, alpha in named:
        rows = np.flatnonzero(np.isclose(np.exp(obs.log_alpha), alpha, rtol=1e-4))
        if not len(rows):
            continue
        means = np.nanmean(np.where(np.isfinite(obs.values[rows]), obs.values[rows], np.inf), axis=1)
        best = int(rows[int(np.argmin(means))])
        lr = None if obs.log_lr is None else float(np.exp(obs.log_lr[best]))
        diverged = float(obs.diverged[best].mean()) if obs.diverged is not None else 0.0
        out.append(Arm(label, alpha, lr, np.exp(obs.values[best]).tolist(), diverged, best))
    return out


def differences(found: list[Arm], tolerance: float, level: float = 0.95, chance: float | None = None
                ) -> list[Difference]:  # fmt: skip
    """Every arm against the first, paired by seed (`chance`: the chance-level loss, for losses)."""
    if not found:
        return []
    base, out = found[0], []
    stuck = lambda arm: chance is not None and float(np.mean(arm.values)) >= 0.98 * chance  # noqa: E731
    for arm in found[1:]:
        d = np.log(np.asarray(arm.values)) - np.log(np.asarray(base.values))
        d = d[np.isfinite(d)]
        if len(d) < 2:
            continue
        mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
        half = estimate.t_quantile(0.5 + level / 2, len(d) - 1) * se
        lo, hi = math.expm1(mean - half), math.expm1(mean + half)
        verdict = "untrainable" if stuck(base) and stuck(arm) else verdicts.three_way(lo, hi, -tolerance, tolerance)
        out.append(Difference(base.label, arm.label, math.expm1(mean), (lo, hi), len(d), verdict))
    return out


def head_to_head(analysis) -> dict | None:
    """A study with named arms (`search.arms`) on one objective it is judged on: each arm at its
    best learning rate and each against the first, by the study's own rule (None: no arms)."""
    named = [(str(label), float(alpha)) for label, alpha in analysis.cfg.search.arms]
    if not named:
        return None
    _, tolerance, level = verdicts.rule(analysis.cfg, analysis.objective)
    found = arms(analysis.observations, named)
    compared = [dataclasses.asdict(d) for d in differences(found, tolerance, level, analysis.chance)]
    return {"objective": analysis.objective, "level": level, "tolerance": tolerance,
            "arms": [dataclasses.asdict(arm) for arm in found], "differences": compared}  # fmt: skip
