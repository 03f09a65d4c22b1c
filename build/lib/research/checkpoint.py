"""Orbax checkpoints of an in-flight population, so a killed worker loses no progress.

A checkpoint holds the training state of the members still training (parameters, optimiser
state, step, seeds, flags) and a JSON record: the population's hyperparameters, its roster
(who is still training, how the others ended) and every member's curves so far.
Writes are asynchronous (training goes on while a copy of the state is written) and atomic
(orbax finalises a temporary directory by renaming it): a kill loses at most the write in
flight, never a finished one. A bounded number is kept; a checkpoint that fails to restore
is skipped for the one before it.
`resume_members` picks some members of a checkpointed population to start a new one: how a
retried trial continues where its dead worker stopped.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from research import train as trainlib
from research.members import Curves, Population, Progress, Roster

log = logging.getLogger(__name__)


def resume_members(
    directory: str, trainer: trainlib.Trainer, members: list[int], population: Population
) -> Progress | None:
    """Members `members` of the population checkpointed in `directory`, as the start of
    `population` (whose members they must be, in order); None if unreadable."""
    source = Checkpointer(directory, keep=1)
    try:
        record = source.record()
        if record is None:
            return None
        restored = source.restore(trainer, Population.from_json(record["population"]))
    finally:
        source.close()
    return None if restored is None else trainer.pick(restored, members, population)


class Checkpointer:
    """Saves every `every_chunks` chunks under `directory`, keeping the newest `keep`."""

    def __init__(self, directory: str | os.PathLike, *, every_chunks: int = 1, keep: int = 2):
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, save_interval_steps=every_chunks, enable_async_checkpointing=True
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def maybe_save(self, chunk: int, progress: Progress, population: Population, *, force: bool = False) -> bool:
        """Save at `chunk` if the interval says so, or `force`; True when written."""
        record = {
            "population": population.to_json(),
            "curves": progress.curves.to_json(),
            "roster": progress.roster.to_json(),
            "rows": 0 if progress.state is None else len(progress.state.seed),
            "chunk": chunk,
            "step": progress.step,
        }
        if not (force or self.manager.should_save(chunk)):
            return False
        items = {"record": ocp.args.JsonSave(record)}
        leaves = {}
        if progress.state is not None:  # else every member has left: the record is all there is
            # Copies: the next chunk reuses the state's buffers while the write goes on.
            leaves = {f"{i:05d}": np.array(leaf) for i, leaf in enumerate(jax.tree.leaves(progress.state))}
            items["state"] = ocp.args.PyTreeSave(leaves)
        self._check_room(sum(leaf.nbytes for leaf in leaves.values()) + len(json.dumps(record)))
        with _disk_errors(self.directory):
            return self.manager.save(chunk, args=ocp.args.Composite(**items), force=force)

    def _check_room(self, size: int) -> None:
        """Refuse a save the disk cannot hold (twice its size and 1 MiB spare: the previous one stays
        until this one is final), before orbax's writer threads fail on it mid-write."""
        os.makedirs(self.directory, exist_ok=True)
        free = shutil.disk_usage(self.directory).free
        if free < 2 * size + (1 << 20):
            raise OSError(errno.ENOSPC, "No space left on device for a checkpoint", self.directory)

    def restore(self, trainer: trainlib.Trainer, population: Population) -> Progress | None:
        """The newest readable checkpoint of this population, or None."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, record = self._read(step, trainer)
            except Exception as err:  # a truncated or half-written checkpoint: use the one before
                log.warning("checkpoint %s/%s is unreadable (%s); trying an older one", self.directory, step, err)
                continue
            if record["population"] != population.to_json():
                log.warning("checkpoint %s/%s belongs to another population; starting afresh", self.directory, step)
                return None
            roster = Roster.from_json(record["roster"])
            return Progress(state, roster, Curves.from_json(record["curves"]), record["step"])
        return None

    def record(self) -> dict[str, Any] | None:
        """The JSON record of the newest checkpoint (population, curves, chunk), if any."""
        step = self.manager.latest_step()
        if step is None:
            return None
        return self.manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]

    def close(self) -> None:
        with _disk_errors(self.directory):
            self.manager.close()

    def discard_partial(self) -> None:
        """Remove the temporary folders of writes that never finished (a full disk, a crash); the
        finished checkpoints stay for the retries."""
        with contextlib.suppress(Exception):
            self.manager.close()
        for partial in glob.glob(os.path.join(self.directory, "*.orbax-checkpoint-tmp*")):
            shutil.rmtree(partial, ignore_errors=True)

    def _read(self, step: int, trainer: trainlib.Trainer):
        record = self.manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]
        if not record["rows"]:  # every member had left: nothing to train
            return None, record
        leaves, treedef = jax.tree.flatten(trainer.abstract_state(record["rows"]))
        targets = {f"{i:05d}": np.zeros(leaf.shape, leaf.dtype) for i, leaf in enumerate(leaves)}
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), targets)
        restored = self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(targets, restore_args=restore_args))
        )
        arrays = [restored["state"][f"{i:05d}"] for i in range(len(leaves))]
        for array, leaf in zip(arrays, leaves, strict=True):
            if array.shape != leaf.shape or array.dtype != leaf.dtype:
                raise ValueError(f"stored {array.shape} {array.dtype}, expected {leaf.shape} {leaf.dtype}")
        return trainer.place(jax.tree.unflatten(treedef, arrays)), record


@contextlib.contextmanager
def _disk_errors(directory: str):
    """Orbax's writers report a full disk as ValueError('RESOURCE_EXHAUSTED: ... No space left'):
    raised as the OSError it is, so the command says it in one sentence."""
    try:
        yield
    except ValueError as err:
        if "RESOURCE_EXHAUSTED" not in str(err) and "No space left" not in str(err):
            raise
        raise OSError(errno.ENOSPC, "No space left on device", directory) from None
