"""How workers share one study through its storage alone: budget, heartbeats, reaping, retries.

Any number of workers, on one machine or a cluster, ask trials from the same study. A trial
is admitted only while fewer than the budget's trials are ahead of it, so the count of
finished trials is exact under races; a live trial carries its worker's heartbeat, and a
trial whose heartbeat stops is failed and enqueued once more (with its checkpoint, so the
retry resumes). Everything goes through Optuna's public API, on any storage.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from research import names
from research.errors import StorageUnreachable

log = logging.getLogger(__name__)

LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state; surplus trials (asked past the budget in a race) count nowhere."""
    out = {state.name.lower(): 0 for state in TrialState}
    for t in study.get_trials(deepcopy=False):
        if not t.user_attrs.get("surplus"):
            out[t.state.name.lower()] += 1
    out["finished"] = out["complete"] + out["pruned"]
    return out


def ask_batch(
    study: optuna.Study, heartbeat: Heartbeat, budget: int, most: int, suggest: Callable[[optuna.Trial], str | None]
) -> list[optuna.Trial]:
    """Up to `most` trials this worker may run now (waiting retries first, as Optuna asks them),
    each held by `heartbeat` and given its parameters by `suggest`, which returns why a trial
    cannot run (a retry outside today's search space) or None; such a trial is rejected, and
    one asked past `budget` in a race is failed as surplus."""
    c = counts(study)
    live = c["complete"] + c["pruned"] + c["running"] + c["waiting"]
    trials = []
    for _ in range(min(most, max(0, budget - live) + c["waiting"])):
        trial = study.ask()
        heartbeat.hold(trial)
        if not _admitted(study, trial, budget):
            heartbeat.release(trial)
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
        elif (reason := suggest(trial)) is not None:
            heartbeat.release(trial)
            reject(study, trial, reason)
            log.warning("trial %d rejected: %s", trial.number, reason)
        else:
            trials.append(trial)
    return trials


class Reaper:
    """Fails RUNNING trials whose heartbeat stopped and gives each such failure one retry, at most
    `max_retries` along one chain of retries (a trial that kills every worker never blocks a study).

    A heartbeat is judged by whether it changes, timed on this process's monotonic clock: a
    worker whose host clock is off is alive as long as its stamps keep changing. A worker of this
    host whose process is gone is reaped at once. A retry carries
    the dead population's checkpoint and slot, so it resumes where it stopped; a failure whose
    retry was never enqueued (the reaper died in between) gets one on the next call, and a second
    retry enqueued by a racing reaper is refused when asked (`_admitted`).
    """

    def __init__(self, stale_after_s: float, max_retries: int = 2, clock: Callable[[], float] = time.monotonic):
        self.stale_after_s, self.max_retries, self._clock = stale_after_s, max_retries, clock
        self._seen: dict[int, tuple[object, float]] = {}  # trial -> (its last heartbeat, when it was first seen)

    def __call__(self, study: optuna.Study) -> int:
        """Reap what stopped beating in `study`; returns how many trials this call failed."""
        reaped = {t.number for t in self._stopped(study) if self._fail(study, t)}
        trials = study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get("retry_of") for t in trials}
        for t in trials:
            if t.state == TrialState.FAIL and t.number not in retried and not _final(t):
                self._retry(study, t, t.number in reaped)
        return len(reaped)

    def _stopped(self, study: optuna.Study) -> list:
        now, stopped, running = self._clock(), [], study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for t in running:
            beat = t.user_attrs.get("heartbeat")
            last, since = self._seen.get(t.number, (None, None))
            if _dead_here(t.user_attrs.get("worker")):
                stopped.append(t)  # its process is gone from this host: no need to wait
            elif since is None or beat != last:
                self._seen[t.number] = (beat, now)
            elif now - since > self.stale_after_s:
                stopped.append(t)
        numbers = {t.number for t in running}
        self._seen = {n: seen for n, seen in self._seen.items() if n in numbers}
        return stopped

    @staticmethod
    def _fail(study: optuna.Study, t) -> bool:
        try:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # another worker finished or failed it between the check and the write
        log.warning("trial %d: worker %s stopped beating; failed for a retry", t.number, t.user_attrs.get("worker"))
        return True

    def _retry(self, study: optuna.Study, t, reaped_here: bool) -> None:
        attempt = t.user_attrs.get("attempt", 0) + 1
        if attempt > self.max_retries:
            if reaped_here:  # the study records why (a trial of another process takes no attributes)
                reason = f"failed {attempt} times, last: stale, no heartbeat from {t.user_attrs.get('worker')}"
                study.set_user_attr(f"abandoned_trial_{t.number}", reason)
                log.warning("trial %d %s; it is not retried (search.max_retries)", t.number, reason)
            return
        failure = f"stale: no heartbeat from {t.user_attrs.get('worker')}"
        retry = {"retry_of": t.number, "attempt": attempt, "failure": failure}
        retry.update({key: t.user_attrs[key] for key in ("checkpoint", "slot") if key in t.user_attrs})
        study.enqueue_trial(t.params, user_attrs=retry)


