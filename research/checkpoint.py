"""Orbax checkpoints of an in-flight population, so a killed worker loses no progress.

A checkpoint holds the whole training state (parameters, optimiser state, step, seeds,
flags) and a JSON record (the population's hyperparameters and its curves so far).
Writes are atomic (orbax finalises a temporary directory by renaming it); a bounded
number is kept; a checkpoint that fails to restore is skipped for the one before it.
`resume_members` picks some members of a checkpointed population to start a new one: how a
retried trial continues where its dead worker stopped.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from research import train as trainlib

log = logging.getLogger(__name__)


def resume_members(
    directory: str, trainer: trainlib.Trainer, members: list[int], population: trainlib.Population
) -> tuple[trainlib.TrainState, trainlib.Curves] | None:
    """Members `members` of the population checkpointed in `directory`, placed as the start of
    `population` (whose members they must be, in order), with their curves; None if unreadable."""
    source = Checkpointer(directory, keep=1)
    try:
        record = source.record()
        if record is None:
            return None
        restored = source.restore(trainer, trainlib.Population.from_json(record["population"]))
    finally:
        source.close()
    if restored is None:
        return None
    state, curves = restored
    return trainer.select(state, members, population), curves.select(members)


class Checkpointer:
    """Saves every `every_chunks` chunks under `directory`, keeping the newest `keep`."""

    def __init__(self, directory: str | os.PathLike, *, every_chunks: int = 1, keep: int = 2):
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, save_interval_steps=every_chunks, enable_async_checkpointing=False
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def maybe_save(
        self,
        chunk: int,
        state: trainlib.TrainState,
        population: trainlib.Population,
        curves: trainlib.Curves,
        *,
        force: bool = False,
    ) -> bool:
        """Save at `chunk` if the interval says so, or `force`; True when written."""
        record = {"population": population.to_json(), "curves": curves.to_json(), "chunk": chunk}
        leaves = {f"{i:05d}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(state))}
        return self.manager.save(
            chunk,
            args=ocp.args.Composite(state=ocp.args.PyTreeSave(leaves), record=ocp.args.JsonSave(record)),
            force=force,
        )

    def restore(
        self, trainer: trainlib.Trainer, population: trainlib.Population
    ) -> tuple[trainlib.TrainState, trainlib.Curves] | None:
        """The newest readable checkpoint of this population as (state, curves), or None."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, record = self._read(step, trainer, population)
            except Exception as err:  # a truncated or half-written checkpoint: use the one before
                log.warning("checkpoint %s/%s is unreadable (%s); trying an older one", self.directory, step, err)
                continue
            if record["population"] != population.to_json():
                log.warning("checkpoint %s/%s belongs to another population; starting afresh", self.directory, step)
                return None
            return state, trainlib.Curves.from_json(record["curves"])
        return None

    def record(self) -> dict[str, Any] | None:
        """The JSON record of the newest checkpoint (population, curves, chunk), if any."""
        step = self.manager.latest_step()
        if step is None:
            return None
        return self.manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]

    def close(self) -> None:
        self.manager.close()

    def _read(self, step: int, trainer: trainlib.Trainer, population: trainlib.Population):
        abstract = jax.eval_shape(lambda: trainer.start(population))
        leaves, treedef = jax.tree.flatten(abstract)
        targets = {f"{i:05d}": np.zeros(leaf.shape, leaf.dtype) for i, leaf in enumerate(leaves)}
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), targets)
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(targets, restore_args=restore_args), record=ocp.args.JsonRestore()
            ),
        )
        arrays = [restored["state"][f"{i:05d}"] for i in range(len(leaves))]
        for array, leaf in zip(arrays, leaves, strict=True):
            if array.shape != leaf.shape or array.dtype != leaf.dtype:
                raise ValueError(f"stored {array.shape} {array.dtype}, expected {leaf.shape} {leaf.dtype}")
        state = jax.tree.unflatten(treedef, arrays)
        return trainer.place(state), restored["record"]
