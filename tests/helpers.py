"""Helpers shared by test modules (fixtures stay in conftest.py): the tiny experiment, worker
processes, the exactly-once check on a study's trials and a training run preempted mid-way."""

import os
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
TINY = os.path.join(TESTS, "fixtures", "tiny_experiment.py")
EXPERIMENTS = os.path.join(os.path.dirname(TESTS), "experiments")
POSTGRES = os.environ.get("RESEARCH_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/research_test")


def service_absent(what: str):
    """Skip where a service is truly absent; with RESEARCH_REQUIRE_SERVICES=1 (CI) fail instead."""
    if os.environ.get("RESEARCH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required here (RESEARCH_REQUIRE_SERVICES=1) but absent")
    pytest.skip(f"{what} is not available on this machine")


def overrides(tmp_path, data_root, *extra) -> list[str]:
    """Overrides that keep a test's runs and data in its own folders."""
    return [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}", *extra]


def worker_argv(url, overrides, index=0, config=TINY) -> list[str]:
    """`research worker` arguments (after `python -m research`)."""
    argv = ["worker", "--config", config, "--storage", url, "--index", str(index)]
    return argv + [a for o in overrides for a in ("--set", o)]


def worker(url, overrides, index=0) -> subprocess.Popen:
    """A `research worker` process on the tiny experiment, its output piped."""
    argv = [sys.executable, "-m", "research", *worker_argv(url, overrides, index)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def assert_exactly_once(study: optuna.Study, target: int, chunks: int = 4, seeds: int = 2) -> list:
    """Exactly `target` complete trials; every other trial is surplus or a failure retried to completion."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == target
    assert len({t.number for t in complete}) == target
    # Every failed trial is either surplus (asked past the budget in a race) or stale, and then
    # its chain of retries (a retry can be killed too) ends in exactly one complete trial.
    retries = {}
    for t in trials:
        if "retry_of" in t.user_attrs and not t.user_attrs.get("surplus"):
            assert t.user_attrs["retry_of"] not in retries, "two live retries of one trial"
            retries[t.user_attrs["retry_of"]] = t
    by_number = {t.number: t for t in trials}
    for t in trials:
        assert t.state in (TrialState.COMPLETE, TrialState.FAIL)
        if t.state == TrialState.FAIL and not t.user_attrs.get("surplus"):
            end = t
            while end.state != TrialState.COMPLETE:
                assert end.number in retries, f"trial {end.number} failed and was never retried"
                end = by_number[retries[end.number].number]
    retried = [t.user_attrs["retry_of"] for t in complete if "retry_of" in t.user_attrs]
    assert len(retried) == len(set(retried))
    for t in complete:
        # Full curves, also for retries (resumed from a checkpoint, they keep the chunks before it).
        assert len(t.user_attrs["seed_values"]) == seeds and len(t.user_attrs["curves"]["train_loss"][0]) == chunks
    return complete


def poll(condition, timeout_s: float, every_s: float = 0.05) -> bool:
    """Whether `condition()` turned true within `timeout_s` (checked every `every_s`): waiting for an
    event without a fixed sleep that is too short on a slow machine and wasted on a fast one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return bool(condition())


def crash_at_chunk_3(trainer, population, directory) -> None:
    """Train with checkpoints until an exception at chunk 3, after the last write finished
    (writes are asynchronous; a kill would lose the one in flight)."""
    from research import checkpoint, train

    class Preempted(Exception):
        pass

    def preempt(chunk, metrics):
        if chunk == 3:
            raise Preempted

    writer = checkpoint.Checkpointer(directory)
    with pytest.raises(Preempted):
        train.train(trainer, population, checkpointer=writer, on_chunk=preempt)
    writer.close()
