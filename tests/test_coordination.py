"""Workers' shared protocol on a real journal: the budget, heartbeats, reaping and retries."""

import time

import optuna
from optuna.trial import TrialState

from research import coordination, storage
from research.errors import StorageUnreachable
from tests import helpers


def _study(tmp_path) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=storage.open_storage(str(tmp_path / "s.journal")))


def _suggest(trial):
    trial.suggest_float("alpha", 0.5, 8.0, log=True)


class Clock:
    """A monotonic clock a test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _reaper(stale_after_s=10.0, max_retries=2):
    clock = Clock()
    return coordination.Reaper(stale_after_s, max_retries, clock=clock), clock


def _reap_after_silence(reap, clock, study) -> int:
    """One look, then another after the stale period with no heartbeat in between."""
    assert reap(study) == 0
    clock.now += reap.stale_after_s + 1
    return reap(study)


def test_ask_batch_stops_at_the_budget(tmp_path):
    study = _study(tmp_path)
    beat = coordination.Heartbeat(60.0, "w")
    first = coordination.ask_batch(study, beat, budget=3, most=2, suggest=_suggest)
    second = coordination.ask_batch(study, beat, budget=3, most=2, suggest=_suggest)
    assert len(first) == 2 and len(second) == 1
    assert coordination.ask_batch(study, beat, budget=3, most=2, suggest=_suggest) == []
    assert coordination.counts(study)["running"] == 3
    assert all(t.user_attrs["worker"] == "w" for t in study.get_trials(deepcopy=False))


def test_a_stale_trial_is_failed_once_and_retried_once_with_its_checkpoint(tmp_path):
    study = _study(tmp_path)
    beat = coordination.Heartbeat(60.0, "dead-worker")
    (trial,) = coordination.ask_batch(study, beat, budget=1, most=1, suggest=_suggest)
    trial.set_user_attr("checkpoint", "/ckpt/abc")
    trial.set_user_attr("slot", 0)
    reap, clock = _reaper()
    assert _reap_after_silence(reap, clock, study) == 1
    assert reap(study) == 0  # failed once, retried once
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    retry = trials[1]
    assert retry.user_attrs["retry_of"] == trial.number
    assert retry.user_attrs["checkpoint"] == "/ckpt/abc" and retry.user_attrs["slot"] == 0
    # The retry is asked next and keeps its alpha.
    (again,) = coordination.ask_batch(study, beat, budget=1, most=1, suggest=_suggest)
    assert again.number == retry.number and again.params["alpha"] == trial.params["alpha"]


def test_a_live_heartbeat_keeps_a_trial_from_being_reaped(tmp_path):
    study = _study(tmp_path)
    with coordination.Heartbeat(0.2, "alive") as beat:
        (trial,) = coordination.ask_batch(study, beat, budget=1, most=1, suggest=_suggest)
        stamped = study.get_trials(deepcopy=False)[0].user_attrs["heartbeat"]
        beat_at = lambda: study.get_trials(deepcopy=False)[0].user_attrs["heartbeat"]  # noqa: E731
        assert helpers.poll(lambda: beat_at() >= stamped + 1.0, 30)  # the thread beats on past the 0.9 s window
        reap = coordination.Reaper(stale_after_s=0.9)
        assert reap(study) == 0 and helpers.poll(lambda: beat_at() >= stamped + 2.0, 30)
        assert reap(study) == 0  # 1 s later on the reaper's clock, but it beat in between
        beat.release(trial)
    assert study.get_trials(deepcopy=False)[0].state == TrialState.RUNNING


def test_record_stores_strict_json_then_tells(tmp_path):
    study = _study(tmp_path)
    (trial,) = coordination.ask_batch(study, coordination.Heartbeat(60.0, "w"), budget=1, most=1, suggest=_suggest)
    coordination.record(study, trial, {"seed_values": [1.5, float("nan")]}, 1.5, TrialState.COMPLETE)
    done = study.get_trials(deepcopy=False)[0]
    assert done.state == TrialState.COMPLETE and done.value == 1.5
    assert done.user_attrs["seed_values"] == [1.5, None]


def test_a_trial_whose_workers_keep_dying_is_retried_at_most_max_retries_times(tmp_path):
    study = _study(tmp_path)
    beat = coordination.Heartbeat(60.0, "doomed")
    for attempt in range(3):  # each time the trial (or its retry) is asked, its worker dies, the reaper fails it
        (asked,) = coordination.ask_batch(study, beat, budget=1, most=1, suggest=_suggest)
        assert asked.user_attrs.get("attempt", 0) == attempt
        reap, clock = _reaper(max_retries=2)
        assert _reap_after_silence(reap, clock, study) == 1
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3  # the trial and its two retries, no more
    assert [t.user_attrs.get("attempt", 0) for t in trials] == [0, 1, 2]
    assert study.user_attrs["abandoned_trial_2"] == "failed 3 times, last: stale, no heartbeat from doomed"
    # The budget is free again: the next ask is a fresh trial, not a fourth attempt.
    (fresh,) = coordination.ask_batch(study, beat, budget=1, most=1, suggest=_suggest)
    assert "retry_of" not in fresh.user_attrs


def test_a_rejected_trial_is_failed_with_its_reason_and_never_retried(tmp_path):
    study = _study(tmp_path)
    beat = coordination.Heartbeat(60.0, "w")
    study.enqueue_trial({"alpha": 1e30}, user_attrs={"retry_of": 7})
    assert coordination.ask_batch(study, beat, budget=1, most=1, suggest=lambda t: "outside the range") == []
    (rejected,) = study.get_trials(deepcopy=False)
    assert rejected.state == TrialState.FAIL and rejected.user_attrs["rejected"] == "outside the range"
    reap, clock = _reaper()
    assert _reap_after_silence(reap, clock, study) == 0
    assert len(study.get_trials(deepcopy=False)) == 1  # no retry enqueued


def test_retry_waits_out_a_storage_that_cannot_be_opened():
    """A worker reopening its storage (create_study) while the server restarts waits instead of exiting."""
    calls = []

    def opening():
        calls.append(1)
        if len(calls) < 3:
            raise StorageUnreachable("storage postgresql://*** is unreachable: connection refused.")
        return "study"

    assert coordination.retry(opening, first_wait_s=0.0) == "study" and len(calls) == 3


def test_a_worker_whose_clock_is_five_minutes_behind_is_never_reaped_while_it_beats(tmp_path):
    study = _study(tmp_path)
    behind = lambda: time.time() - 300  # noqa: E731  (its host's clock)
    with coordination.Heartbeat(0.1, "behind", clock=behind) as beat:
        (trial,) = coordination.ask_batch(study, beat, budget=1, most=1, suggest=_suggest)
        reap = coordination.Reaper(stale_after_s=1.0)
        started = time.monotonic()
        while time.monotonic() - started < 3.0:  # three stale periods on the reaper's clock
            assert reap(study) == 0
            time.sleep(0.2)
        beat.release(trial)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.RUNNING]


def test_two_reapers_racing_over_one_dead_trial_get_one_retry_admitted(tmp_path):
    study = _study(tmp_path)
    beat = coordination.Heartbeat(60.0, "dead")
    (dead,) = coordination.ask_batch(study, beat, budget=5, most=1, suggest=_suggest)
    study.tell(dead.number, state=TrialState.FAIL)
    for _ in range(2):  # what two reapers that read the failure at the same moment each enqueue
        study.enqueue_trial(dead.params, user_attrs={"retry_of": dead.number, "attempt": 1})
    asked = coordination.ask_batch(study, beat, budget=5, most=5, suggest=_suggest)
    retries = [t for t in asked if "retry_of" in t.user_attrs]
    assert len(retries) == 1 and retries[0].number == dead.number + 1  # the first one enqueued
    duplicate = study.get_trials(deepcopy=False)[dead.number + 2]
    assert duplicate.state == TrialState.FAIL and duplicate.user_attrs["surplus"]
    assert coordination.counts(study)["running"] == len(asked) == 4  # the budget is not spent on it


def test_a_trial_of_a_process_gone_from_this_host_is_reaped_at_once(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    study = _study(tmp_path)
    beat = coordination.Heartbeat(60.0, f"{socket.gethostname()}:{gone.pid}:abcdef")
    coordination.ask_batch(study, beat, budget=2, most=1, suggest=_suggest)
    alive = coordination.Heartbeat(60.0, f"{socket.gethostname()}:{os.getpid()}:abcdef")
    coordination.ask_batch(study, alive, budget=2, most=1, suggest=_suggest)
    assert coordination.Reaper(stale_after_s=1000.0)(study) == 1  # the gone one, on the first look
    assert [t.state for t in study.get_trials(deepcopy=False)][:2] == [TrialState.FAIL, TrialState.RUNNING]
