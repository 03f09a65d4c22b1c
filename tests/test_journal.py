"""The journal file stays whole: a writer killed mid-append, its lock, joined and damaged records."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState

from research import journal, storage

pytestmark = pytest.mark.reliability

# A child that takes the journal's lock as a worker does, writes the first `cut` bytes of a large
# record, and is killed there (SIGKILL: no cleanup, the lock file stays).
KILLED_MID_APPEND = """
import json, os, signal, sys
from research import journal
path, cut = sys.argv[1], int(sys.argv[2])
lock = journal.OwnedLock(path)
lock.acquire()
record = json.dumps({"op_code": 8, "worker_id": "killed", "trial_id": 0, "user_attr": {"x": "y" * 200000}})
with open(path, "ab") as f:
    f.write(record.encode()[:cut])
    f.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _objective(trial):
    trial.set_user_attr("curve", [random.random() for _ in range(2000)])  # large records, as a worker's
    return trial.suggest_float("alpha", 0.5, 8.0, log=True)


@pytest.mark.slow
def test_a_writer_killed_at_any_byte_of_a_large_record_never_loses_a_finished_trial(tmp_path):
    url = str(tmp_path / "s.journal")
    study = optuna.create_study(study_name="s", storage=storage.open_storage(url))
    rng, finished, stalls = random.Random(0), 0, []
    for _ in range(6):
        stop = threading.Event()

        def keep_writing(stop=stop):
            while not stop.is_set():
                started = time.monotonic()
                study.optimize(_objective, n_trials=1)
                stalls.append(time.monotonic() - started)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        cut = rng.randrange(1, 200000)
        child = subprocess.run([sys.executable, "-c", KILLED_MID_APPEND, url, str(cut)], capture_output=True)
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
        time.sleep(0.5)  # the live writer goes on past the dead one's lock and torn record
        stop.set()
        writer.join(timeout=60)
        assert not writer.is_alive()
        finished = len([t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE])
        reread = optuna.load_study(study_name="s", storage=storage.open_storage(url))
        assert len([t for t in reread.trials if t.state == TrialState.COMPLETE]) == finished
    assert finished >= 6
    assert len(list(tmp_path.glob("s.journal.torn-*"))) == 6  # each fragment kept aside, none joined
    assert max(stalls) < 10  # the dead writer's lock is broken at once, not after the 30 s grace
    print(f"\n6 writers killed mid-record: {finished} trials kept, longest append {max(stalls):.2f} s")


def test_a_record_joined_to_a_torn_one_by_an_old_append_is_recovered_with_a_warning(tmp_path, caplog):
    url = str(tmp_path / "s.journal")
    study = optuna.create_study(study_name="s", storage=storage.open_storage(url))
    study.optimize(_objective, n_trials=2)
    head = open(url, "rb").read()
    study.optimize(_objective, n_trials=1)
    tail = open(url, "rb").read()[len(head) :]
    # What an append onto a torn record used to leave: the fragment and the next record on one line.
    with open(url, "wb") as f:
        f.write(head + b'{"op_code":8,"worker_id":"killed","trial_id":0,"user_attr":{"x":"yy' + tail)
    with pytest.raises(ValueError):
        JournalStorage(JournalFileBackend(url, lock_obj=JournalFileOpenLock(url)))  # unreadable for Optuna alone
    study = optuna.load_study(study_name="s", storage=storage.open_storage(url))
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 3
    assert "does not decode; kept the record it ends with" in caplog.text


def test_a_lock_left_by_a_dead_process_is_taken_over_at_once_and_a_live_ones_is_not(tmp_path):
    path = str(tmp_path / "s.journal")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open(path + ".lock", "w") as f:
        f.write(f"{journal.HOST} {dead.pid}")
    started = time.monotonic()
    lock = journal.OwnedLock(path)
    lock.acquire()
    assert time.monotonic() - started < 2
    lock.release()
    with open(path + ".lock", "w") as f:  # held by a live process (this one's parent): waits
        f.write(f"{journal.HOST} {os.getppid()}")
    taken = threading.Event()
    waiter = threading.Thread(target=lambda: (journal.OwnedLock(path, grace_period=3).acquire(), taken.set()))
    waiter.start()
    assert not taken.wait(1.5)
    assert taken.wait(5)  # until the grace period, measured on the waiter's own clock
    waiter.join()


def test_a_journal_opened_read_only_reads_and_never_writes(tmp_path):
    url = str(tmp_path / "s.journal")
    optuna.create_study(study_name="s", storage=storage.open_storage(url)).optimize(_objective, n_trials=2)
    with open(url, "ab") as f:
        f.write(b'{"op_code":8,"wor')  # a torn tail: a reader does not repair it
    before = open(url, "rb").read()
    study = optuna.load_study(study_name="s", storage=storage.open_existing(url))
    assert len(study.trials) == 2
    with pytest.raises(Exception, match="opened read-only"):
        study.set_user_attr("x", 1)
    assert open(url, "rb").read() == before and not os.path.exists(url + ".lock")