def checkpoints_in_use(study: optuna.Study, max_retries: int) -> set[str]:
    """The checkpoint folders (absolute) a trial may still resume from: those of running or
    waiting trials, and of failed ones that will get a retry."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    live = (TrialState.RUNNING, TrialState.WAITING)

    def may_retry(t) -> bool:
        return (
            t.state == TrialState.FAIL
            and t.number not in retried
            and not _final(t)
            and (t.user_attrs.get("attempt", 0) < max_retries)
        )

    used = (t.user_attrs.get("checkpoint") for t in trials if t.state in live or may_retry(t))
    return {os.path.abspath(path) for path in used if path}


def release(study: optuna.Study, trial: optuna.Trial) -> None:
    """Give back a trial its worker was told to stop (preemption): its retry is enqueued first, at
    the same attempt (a preemption is no fault of the trial) and with its checkpoint, then the
    trial is failed, so no reaper ever adds a second retry."""
    attrs = trial.user_attrs
    retry = {"retry_of": trial.number, "attempt": attrs.get("attempt", 0), "failure": "preempted"}
    retry.update({key: attrs[key] for key in ("checkpoint", "slot") if key in attrs})
    study.enqueue_trial(trial.params, user_attrs=retry)
    trial.set_user_attr("preempted", True)
    study.tell(trial, state=TrialState.FAIL)


def reject(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Fail a trial for good (no retry), with `reason` recorded on it."""
    trial.set_user_attr("rejected", reason)
    study.tell(trial, state=TrialState.FAIL)


def record(study: optuna.Study, trial: optuna.Trial, attrs: dict, value: float | None, state: TrialState) -> None:
    """Store a finished trial's attributes (as strict JSON), then tell its value and state."""
    for key, item in attrs.items():
        trial.set_user_attr(key, jsonable(item))
    study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)


class Heartbeat:
    """A thread that stamps every trial this worker holds, so others can tell it is alive."""

    def __init__(self, interval_s: float, worker: str, clock: Callable[[], float] = time.time):
        self._interval, self._worker, self._clock = interval_s, worker, clock
        self._held: dict[int, optuna.Trial] = {}
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
        trial.set_user_attr("worker", self._worker)
        trial.set_user_attr("heartbeat", self._clock())
        with self._lock:
            self._held[trial.number] = trial

    def release(self, trial: optuna.Trial) -> None:
        with self._lock:
            self._held.pop(trial.number, None)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval):
            with self._lock:
                held = list(self._held.values())
            for trial in held:
                try:
                    trial.set_user_attr("heartbeat", self._clock())
                    failing = False
                except optuna.exceptions.UpdateFinishedTrialError:
                    self.release(trial)
                except Exception as err:  # storage down: keep trying, the reaper's grace covers it
                    if not failing:
                        log.warning(
                            "heartbeat failed (%s); retrying every %.0f s", err.__class__.__name__, self._interval
                        )
                    failing = True
                    break


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
            StorageUnreachable,  # opening the storage again (create_study) while the server is down
            ConnectionError,
        ) as err:
            if attempt == attempts - 1:
                raise
            log.warning("storage unreachable (%s); retrying in %.0f s", err.__class__.__name__, wait)
            print(f"storage unreachable ({err.__class__.__name__}); retrying in {wait:.0f} s", flush=True)
            time.sleep(wait)
            wait = min(wait * 2, 60.0)


def jsonable(value):
    """User attributes as strict JSON: NaN and inf become None."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _dead_here(worker: str | None) -> bool:
    """Whether `worker` ("host:pid:tag", as Worker names itself) ran on this host in a process
    that no longer exists."""
    host, _, rest = (worker or "").partition(":")
    return names.gone(host, rest.partition(":")[0])


def _final(trial) -> bool:
    """Failed trials that are never retried: surplus asks and rejected trials."""
    return bool(trial.user_attrs.get("surplus") or trial.user_attrs.get("rejected"))


def _admitted(study: optuna.Study, trial: optuna.Trial, budget: int) -> bool:
    """Within the budget (fewer than `budget` live or finished trials numbered before it) and, for
    a retry, the first retry of its trial (two reapers racing may each enqueue one)."""
    trials = study.get_trials(deepcopy=False)
    before = [t for t in trials if t.number < trial.number and not t.user_attrs.get("surplus")]
    of = trial.user_attrs.get("retry_of")
    if of is not None and any(t.user_attrs.get("retry_of") == of for t in before):
        return False
    return sum(t.state in LIVE for t in before) < budget
