"""The objectives registry: what a study minimises, how its per-seed values arise, how to read them.

Search, estimation and the report all ask this module, so adding an objective is one entry
here. A trained objective is the final value of one of the trainer's metrics; a probe
objective is measured at initialisation as the log-ratio per layer of one signal statistic,
whose zero (not its minimum) is the optimum.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from research import probes
from research.errors import choice


@dataclasses.dataclass(frozen=True)
class Objective:
    """One objective: its name, whether it trains, and where its per-seed values come from."""

    name: str
    description: str
    metric: str | None = None  # trained: the Trainer metric whose last chunk value is minimised
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
NAMES = tuple(REGISTRY)


def get(name: str) -> Objective:
    """The registered objective `name`; an unknown name lists the accepted ones."""
    if name not in REGISTRY:
        raise choice("search.objective", name, NAMES)
    return REGISTRY[name]
