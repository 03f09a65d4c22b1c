"""Optuna search over the init scale: space, samplers, pruners and the batched worker.

A worker asks a batch of trials, trains them (each over several seeds) as one population,
reports every chunk, prunes, tells, and repeats until the study holds the requested number
of finished trials, a budget all workers share. Heartbeats mark live trials; trials of a
dead worker are failed and retried from their population's checkpoint, on any storage.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optuna
from optuna.trial import TrialState

from research import checkpoint, init, models, probes, storage, theory
from research import data as datalib
from research import train as trainlib
from research.errors import ConfigError, choice, integer, number, require

log = logging.getLogger(__name__)

TRAINED = ("train_loss", "val_loss", "val_error")
PROBED = {
    "forward_log_ratio": "forward",
    "backward_log_ratio": "backward",
    "jacobian_log_gain": "jacobian",
    "forward_one_layer": "forward",  # log(q_2 / q_1) with inputs scaled so that q_1 = 1
}
OBJECTIVES = (*TRAINED, *PROBED)
SAMPLERS = ("tpe", "qmc", "grid", "gp", "random")
PRUNERS = ("none", "hyperband", "successive_halving", "median")
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def default_config() -> ml_collections.ConfigDict:
    """Search settings: what is searched, how many trials, and how workers cooperate."""
    cfg = ml_collections.ConfigDict()
    cfg.objective = "train_loss"
    cfg.objectives = ()  # the objectives `research sweep` runs, one study each; empty: (objective,)
    cfg.alpha_range = (0.25, 16.0)  # log-uniform
    cfg.alpha_groups = ()  # layer groups alpha scales; empty: all (others stay at 1)
    cfg.learning_rate_range = ()  # (lo, hi) searches lr jointly (log-uniform); empty: train.learning_rate
    cfg.seeds = 3  # repeats of every trial; the objective is their mean
    cfg.probe_seeds = 8  # repeats for the (cheap) objectives at initialisation
    cfg.trials = 24  # finished trials the study must hold, shared by all workers
    cfg.trials_per_batch = 8  # trials trained as one program (population = this x seeds)
    cfg.sampler = "tpe"
    cfg.sampler_seed = 0
    cfg.grid_points = 16  # alphas on the grid sampler's geometric grid
    cfg.pruner = "none"
    cfg.probe_batch = 256  # inputs for the signal-propagation objectives
    cfg.probe_input_scale = 1.0  # scales the probe inputs: small values start near q = 0
    cfg.probe_inputs = "data"  # or "gaussian": iid N(0, 1) inputs, the mean-field assumption
    cfg.checkpoint_every_chunks = 2
    cfg.heartbeat_s = 10.0
    cfg.stale_after_s = 120.0  # a running trial without a heartbeat this long is failed and retried
    cfg.poll_s = 2.0
    cfg.runs_dir = "runs"
    return cfg


def validate(cfg) -> None:
    """Stop with one clear sentence on the first bad search setting."""
    for field in ("objectives", "alpha_groups"):
        require(isinstance(cfg[field], tuple | list), f"search.{field} must be a tuple of names; got {cfg[field]!r}.")
    for objective in (cfg.objective, *cfg.objectives):
        if objective not in OBJECTIVES:
            raise choice("search.objective", objective, OBJECTIVES)
    number(cfg.probe_input_scale, "search.probe_input_scale", "a number > 0", lambda v: v > 0)
    if cfg.probe_inputs not in ("data", "gaussian"):
        raise choice("search.probe_inputs", cfg.probe_inputs, ("data", "gaussian"))
    require(isinstance(cfg.runs_dir, str) and cfg.runs_dir, f"search.runs_dir must be a path; got {cfg.runs_dir!r}.")
    if cfg.sampler not in SAMPLERS:
        raise choice("search.sampler", cfg.sampler, SAMPLERS)
    if cfg.pruner not in PRUNERS:
        raise choice("search.pruner", cfg.pruner, PRUNERS)
    _check_range("search.alpha_range", cfg.alpha_range)
    if cfg.learning_rate_range != ():
        _check_range("search.learning_rate_range", cfg.learning_rate_range)
    for field in (
        "seeds",
        "probe_seeds",
        "trials",
        "trials_per_batch",
        "grid_points",
        "probe_batch",
        "checkpoint_every_chunks",
    ):
        integer(cfg[field], f"search.{field}")
    for field in ("heartbeat_s", "stale_after_s", "poll_s"):
        number(cfg[field], f"search.{field}", "a number of seconds > 0", lambda v: v > 0)
    require(
        cfg.stale_after_s > 2 * cfg.heartbeat_s,
        f"search.stale_after_s ({cfg.stale_after_s}) must exceed twice search.heartbeat_s ({cfg.heartbeat_s}).",
    )


def create_study(cfg, url: str, name: str) -> optuna.Study:
    """Create or load the study; the creator records config, theory predictions and code version."""
    study = optuna.create_study(
        study_name=name, storage=storage.open_storage(url), direction="minimize", load_if_exists=True
    )
    if "config" not in study.user_attrs:
        study.set_user_attr("config", json.loads(cfg.to_json_best_effort()))
        study.set_user_attr("theory", predictions(cfg))
        study.set_user_attr("objective", cfg.search.objective)
        study.set_user_attr("code_version", code_version())
    return study


def predictions(cfg) -> dict[str, float | None]:
    """Every theory's alpha for the experiment, in the units its search uses.

    Theory speaks of s in Var(W) = s / fan; the search's alpha multiplies init.scale (c), and
    for the fixed-variance family (mode "fixed") there is no fan: s / fan_in becomes
    alpha = s / (c * fan_in) with the hidden layers' fan_in.
    """
    spec = init.from_config(cfg.model.init)
    mode = spec.mode if spec.mode in theory.MODES else "fan_in"
    per_unit = spec.scale * (_hidden_fan_in(cfg.model) if spec.mode == "fixed" else 1)
    preds = theory.predict(cfg.model.activation, mode, float(cfg.model.sigma_b))
    return {p.theory: None if p.alpha is None else p.alpha / per_unit for p in preds}


def _hidden_fan_in(model) -> int:
    if model.name == "mlp":
        return models.hidden_widths(model)[-1]
    if model.name == "cnn":
        return model.kernel_size ** (len(model.input_shape) - 1) * model.channels
    return model.hidden


def code_version() -> str:
    """The package version and, inside a git checkout, the commit."""
    from research import __version__

    head = os.path.join(os.path.dirname(os.path.dirname(__file__)), ".git", "HEAD")
    try:
        ref = open(head).read().strip()
        if ref.startswith("ref: "):
            ref = open(os.path.join(os.path.dirname(head), ref[5:])).read().strip()
        return f"{__version__}+{ref[:10]}"
    except OSError:
        return __version__


def make_sampler(cfg, worker_seed: int) -> optuna.samplers.BaseSampler:
    """The configured sampler; TPE and random are seeded per worker, QMC shares its sequence."""
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=worker_seed, n_startup_trials=min(10, cfg.trials // 2 or 1))
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=worker_seed)
    if cfg.sampler == "qmc":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=cfg.sampler_seed)
    if cfg.sampler == "grid":
        space = {"alpha": np.geomspace(*cfg.alpha_range, cfg.grid_points).tolist()}
        if cfg.learning_rate_range:
            space["learning_rate"] = np.geomspace(*cfg.learning_rate_range, 4).tolist()
        return optuna.samplers.GridSampler(space, seed=cfg.sampler_seed)
    try:
        import torch  # noqa: F401  (GPSampler's dependency)
    except ImportError:
        raise ConfigError(
            "search.sampler 'gp' needs PyTorch; pip install torch, or use tpe, qmc, grid or random."
        ) from None
    return optuna.samplers.GPSampler(seed=worker_seed)


def make_pruner(cfg, chunks: int) -> optuna.pruners.BasePruner:
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=chunks)
    if cfg.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state; surplus trials (asked past the budget in a race) count nowhere."""
    out = {state.name.lower(): 0 for state in TrialState}
    for t in study.get_trials(deepcopy=False):
        if not t.user_attrs.get("surplus"):
            out[t.state.name.lower()] += 1
    out["finished"] = out["complete"] + out["pruned"]
    return out


