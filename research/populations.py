"""One batch of trials run as one population: the member layout, and running it trained or probed.

Members are trial-major, seed-minor (`Layout`), the one place that says so. A trained
population is checkpointed, reported chunk by chunk for pruning and may start from a dead
population's members; a probed one is measured at initialisation in one compiled call. Both
hand back one `Outcome` per trial; telling Optuna is the worker's job.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from optuna.trial import TrialState

from research import checkpoint, devices, models, objectives, probes
from research import train as trainlib
from research.members import METRICS, Population, Progress, Result


@dataclasses.dataclass(frozen=True)
class Layout:
    """`trials` x `seeds` members, trial-major: member m is trial m // seeds, seed m % seeds."""

    trials: int
    seeds: int

    @property
    def size(self) -> int:
        return self.trials * self.seeds

    def members(self, trial: int) -> slice:
        """The members of trial number `trial` (its index in the batch)."""
        return slice(trial * self.seeds, (trial + 1) * self.seeds)

    def per_trial(self, values: np.ndarray) -> np.ndarray:
        """[members, ...] -> [trials, seeds, ...]."""
        return np.asarray(values).reshape(self.trials, self.seeds, *np.shape(values)[1:])

    def repeat(self, per_trial: Sequence[float]) -> np.ndarray:
        """One value per trial -> one per member."""
        return np.repeat(np.asarray(per_trial), self.seeds)

    def seed_ids(self) -> np.ndarray:
        """Each member's seed: every trial runs seeds 0..seeds-1 (common random numbers)."""
        return np.tile(np.arange(self.seeds), self.trials)

    def slot_members(self, slots: Sequence[int]) -> list[int]:
        """Members of the trials at `slots` of an earlier population of this layout's seeds, in order."""
        return [slot * self.seeds + s for slot in slots for s in range(self.seeds)]


class Outcome(NamedTuple):
    """What a trial ends with: user attributes, its value (None unless complete) and state."""

    attrs: dict
    value: float | None
    state: TrialState


def population(
    layout: Layout,
    groups: Sequence[str],
    searched: Sequence[str],
    alphas: Sequence[float],
    lrs: Sequence[float],
    seed_offset: int = 0,
    seed_lr_factors: Sequence[float] | None = None,
) -> Population:
    """The population of a batch: each trial's alpha on the `searched` layer groups (others at 1),
    seeds counted from `seed_offset`, each seed's learning rate times its `seed_lr_factors`."""
    alpha = layout.repeat(alphas)
    per_group = {g: alpha if g in searched else np.ones_like(alpha) for g in groups}
    lr = layout.repeat(lrs) * (1.0 if seed_lr_factors is None else np.tile(seed_lr_factors, layout.trials))
    return Population.create(groups, per_group, lr, layout.seed_ids() + seed_offset)


class Trained:
    """Runs populations through one compiled Trainer; the objective is a final training metric."""

    def __init__(self, cfg, dataset, objective: objectives.Objective, size: int):
        self.objective, self.every = objective, cfg.search.checkpoint_every_chunks
        self.chunk_steps, self.threshold = cfg.train.chunk_steps, cfg.verdict.loss_threshold
        self.trainer = trainlib.Trainer(cfg.model, cfg.train, dataset, population_size=size)

    def run(
        self,
        layout: Layout,
        pop: Population,
        checkpoint_dir: str,
        prune: Callable[[int, np.ndarray, np.ndarray], set[int]],
        initial: Progress | None = None,
        pause: Callable[[], bool] = lambda: False,
    ) -> list[Outcome]:
        """Train to the end, or until `prune` (told each chunk's [trials, seeds] metric and which
        members diverged) has pruned all,
        or until `pause()` turns true: then the population is checkpointed and its unpruned
        trials come back as FAIL outcomes marked "preempted", for a retry to resume. Members of
        pruned trials leave the compiled population, as diverged ones do."""
        ckpt = checkpoint.Checkpointer(checkpoint_dir, every_chunks=self.every, keep=1)
        resumed_at = initial.step if initial else 0
        pruned: set[int] = set()

        def on_chunk(chunk: int, metrics: dict[str, np.ndarray]) -> str | None:
            members = layout.per_trial(metrics[self.objective.metric])
            pruned.update(prune(chunk, members, layout.per_trial(metrics["diverged"]).astype(bool)))
            if len(pruned) == layout.trials:
                return trainlib.STOP
            return trainlib.PAUSE if pause() else None

        try:
            result = trainlib.train(
                self.trainer,
                pop,
                on_chunk=on_chunk,
                retired=lambda: layout.slot_members(sorted(pruned)),
                checkpointer=ckpt,
                initial=initial,
            )
            ckpt.close()
        except BaseException:  # a full disk, a signal, a bug: no half-written checkpoint stays behind
            ckpt.discard_partial()
            raise
        if result.paused:  # the checkpoint stays for the retries
            return [
                self._outcome(result, layout, i, resumed_at, True)
                if i in pruned
                else Outcome({"preempted": True}, None, TrialState.FAIL)
                for i in range(layout.trials)
            ]
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return [self._outcome(result, layout, i, resumed_at, i in pruned) for i in range(layout.trials)]

    def _outcome(self, result: Result, layout: Layout, i: int, resumed_at: int, pruned: bool) -> Outcome:
        if pruned:
            return Outcome({"resumed_from_step": resumed_at}, None, TrialState.PRUNED)
        members = layout.members(i)
        curves = {m: result.curves.array(m)[members] for m in METRICS}
        per_seed = self.objective.seed_values(curves, self.chunk_steps, self.threshold)
        attrs = {
            "seeds": result.population.seed[members].tolist(),
            "seed_values": per_seed.tolist(),
            "diverged": result.diverged[members].tolist(),
            "curves": {m: c.tolist() for m, c in curves.items()},
            "layer_variance": result.layer_variance[members].tolist(),
            "resumed_from_step": resumed_at,
        }
        return Outcome(attrs, float(np.mean(per_seed)), TrialState.COMPLETE)


