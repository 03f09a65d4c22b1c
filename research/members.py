"""The members of a population: their hyperparameters (`Population`), who is still training
(`Roster`) and their learning curves (`Curves`), each convertible to and from JSON for checkpoints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from research.errors import require

METRICS = ("train_loss", "val_loss", "val_error", "grad_norm")


@dataclasses.dataclass(frozen=True)
class Population:
    """Hyperparameters of P members: alpha per layer group, learning rate, seed."""

    alpha: Mapping[str, np.ndarray]
    learning_rate: np.ndarray
    seed: np.ndarray

    @property
    def size(self) -> int:
        return len(self.seed)

    @classmethod
    def create(cls, groups, alpha, learning_rate, seed) -> Population:
        """From scalars or per-member sequences; a scalar or [P] alpha applies to every group."""
        alpha_by_group = alpha if isinstance(alpha, Mapping) else {g: alpha for g in groups}
        size = max(np.size(v) for v in [*alpha_by_group.values(), learning_rate, seed])
        grow = lambda v, dtype: np.broadcast_to(np.asarray(v, dtype), (size,)).copy()  # noqa: E731
        pop = cls(
            {g: grow(alpha_by_group[g], np.float32) for g in groups},
            grow(learning_rate, np.float32),
            grow(seed, np.int32),
        )
        pop.validate(groups)
        return pop

    def validate(self, groups) -> None:
        require(set(self.alpha) == set(groups), f"alpha groups must be {sorted(groups)}; got {sorted(self.alpha)}.")
        for g, a in self.alpha.items():
            require(
                bool(np.all(np.isfinite(a) & (a > 0))), f"alpha[{g}] must be positive and finite; got {a.tolist()}."
            )
        lr = self.learning_rate
        require(
            bool(np.all(np.isfinite(lr) & (lr > 0))), f"learning_rate must be positive and finite; got {lr.tolist()}."
        )

    def to_json(self) -> dict:
        return {
            "alpha": {g: a.tolist() for g, a in self.alpha.items()},
            "learning_rate": self.learning_rate.tolist(),
            "seed": self.seed.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Population:
        return cls(
            {g: np.asarray(a, np.float32) for g, a in d["alpha"].items()},
            np.asarray(d["learning_rate"], np.float32),
            np.asarray(d["seed"], np.int32),
        )


@dataclasses.dataclass
class Curves:
    """Per-member learning curves so far: metric -> [P, chunks], and the per-step train loss."""

    chunk_metrics: dict[str, list[np.ndarray]] = dataclasses.field(default_factory=dict)
    step_loss: list[np.ndarray] = dataclasses.field(default_factory=list)

    def add(self, metrics: dict[str, np.ndarray]) -> None:
        for name in METRICS:
            self.chunk_metrics.setdefault(name, []).append(metrics[name])
        self.step_loss.append(metrics["step_loss"])

    def select(self, members: list[int]) -> Curves:
        """The curves of `members` only."""
        picked = Curves({k: [v[members] for v in vs] for k, vs in self.chunk_metrics.items()})
        picked.step_loss = [v[members] for v in self.step_loss]
        return picked

    def array(self, name: str) -> np.ndarray:
        if name == "step_loss":
            return np.concatenate(self.step_loss, axis=1) if self.step_loss else np.zeros((0, 0))
        return np.stack(self.chunk_metrics.get(name, []), axis=1)

    def to_json(self) -> dict:
        return {name: self.array(name).tolist() for name in [*self.chunk_metrics, "step_loss"]}

    @classmethod
    def from_json(cls, d: dict) -> Curves:
        curves = cls()
        for name in METRICS:
            if name in d:
                curves.chunk_metrics[name] = list(np.asarray(d[name], np.float32).T)
        if d.get("step_loss"):
            curves.step_loss = [np.asarray(d["step_loss"], np.float32)]
        return curves


@dataclasses.dataclass
class Roster:
    """Who is still training. Row i of the compiled state holds member `slots[i]`; a member not in
    `slots` has left (diverged, or its trial was pruned). The rest is per member, kept current."""

    slots: np.ndarray  # [rows in training] member indices, in state order (-1: a frozen spare row)
    diverged: np.ndarray  # [P] bool
    diverged_step: np.ndarray  # [P] the step a member froze at, -1 while healthy
    layer_variance: np.ndarray  # [P, layers] at the member's last evaluation ([P, 0] before any)

    @classmethod
    def everyone(cls, size: int, slots: np.ndarray | None = None) -> Roster:
        slots = np.arange(size) if slots is None else slots
        return cls(slots, np.zeros(size, bool), np.full(size, -1, np.int32), np.zeros((size, 0), np.float32))

    def update(self, rows: dict[str, np.ndarray]) -> None:
        """Take in a chunk's metrics of the rows in training."""
        if self.layer_variance.shape[1] != rows["layer_variance"].shape[1]:
            self.layer_variance = np.full((len(self.diverged), rows["layer_variance"].shape[1]), np.nan, np.float32)
        live = self.slots >= 0
        for name in ("diverged", "diverged_step", "layer_variance"):
            getattr(self, name)[self.slots[live]] = rows[name][live]

    def pick(self, members: list[int], slots: np.ndarray) -> Roster:
        """The roster of a population made of `members`, whose rows hold `slots` (as `slots`)."""
        return Roster(
            np.asarray(slots, np.int64),
            self.diverged[members],
            self.diverged_step[members],
            self.layer_variance[members],
        )

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name).tolist() for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, d: dict) -> Roster:
        return cls(
            np.asarray(d["slots"], np.int64),
            np.asarray(d["diverged"], bool),
            np.asarray(d["diverged_step"], np.int32),
            np.asarray(d["layer_variance"], np.float32),
        )


@dataclasses.dataclass
class Progress:
    """A population part-way through training: the compiled state of the members still training
    (None once none is), who they are, every member's curves, and the step reached."""

    state: Any  # train.TrainState of the members still training, None once none is
    roster: Roster
    curves: Curves
    step: int


@dataclasses.dataclass
class Result:
    """What a finished population hands back: final metrics, flags and full curves."""

    population: Population
    final: dict[str, np.ndarray]  # metric -> [P], after the last chunk
    diverged: np.ndarray
    diverged_step: np.ndarray
    curves: Curves
    layer_variance: np.ndarray  # [P, layers] at each member's last evaluation, on validation inputs
    stopped: bool = False  # on_chunk ended training before the last step
    paused: bool = False  # ... after a checkpoint, to be resumed