def reap_stale(study: optuna.Study, stale_after_s: float) -> int:
    """Fail RUNNING trials whose heartbeat stopped, and give every such failure one retry.

    A retry carries the dead population's checkpoint and slot, so it resumes where it
    stopped. A failure whose retry was never enqueued (the reaper died in between) gets
    one on the next call; a rare duplicate retry is rejected as surplus when asked.
    Returns how many trials this call failed.
    """
    now, reaped = time.time(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = t.user_attrs.get("heartbeat") or (t.datetime_start.timestamp() if t.datetime_start else now)
        if now - beat <= stale_after_s:
            continue
        try:
            if study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                reaped += 1
                log.warning(
                    "trial %d: worker %s stopped beating; failed for a retry", t.number, t.user_attrs.get("worker")
                )
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # finished meanwhile, or another worker got there first
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if t.state == TrialState.FAIL and not t.user_attrs.get("surplus") and t.number not in retried:
            retry = {"retry_of": t.number, "failure": f"stale: no heartbeat from {t.user_attrs.get('worker')}"}
            for key in ("checkpoint", "slot"):
                if key in t.user_attrs:
                    retry[key] = t.user_attrs[key]
            study.enqueue_trial(t.params, user_attrs=retry)
    return reaped


class Heartbeat:
    """A thread that stamps every trial this worker holds, so others can tell it is alive."""

    def __init__(self, study: optuna.Study, interval_s: float, worker: str):
        self._storage, self._interval, self._worker = study._storage, interval_s, worker
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def hold(self, trial: optuna.Trial) -> None:
        self._storage.set_trial_user_attr(trial._trial_id, "worker", self._worker)
        self._beat(trial._trial_id)
        with self._lock:
            self._ids.add(trial._trial_id)

    def release(self, trial: optuna.Trial) -> None:
        self.release_id(trial._trial_id)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval):
            with self._lock:
                ids = list(self._ids)
            for trial_id in ids:
                try:
                    self._beat(trial_id)
                    failing = False
                except optuna.exceptions.UpdateFinishedTrialError:
                    self.release_id(trial_id)
                except Exception as err:  # storage down: keep trying, the reaper's grace covers it
                    if not failing:
                        log.warning(
                            "heartbeat failed (%s); retrying every %.0f s", err.__class__.__name__, self._interval
                        )
                    failing = True
                    break

    def release_id(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _beat(self, trial_id: int) -> None:
        self._storage.set_trial_user_attr(trial_id, "heartbeat", time.time())


class _AllPruned(Exception):
    """Every trial of the population was pruned: stop training it."""


class Worker:
    """One process's share of a sweep: ask, train as a population, tell, until the budget is met."""

    def __init__(
        self,
        cfg,
        url: str,
        *,
        study_name: str | None = None,
        worker_index: int = 0,
        echo: Callable[[str], None] = print,
    ):
        from research import experiment

        self.cfg, self.scfg = cfg, cfg.search
        self.name = study_name or experiment.study_name(cfg)
        self.url = url
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.echo = echo
        self.study = create_study(cfg, url, self.name)
        self.study.sampler = make_sampler(self.scfg, self.scfg.sampler_seed + 1000 * worker_index)
        self.dataset = datalib.load(cfg.data)
        self.groups = models.groups(cfg.model)
        self.alpha_groups = tuple(self.scfg.alpha_groups) or self.groups
        unknown = set(self.alpha_groups) - set(self.groups)
        require(
            not unknown,
            f"search.alpha_groups {sorted(unknown)} are not layer groups of this model ({sorted(self.groups)}).",
        )
        self.seeds = self.scfg.probe_seeds if self.scfg.objective in PROBED else self.scfg.seeds
        self.size = self.scfg.trials_per_batch * self.seeds
        if self.scfg.objective in PROBED:
            self._probe = jax.jit(jax.vmap(self._probe_member, in_axes=(0, 0)))
            self.trainer = None
        else:
            self.trainer = trainlib.Trainer(cfg.model, cfg.train, self.dataset, population_size=self.size)
        self.study.pruner = make_pruner(self.scfg, self.trainer.num_chunks if self.trainer else 1)
        self.ckpt_root = os.path.join(self.scfg.runs_dir, "checkpoints", self.name)

    # --- the loop -------------------------------------------------------------------------
    def run(self, max_batches: int | None = None) -> int:
        """Work until the study holds `search.trials` finished trials; returns trials told here."""
        told, batches = 0, 0
        with Heartbeat(self.study, self.scfg.heartbeat_s, self.id) as heartbeat:
            while max_batches is None or batches < max_batches:
                retry(lambda: reap_stale(self.study, self.scfg.stale_after_s))
                trials = retry(lambda: self._ask_batch(heartbeat))
                if not trials:
                    if retry(lambda: counts(self.study))["finished"] >= self.scfg.trials:
                        break
                    time.sleep(self.scfg.poll_s)  # others hold the rest; wait to reap or finish
                    continue
                for group in _groups(trials):
                    told += self._run_group(group, heartbeat)
                batches += 1
        return told

    def _ask_batch(self, heartbeat: Heartbeat) -> list[optuna.Trial]:
        c = counts(self.study)
        live = c["complete"] + c["pruned"] + c["running"] + c["waiting"]
        k = min(self.scfg.trials_per_batch, max(0, self.scfg.trials - live) + c["waiting"])
        trials = []
        for _ in range(k):
            trial = self.study.ask()
            heartbeat.hold(trial)
            if self._admitted(trial):
                _suggest(trial, self.scfg)
                trials.append(trial)
            else:
                heartbeat.release(trial)
                self.study._storage.set_trial_user_attr(trial._trial_id, "surplus", True)
                self.study.tell(trial, state=TrialState.FAIL)
        return trials

    def _admitted(self, trial: optuna.Trial) -> bool:
        """Within the budget: fewer than `trials` live or finished trials numbered before it."""
        ahead = sum(
            1
            for t in self.study.get_trials(deepcopy=False, states=LIVE)
            if t.number < trial.number and not t.user_attrs.get("surplus")
        )
        return ahead < self.scfg.trials

    # --- one population -------------------------------------------------------------------
    def _run_group(self, trials: list[optuna.Trial], heartbeat: Heartbeat) -> int:
        population = self._population(trials)
        self.echo(
            f"[{self.id}] trials {[t.number for t in trials]}: alpha {[round(t.params['alpha'], 3) for t in trials]}"
        )
        if self.trainer is None:
            results = self._probe_values(population)
        else:
            results = self._train(trials, population)
        told = 0
        for i, trial in enumerate(trials):
            heartbeat.release(trial)
            attrs, value, state = results(i)
            try:
                retry(lambda: self._record(trial, attrs, value, state))  # noqa: B023  (called at once)
                told += 1
            except optuna.exceptions.UpdateFinishedTrialError:
                self.echo(f"[{self.id}] trial {trial.number} was taken over by another worker; its result is dropped")
        return told

    def _record(self, trial: optuna.Trial, attrs: dict, value: float | None, state: TrialState) -> None:
        for key, item in attrs.items():
            self.study._storage.set_trial_user_attr(trial._trial_id, key, _jsonable(item))
        self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)

    def _population(self, trials) -> trainlib.Population:
        seeds = self.seeds
        alpha = np.repeat([t.params["alpha"] for t in trials], seeds)
        lr = np.repeat([t.params.get("learning_rate", self.cfg.train.learning_rate) for t in trials], seeds)
        per_group = {g: alpha if g in self.alpha_groups else np.ones_like(alpha) for g in self.groups}
        return trainlib.Population.create(self.groups, per_group, lr, np.tile(np.arange(seeds), len(trials)))

    def _train(self, trials, population):
        seeds, objective = self.seeds, self.scfg.objective
        ckpt_dir = os.path.join(self.ckpt_root, uuid.uuid4().hex[:12])
        ckpt = checkpoint.Checkpointer(ckpt_dir, every_chunks=self.scfg.checkpoint_every_chunks, keep=1)
        for slot, trial in enumerate(trials):
            retry(lambda: self.study._storage.set_trial_user_attr(trial._trial_id, "checkpoint", ckpt_dir))  # noqa: B023
            retry(lambda: self.study._storage.set_trial_user_attr(trial._trial_id, "slot", slot))  # noqa: B023
        initial = self._resume(trials, population)
        resumed_at = int(initial[0]["step"]) if initial else 0  # read now: training donates the state
        pruned: set[int] = set()

        def on_chunk(chunk: int, metrics: dict[str, np.ndarray]) -> None:
            values = metrics[objective].reshape(len(trials), seeds).mean(axis=1)
            for i, trial in enumerate(trials):
                if i in pruned:
                    continue
                retry(lambda: trial.report(float(values[i]), chunk))  # noqa: B023  (called at once)
                if self.scfg.pruner != "none" and retry(trial.should_prune):
                    pruned.add(i)
            if len(pruned) == len(trials):
                raise _AllPruned

        if initial is not None:
            for chunk, row in enumerate(initial[1].array(objective).T, start=1):  # retries keep their curves
                for i, trial in enumerate(trials):
                    retry(lambda: trial.report(float(row.reshape(len(trials), seeds)[i].mean()), chunk))  # noqa: B023
        try:
            result = trainlib.train(self.trainer, population, on_chunk=on_chunk, checkpointer=ckpt, initial=initial)
        except _AllPruned:
            result = None
        ckpt.close()
        shutil.rmtree(ckpt_dir, ignore_errors=True)

        def outcome(i: int):
            if result is None or i in pruned:
                return {"resumed_from_step": resumed_at}, None, TrialState.PRUNED
            members = slice(i * seeds, (i + 1) * seeds)
            per_seed = result.final[objective][members]
            attrs = {
                "seeds": population.seed[members].tolist(),
                "seed_values": per_seed.tolist(),
                "diverged": result.diverged[members].tolist(),
                "curves": {m: result.curves.array(m)[members].tolist() for m in trainlib.METRICS},
                "layer_variance": result.layer_variance[members].tolist(),
                "resumed_from_step": resumed_at,
            }
            return attrs, float(np.mean(per_seed)), TrialState.COMPLETE

        return outcome

    def _resume(self, trials, population):
        """For retries of a dead population: its members' state and curves from the checkpoint."""
        sources = {t.user_attrs.get("checkpoint") for t in trials if "retry_of" in t.user_attrs}
        if len(sources) != 1 or None in sources or len({t.user_attrs.get("retry_of") is None for t in trials}) != 1:
            return None
        source = checkpoint.Checkpointer(sources.pop(), keep=1)
        record = source.record()
        if record is None:
            source.close()
            return None
        old = trainlib.Population.from_json(record["population"])
        restored = source.restore(self.trainer, old)
        source.close()
        if restored is None:
            return None
        seeds = self.seeds
        members = [t.user_attrs["slot"] * seeds + s for t in trials for s in range(seeds)]
        state, curves = restored
        self.echo(f"[{self.id}] resuming trials {[t.number for t in trials]} at step {int(state['step'])}")
        return self.trainer.select(state, members, population), curves.select(members)

    def _probe_member(self, alpha, seed):
        x = self.dataset.x_train[: self.scfg.probe_batch]
        if self.scfg.probe_inputs == "gaussian":
            x = jax.random.normal(jax.random.key(10_000), x.shape, x.dtype)
        x = x * self.scfg.probe_input_scale
        if self.scfg.objective == "forward_one_layer":  # the first pre-activation at unit variance,
            x = x / jnp.sqrt(alpha[self.groups[0]])  # as second_moment's z ~ N(0, 1) assumes
        graph = models.graphdef(self.cfg.model)
        return probes.measure(self.cfg.model, graph, jax.random.key(seed), alpha, x)

    def _probe_values(self, population):
        seeds, stat = self.seeds, PROBED[self.scfg.objective]
        pad = self.size - population.size
        alpha = {g: jnp.asarray(np.concatenate([a, np.repeat(a[:1], pad)])) for g, a in population.alpha.items()}
        seed = jnp.asarray(np.concatenate([population.seed, np.repeat(population.seed[:1], pad)]))
        stats = jax.tree.map(lambda a: np.asarray(a)[: population.size], self._probe(alpha, seed))
        slopes = {
            name: np.asarray(probes.log_slope(jnp.asarray(getattr(stats, name)))) for name in probes.Stats._fields
        }
        if self.scfg.objective == "forward_one_layer":
            slopes["forward"] = np.log(stats.forward[:, 1] / stats.forward[:, 0])

        def outcome(i: int):
            members = slice(i * seeds, (i + 1) * seeds)
            slope = slopes[stat][members]
            attrs = {
                "seeds": population.seed[members].tolist(),
                "seed_values": np.abs(slope).tolist(),
                "log_slope": {k: v[members].tolist() for k, v in slopes.items()},
                "per_layer": {k: np.median(getattr(stats, k)[members], axis=0).tolist() for k in probes.Stats._fields},
            }
            value = abs(float(np.mean(slope)))
            return attrs, value if math.isfinite(value) else 1e3, TrialState.COMPLETE

        return outcome


