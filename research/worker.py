"""A sweep worker: ask a batch of trials, run them as one population, tell, repeat.

A worker asks a batch of trials, runs them (each over several seeds) as one population,
reports every chunk for pruning, tells, and repeats until the study holds the requested
number of finished trials, a budget all workers share (coordination.py keeps it exact and
retries the trials of dead workers; populations.py runs a batch; objectives.py says what
is minimised).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable

import numpy as np
import optuna

from research import (
    bracket,
    crossing,
    estimate,
    models,
    objectives,
    populations,
    predictions,
    provenance,
    recipe,
    ridge,
    storage,
    studies,
)
from research import data as datalib
from research.coordination import Heartbeat, Reaper, ask_batch, checkpoints_in_use, counts, record, release, retry
from research.errors import require
from research.search import make_pruner, make_sampler


class Worker:
    """One process's share of a sweep: ask, run as a population, tell, until the budget is met."""

    def __init__(
        self, cfg, url: str, *, worker_index: int = 0, echo: Callable = print, stop: threading.Event | None = None
    ):
        self.cfg, self.scfg = cfg, cfg.search
        self.stop = stop or threading.Event()  # set (by a signal handler): checkpoint, release, return
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.echo = echo
        self.objective = objectives.get(self.scfg.objective)
        self.groups = models.groups(cfg.model)
        self.searched = tuple(self.scfg.alpha_groups) or self.groups
        unknown = set(self.searched) - set(self.groups)
        require(
            not unknown,
            f"search.alpha_groups {sorted(unknown)} are not layer groups of this model ({sorted(self.groups)}).",
        )
        self.worker_seed = self.scfg.sampler_seed + 1000 * worker_index
        self._stream_set = False
        self.seeds = self.scfg.seeds if self.objective.trained else self.scfg.probe_seeds
        size = self.scfg.trials_per_batch * self.seeds
        runner = populations.Trained if self.objective.trained else populations.Probed
        dataset = datalib.load(cfg.data)
        self.runner = runner(cfg, dataset, self.objective, size)  # sized before any write
        self.device = provenance.device()  # what trains here (a sweep's own process is host-only)
        self.study = retry(lambda: studies.create(cfg, url))  # a worker may start while the DB is down
        self.name = self.study.study_name
        retry(lambda: self._record_inputs(cfg.train.loss, dataset))
        self.tested: tuple[float, ...] = ()  # a ridge study's tested predictions (halving keeps them)
        self.study.sampler = make_sampler(self.scfg, self.worker_seed, retry(lambda: self._cells(url)))
        chunks = self.runner.trainer.num_chunks if self.objective.trained else 1
        self.study.pruner = make_pruner(self.scfg, chunks)
        self.ckpt_root = os.path.join(self.scfg.runs_dir, "checkpoints", self.name)

    def _record_inputs(self, loss: str, dataset) -> None:
        """Once per study, what its readers need of the data: a probe's inputs' mean square per
        position per example (the as-run theory's input), a trained study's chance-level loss; and the devices
        its workers train on."""
        used = self.study.user_attrs.get("devices") or []
        if self.device not in used:  # the creator's record names its own device
            self.study.set_user_attr("devices", sorted({*used, self.device}))
        if self.objective.trained and "chance_loss" not in self.study.user_attrs:
            self.study.set_user_attr("chance_loss", recipe.chance_loss(loss, dataset))
        if not self.objective.trained and "probe_input_moments" not in self.study.user_attrs:
            self.study.set_user_attr("probe_input_moments", self.runner.input_moment)

    def _cells(self, url: str) -> list | None:
        """A two-stage design's cells, from its finished first stage (ridge.py's pilot, bracket.py's
        bracket), recorded on the study as its design; None for other samplers."""
        if self.scfg.sampler not in ("ridge", "bracket"):
            return None
        first_cfg = studies.first_stage(self.cfg)[0]
        first = studies.find(first_cfg, storage.open_storage(url))
        done = 0 if first is None else counts(first)["finished"]
        require(
            done >= first_cfg.search.trials,
            f"the {first_cfg.search.stage} study {studies.study_name(first_cfg)} holds {done} of"
            f" {first_cfg.search.trials} finished trials; run it first (research sweep runs it before this study).",
        )
        trials = first.get_trials(deepcopy=False)
        if self.scfg.sampler == "bracket":
            cells, design = self._bracket_cells(trials)
        else:
            cells, design = self._ridge_cells(trials, first.user_attrs.get("chance_loss", math.inf))
        if "design" not in self.study.user_attrs:
            self.study.set_user_attr("design", {"first_stage": first.study_name, **design})
        return cells

    def _ridge_cells(self, pilot_trials, chance: float) -> tuple[list, dict]:
        best = ridge.pilot_best(self.cfg, pilot_trials)
        self.tested = tested = tuple(alpha for _, alpha in predictions.compared(self.cfg, None)[0])
        cells = ridge.cells(self.cfg, best, tested, chance)
        return cells, {"pilot_best": [[a, *best[a]] for a in sorted(best)], "tested": tested,
                       "seed_lr_factors": ridge.seed_lr_factors(self.cfg).tolist(),
                       "cells": [[c["alpha"], c["learning_rate"]] for c in cells]}  # fmt: skip

    def _bracket_cells(self, bracket_trials) -> tuple[list, dict]:
        obs = estimate.from_trials(bracket_trials, self.objective)
        log_alpha, mean = crossing.means(obs)
        cells = bracket.cells(self.cfg, log_alpha, mean)
        return cells, {"bracket": [[math.exp(x), m] for x, m in zip(log_alpha, mean, strict=True)],
                       "cells": [[c["alpha"]] for c in cells]}  # fmt: skip

    def run(self, max_batches: int | None = None) -> int:
        """Work until the study holds `search.trials` finished trials; returns trials told here."""
        told, batches = 0, 0
        reap = Reaper(self.scfg.stale_after_s, self.scfg.max_retries)
        with Heartbeat(self.scfg.heartbeat_s, self.id) as heartbeat:
            while (max_batches is None or batches < max_batches) and not self.stop.is_set():
                retry(lambda: reap(self.study))
                trials = retry(
                    lambda: ask_batch(
                        self.study, heartbeat, self.scfg.trials, self.scfg.trials_per_batch, self._suggest
                    )
                )
                if not trials:
                    if retry(lambda: counts(self.study))["finished"] >= self.scfg.trials:
                        break
                    time.sleep(self.scfg.poll_s)  # others hold the rest; wait to reap or finish
                    continue
                for group in _groups(trials):
                    told += self._run_group(group, heartbeat)
                batches += 1
                self._tidy_checkpoints()
        return told

    def _tidy_checkpoints(self) -> None:
        """Delete the checkpoints of populations no trial can resume from any more (a killed
        population's, once its retries have taken over)."""
        if not os.path.isdir(self.ckpt_root):
            return
        # Listed before the storage is read: a folder listed here had its trials' attributes set
        # before it was created, so the read below sees them while they still need it.
        present = [os.path.abspath(os.path.join(self.ckpt_root, name)) for name in os.listdir(self.ckpt_root)]
        in_use = retry(lambda: checkpoints_in_use(self.study, self.scfg.max_retries))
        for path in present:
            if path not in in_use:
                shutil.rmtree(path, ignore_errors=True)

    def _suggest(self, trial: optuna.Trial) -> str | None:
        """Sample (or, for an enqueued retry, read back) the trial's alpha and learning rate; a
        retry from an older, wider search space is refused with the reason (None: it may run)."""
        self._set_stream(trial.number)
        spaces = {"alpha": self.scfg.alpha_range, "learning_rate": self.scfg.learning_rate_range}
        for name, (lo, hi) in ((k, v) for k, v in spaces.items() if v):
            with warnings.catch_warnings():  # Optuna warns, then uses an out-of-range fixed value
                warnings.simplefilter("ignore", UserWarning)
                value = trial.suggest_float(name, lo, hi, log=True)
            if not lo <= value <= hi:
                return f"{name} {value:g} lies outside the current search.{name}_range [{lo:g}, {hi:g}]"
        return None

    def _set_stream(self, first_trial: int) -> None:
        """Seed this run's sampler from the study's state when it starts (its first trial's number):
        the configured stream for a fresh study, a new one after a restart or beside another sweep,
        so no two runs replay the same draws. QMC and grid share one sequence by design."""
        if not self._stream_set and first_trial and self.scfg.sampler in ("tpe", "random", "gp"):
            self.study.sampler = make_sampler(self.scfg, self.worker_seed + 7919 * first_trial)
        self._stream_set = True

    def _run_group(self, trials: list[optuna.Trial], heartbeat: Heartbeat) -> int:
        layout = populations.Layout(len(trials), self.seeds)
        lrs = [t.params.get("learning_rate", self.cfg.train.learning_rate) for t in trials]
        alphas = [t.params["alpha"] for t in trials]
        factors = ridge.seed_lr_factors(self.cfg) if self.scfg.sampler == "ridge" else None
        pop = populations.population(layout, self.groups, self.searched, alphas, lrs, self.scfg.seed_offset, factors)
        self.echo(f"[{self.id}] trials {[t.number for t in trials]}: alpha {[round(a, 3) for a in alphas]}")
        try:
            outcomes = self._train(trials, layout, pop) if self.objective.trained else self.runner.run(layout, pop)
        except BaseException as err:  # a full disk, a bug: fail them now so any worker's reaper retries them
            self._fail(trials, heartbeat, f"{err.__class__.__name__}: {err}")
            raise
        told = 0
        for trial, outcome in zip(trials, outcomes, strict=True):
            heartbeat.release(trial)
            try:
                if outcome.attrs.get("preempted"):
                    retry(lambda: release(self.study, trial))  # noqa: B023  (called at once)
                    continue
                attrs = {**outcome.attrs, "device": self.device}
                retry(lambda: record(self.study, trial, attrs, outcome.value, outcome.state))  # noqa: B023
                told += 1
            except optuna.exceptions.UpdateFinishedTrialError:
                self.echo(f"[{self.id}] trial {trial.number} was taken over by another worker; its result is dropped")
        return told

    def _fail(self, trials: list[optuna.Trial], heartbeat: Heartbeat, reason: str) -> None:
        for trial in trials:
            heartbeat.release(trial)
            with contextlib.suppress(Exception):  # the storage may be what failed
                trial.set_user_attr("failure", reason[:300])
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def _train(self, trials, layout: populations.Layout, pop) -> list[populations.Outcome]:
        """Train a group, checkpointed where a retry can find it; retries resume a dead group's members."""
        # A group of retries shares one dead population (see _groups); read where it stopped
        # before this population's own checkpoint and slots replace those attributes.
        source = trials[0].user_attrs.get("checkpoint") if all("retry_of" in t.user_attrs for t in trials) else None
        initial = populations.resume(
            self.runner.trainer, layout, pop, source, [t.user_attrs.get("slot") for t in trials]
        )
        ckpt_dir = os.path.join(self.ckpt_root, uuid.uuid4().hex[:12])
        for slot, trial in enumerate(trials):
            retry(lambda: trial.set_user_attr("checkpoint", ckpt_dir))  # noqa: B023  (called at once)
            retry(lambda: trial.set_user_attr("slot", slot))  # noqa: B023
        pruned: set[int] = set()
        cells = [(t.params["alpha"], t.params.get("learning_rate", 0.0)) for t in trials]
        halving = self.scfg.sampler == "ridge" or self.scfg.stage == "pilot"

        def prune(chunk: int, members: np.ndarray, diverged: np.ndarray) -> set[int]:
            values = members.mean(axis=1)  # what Optuna is told: diverged members at their recorded loss
            if halving:  # successive halving along lr (ridge.py), before the reports
                rung = ridge.censored_means(members, ~diverged & np.isfinite(members))
                alive = set(range(len(trials))) - pruned
                for i in ridge.halved(self.scfg.ridge, chunk, rung, cells, alive, self.tested):
                    retry(lambda: trials[i].set_user_attr("stopped", {"chunk": chunk, "loss": float(rung[i])}))  # noqa: B023
                    pruned.add(i)
            for i, trial in enumerate(trials):
                if i not in pruned:
                    try:
                        retry(lambda: trial.report(float(values[i]), chunk))  # noqa: B023  (called at once)
                    except optuna.exceptions.UpdateFinishedTrialError:  # reaped: its retry runs elsewhere
                        pruned.add(i)  # leaves the population; telling it says so in one line
                        continue
                    if self.scfg.pruner != "none" and retry(trial.should_prune):
                        pruned.add(i)
            return pruned

        if initial is not None:
            self.echo(f"[{self.id}] resuming trials {[t.number for t in trials]} at step {initial.step}")
            for chunk, row in enumerate(initial.curves.array(self.objective.metric).T, start=1):  # retries keep curves
                for i, trial in enumerate(trials):
                    retry(lambda: trial.report(float(layout.per_trial(row)[i].mean()), chunk))  # noqa: B023
        return self.runner.run(layout, pop, ckpt_dir, prune, initial, pause=self.stop.is_set)


def _groups(trials: list[optuna.Trial]) -> list[list[optuna.Trial]]:
    """Retries of the same dead population run together (resumable), fresh trials together."""
    by_source: dict[str | None, list[optuna.Trial]] = {}
    for t in trials:
        key = t.user_attrs.get("checkpoint") if "retry_of" in t.user_attrs else None
        by_source.setdefault(key, []).append(t)
    return [group for key, group in sorted(by_source.items(), key=lambda kv: kv[0] is None)]
