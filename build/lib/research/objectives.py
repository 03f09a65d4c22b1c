"""The objectives registry: what a study minimises, how its per-seed values arise, how to read them.

Search, estimation and the report all ask this module, so adding an objective is one entry
here. A trained objective reads one of the trainer's metrics off each seed's stored curve
(one value per chunk): its last value, its value at a budget ("train_loss_at_300"), its
minimum (early stopping), or the steps it took to fall below a threshold. Every trained study
stores the curves, so one training run is judged on all of them (`verdict.objectives`). A
probe objective is measured at initialisation as the log-ratio per layer of one signal
statistic, whose zero (not its minimum) is the optimum.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from research import probes
from research.errors import ConfigError, choice


@dataclasses.dataclass(frozen=True)
class Objective:
    """One objective: its name, whether it trains, and where its per-seed values come from."""

    name: str
    description: str
    metric: str | None = None  # trained: the Trainer metric whose curve gives the value
    reduce: str = "last"  # trained: "last", "at" (`step`), "early_stopped" (at the least val_loss), "steps_to"
    step: int = 0  # "at": the budget in steps
    statistic: str | None = None  # probe: the probes.Stats field whose log-ratio per layer is zeroed
    one_layer: bool = False  # probe: log(q_2 / q_1) with inputs scaled so that q_1 = 1
    rope: float = 0.10  # default region of practical equivalence, relative to the prediction (verdicts.py)

    @property
    def trained(self) -> bool:
        return self.metric is not None

    @property
    def signed(self) -> bool:
        """The estimator looks for the zero of a signed log-ratio (probes), not a minimum."""
        return self.statistic is not None

    def readable(self, curves: dict) -> bool:
        """Whether `seed_values` can read this objective off the stored `curves`."""
        needed = {self.metric} | ({"val_loss"} if self.reduce == "early_stopped" else set())
        return self.trained and needed <= set(curves)

    def seed_values(self, curves: dict, chunk_steps: int, threshold: float) -> np.ndarray:
        """One value per seed from the stored curves (metric -> [seeds, chunks], one value per
        chunk of `chunk_steps`): the last, the one at the budget, the one where val_loss was least,
        or the steps until the metric first fell to `threshold` (never: twice the run's steps)."""
        curve = np.asarray(curves[self.metric], float)
        chunks = curve.shape[1]
        if self.reduce == "last":
            return curve[:, -1]
        if self.reduce == "at":
            return curve[:, min(self.step // chunk_steps, chunks) - 1]
        if self.reduce == "early_stopped":
            val = np.asarray(curves["val_loss"], float)
            best = np.argmin(np.where(np.isfinite(val), val, np.inf), axis=1)
            return curve[np.arange(len(curve)), best]
        reached = np.where(np.isfinite(curve), curve, np.inf) <= threshold
        first = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, 2 * chunks)
        return (first * chunk_steps).astype(float)

    def log_ratios(self, stats: probes.Stats) -> dict[str, np.ndarray]:
        """Per-member signed log-ratio of every probe statistic; this objective's one as it defines it."""
        out = {name: np.asarray(probes.log_slope(getattr(stats, name))) for name in probes.Stats._fields}
        if self.one_layer:
            out[self.statistic] = np.log(np.asarray(stats.forward[:, 1]) / np.asarray(stats.forward[:, 0]))
        return out


REGISTRY: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("train_loss", "training loss after the last step", metric="train_loss"),
        Objective("val_loss", "validation loss after the last step", metric="val_loss"),
        Objective("val_error", "validation error after the last step", metric="val_error"),
        Objective(
            "val_loss_early_stopped", "least validation loss over the run's evaluations", "val_loss", "early_stopped"
        ),
        Objective(
            "val_error_early_stopped",
            "validation error where the validation loss was least (early stopping)",
            "val_error",
            "early_stopped",
        ),
        Objective(
            "steps_to_threshold",
            "steps until the training loss first falls to verdict.loss_threshold (never: twice the steps)",
            "train_loss",
            "steps_to",
        ),
        Objective("forward_log_ratio", "forward signal E[h^2]: log-ratio per layer", statistic="forward", rope=0.02),
        Objective(
            "backward_log_ratio", "backward gradient E[g^2]: log-ratio per layer", statistic="backward", rope=0.02
        ),
        Objective(
            "jacobian_log_gain", "input-output Jacobian gain: log-ratio per layer", statistic="jacobian", rope=0.02
        ),
        Objective(
            "forward_one_layer",
            "one layer's forward gain at unit input variance: log(q_2 / q_1)",
            statistic="forward",
            one_layer=True,
            rope=0.02,
        ),
    )
}
_AT_BUDGET = re.compile(r"(train_loss|val_loss|val_error)_at_([1-9][0-9]*)")  # a metric after N steps
NAMES = tuple(REGISTRY)
PATTERNS = ("train_loss_at_<steps>", "val_loss_at_<steps>", "val_error_at_<steps>")


def get(name: str, field: str = "search.objective") -> Objective:
    """The registered objective `name` (or a metric at a budget, "train_loss_at_300"); an unknown
    name lists the accepted ones."""
    if name in REGISTRY:
        return REGISTRY[name]
    match = _AT_BUDGET.fullmatch(str(name))
    if match is None:
        raise choice(field, name, (*NAMES, *PATTERNS))
    metric, step = match[1], int(match[2])
    return Objective(name, f"{metric} after {step} steps", metric, "at", step)


def check_budget(objective: Objective, steps: int, chunk_steps: int, field: str) -> None:
    """An objective at a budget must name a chunk boundary the run reaches (curves hold one value per chunk)."""
    if objective.reduce == "at" and (objective.step > steps or objective.step % chunk_steps):
        raise ConfigError(
            f"{field} {objective.name!r} needs a budget that is a multiple of train.chunk_steps ({chunk_steps})"
            f" and at most train.steps ({steps})."
        )