def _suggest(trial: optuna.Trial, cfg) -> None:
    """Sample (or, for an enqueued retry, read back) the trial's alpha and learning rate."""
    trial.suggest_float("alpha", *cfg.alpha_range, log=True)
    if cfg.learning_rate_range:
        trial.suggest_float("learning_rate", *cfg.learning_rate_range, log=True)


def _groups(trials: list[optuna.Trial]) -> list[list[optuna.Trial]]:
    """Retries of the same dead population run together (resumable), fresh trials together."""
    by_source: dict[str | None, list[optuna.Trial]] = {}
    for t in trials:
        key = t.user_attrs.get("checkpoint") if "retry_of" in t.user_attrs else None
        by_source.setdefault(key, []).append(t)
    return [group for key, group in sorted(by_source.items(), key=lambda kv: kv[0] is None)]


def _check_range(field: str, value) -> None:
    ok = isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)
    require(
        ok and 0 < value[0] < value[1] and math.isfinite(value[1]),
        f"{field} must be (low, high) with 0 < low < high; got {value!r}.",
    )


def _jsonable(value):
    """User attributes as strict JSON: NaN and inf become None."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def retry(call, attempts: int = 8, first_wait_s: float = 1.0):
    """Run a storage call, retrying with exponential backoff while the storage is unreachable."""
    import sqlalchemy

    wait = first_wait_s
    for attempt in range(attempts):
        try:
            return call()
        except (
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.InterfaceError,
            optuna.exceptions.StorageInternalError,  # how RDBStorage wraps a failed commit
            ConnectionError,
        ) as err:
            if attempt == attempts - 1:
                raise
            log.warning("storage unreachable (%s); retrying in %.0f s", err.__class__.__name__, wait)
            print(f"storage unreachable ({err.__class__.__name__}); retrying in {wait:.0f} s", flush=True)
            time.sleep(wait)
            wait = min(wait * 2, 60.0)
