"""The two-stage design of a probe objective: bracket the zero, then sample densely around it.

A probe's signed log-ratio crosses zero at its optimum, and the curve there may be kinked (GELU's
and SiLU's forward signal jumps from one fixed point to another) or nearly flat (softplus), so
16 alphas spread over a 64-fold range place the zero no better than their spacing. Two
pre-registered stages (`search.bracket`, stored with the study):

1. the bracket (its own study, `<name>-bracket`): `points` alphas on a geometric grid over the
   searched range, `seeds` seeds each; the first upward sign change of the seed-mean log-ratio
   brackets the zero (`crossing`);
2. the study: `dense` alphas evenly spaced in log alpha over that bracket, widened by `margin`
   of its width on each side, at `search.probe_seeds` seeds each; crossing.py locates the zero
   in them.
"""

from __future__ import annotations

import math

import ml_collections
import numpy as np

from research.errors import ConfigError, integer, number


def default_config() -> ml_collections.ConfigDict:
    """The two stages of a probe's zero design (used when search.sampler is 'bracket')."""
    return ml_collections.ConfigDict({"points": 16, "seeds": 8, "dense": 12, "margin": 0.5})


def validate(cfg) -> None:
    """One sentence on the first bad setting of search.bracket."""
    b = cfg.bracket
    integer(b.points, "search.bracket.points", minimum=3)
    integer(b.seeds, "search.bracket.seeds", minimum=1)
    integer(b.dense, "search.bracket.dense", minimum=4)
    number(b.margin, "search.bracket.margin", "a fraction of the bracket >= 0", lambda v: v >= 0)


def stage_changes(cfg) -> dict:
    """The config changes that make a probe study's bracket stage (a geometric grid, few seeds)."""
    b = cfg.search.bracket
    return {"search.stage": "bracket", "search.sampler": "grid", "search.grid_points": b.points,
            "search.trials": b.points, "search.trials_per_batch": b.points, "search.probe_seeds": b.seeds,
            "search.series.levels": ()}  # fmt: skip


def crossing(log_alpha: np.ndarray, mean: np.ndarray) -> int | None:
    """Index i (into the alphas sorted) where the seed-mean log-ratio changes sign between i and
    i + 1: the first upward change (the theory's rule, asrun.predict), else the first; None if none."""
    below, above = mean[:-1] < 0, mean[1:] >= 0
    ups = np.flatnonzero(below & above)
    if len(ups):
        return int(ups[0])
    any_change = np.flatnonzero(np.sign(mean[:-1]) * np.sign(mean[1:]) <= 0)
    return int(any_change[0]) if len(any_change) else None


def cells(cfg, log_alpha: np.ndarray, mean: np.ndarray) -> list[dict[str, float]]:
    """The dense stage's alphas from the bracket's seed-mean log-ratio `mean` at `log_alpha`
    (sorted): around its sign change, or, without one, around the end nearest zero."""
    b = cfg.search.bracket
    if len(log_alpha) < 2:
        raise ConfigError("the bracket stage has fewer than two finished alphas; rerun it (research sweep does).")
    i = crossing(log_alpha, mean)
    step = float(np.median(np.diff(log_alpha)))
    if i is None:
        end = int(np.argmin(np.abs(mean)))
        lo, hi = log_alpha[end] - step / 2, log_alpha[end] + step / 2
    else:
        lo, hi = log_alpha[i], log_alpha[i + 1]
    width = hi - lo
    return [{"alpha": math.exp(x)} for x in np.linspace(lo - b.margin * width, hi + b.margin * width, b.dense)]