class Probed:
    """Measures populations at initialisation; the objective is |log-ratio| of a signal statistic."""

    def __init__(self, cfg, dataset, objective: objectives.Objective, size: int):
        self.cfg, self.objective, self.size = cfg, objective, size
        # Each member holds its parameters, their tangents and the taps' gradients at once.
        need = 3 * 4 * models.count_params(models.param_shapes(cfg.model)) * size
        devices.check_fits(need, f"a probe batch of {size}", jax.devices()[0])
        self.graph = models.graphdef(cfg.model)
        self.first_group = models.groups(cfg.model)[0]
        self.inputs = probes.study_inputs(cfg, dataset)
        # Each example's mean square per position (MLP: one number each): the as-run theory's input,
        # to float32's precision (an RNN's 256 x 40 of them are stored with the study).
        self.input_moment = np.mean(np.asarray(self.inputs, np.float64) ** 2, axis=-1).astype(np.float32).tolist()
        self._measure = jax.jit(jax.vmap(self._member, in_axes=(0, 0)))

    def _member(self, alpha, seed) -> probes.Stats:
        x = self.inputs
        if self.objective.one_layer:  # the first pre-activation at unit variance, as theory's z ~ N(0, 1)
            x = x / jnp.sqrt(alpha[self.first_group])
        return probes.measure(self.cfg.model, self.graph, jax.random.key(seed), alpha, x)

    def run(self, layout: Layout, pop: Population) -> list[Outcome]:
        """Every member's statistics in one call (padded to the compiled size), one Outcome per trial."""
        pad = self.size - pop.size
        alpha = {g: jnp.asarray(np.concatenate([a, np.repeat(a[:1], pad)])) for g, a in pop.alpha.items()}
        seed = jnp.asarray(np.concatenate([pop.seed, np.repeat(pop.seed[:1], pad)]))
        stats = jax.tree.map(lambda a: np.asarray(a)[: pop.size], self._measure(alpha, seed))
        ratios = self.objective.log_ratios(stats)
        return [self._outcome(stats, ratios, pop, layout.members(i)) for i in range(layout.trials)]

    def _outcome(self, stats: probes.Stats, ratios: dict, pop: Population, members: slice) -> Outcome:
        ratio = ratios[self.objective.statistic][members]
        attrs = {
            "seeds": pop.seed[members].tolist(),
            "seed_values": np.abs(ratio).tolist(),
            "log_slope": {k: v[members].tolist() for k, v in ratios.items()},
            "per_layer": {k: np.median(getattr(stats, k)[members], axis=0).tolist() for k in probes.Stats._fields},
        }
        value = abs(float(np.mean(ratio)))
        return Outcome(attrs, value if math.isfinite(value) else 1e3, TrialState.COMPLETE)


def resume(
    trainer: trainlib.Trainer, layout: Layout, pop: Population, source: str | None, slots: Sequence[int]
) -> Progress | None:
    """The start of a population of retried trials: their members in the dead population's
    checkpoint `source` (at `slots` there), or None to start afresh."""
    if source is None:
        return None
    return checkpoint.resume_members(source, trainer, layout.slot_members(slots), pop)
