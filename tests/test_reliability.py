"""Reliability: load, worker and storage faults, bad input, numerics, exposure.

Marked `reliability` (and `slow`); .ci/run runs them with the rest. Each test states the
figure it proves; the closing numbers come from their printed lines (pytest -s).
"""

import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import types

import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from research import cli, devices, estimate, experiment, objectives, provenance, storage, studies, sweep, verdicts
from research.errors import ConfigError
from tests import helpers

pytestmark = pytest.mark.reliability  # a category (make test-reliability); slow tests are marked one by one

LOAD = ["search.objective='forward_log_ratio'", "search.trials=200", "search.trials_per_batch=10", "search.seeds=1",
        "search.heartbeat_s=2.0", "search.stale_after_s=60.0", "model.depth=4"]  # fmt: skip


def _load(url, tmp_path, data_root):
    overrides = helpers.overrides(tmp_path, data_root, *LOAD)
    started = time.time()
    workers = [helpers.worker(url, overrides, i) for i in range(8)]
    outputs = [w.communicate(timeout=1200)[0] for w in workers]
    seconds = time.time() - started
    assert all(w.returncode == 0 for w in workers), [o[-2000:] for o in outputs]
    study = optuna.load_study(study_name="tiny-quick-forward_log_ratio", storage=storage.open_storage(url))
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert len(complete) == 200 and len({t.number for t in complete}) == 200
    assert all(len(t.user_attrs["per_layer"]["forward"]) == 4 for t in complete)  # every trial's curve stored
    failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
    assert all(t.user_attrs.get("surplus") for t in failed)
    rate = 200 * 60 / seconds
    where = storage.redact(url)
    print(f"\nload {where}: 8 workers, 200 trials in {seconds:.0f} s = {rate:.0f} trials/min, {len(failed)} surplus")


@pytest.mark.slow
def test_load_8_workers_200_trials_on_a_journal(tmp_path, data_root):
    _load(str(tmp_path / "load.journal"), tmp_path, data_root)


@pytest.mark.slow
@pytest.mark.service
def test_load_8_workers_200_trials_on_postgresql(postgres, tmp_path, data_root):
    _load(postgres, tmp_path, data_root)


def _checkpointed_pids(url: str) -> set[int]:
    """PIDs of workers holding a population that has written a checkpoint."""
    try:
        study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    except KeyError:
        return set()
    pids = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        folder, worker = t.user_attrs.get("checkpoint"), t.user_attrs.get("worker")
        # A retry carries its dead population's checkpoint before a worker has claimed it.
        if worker and folder and os.path.isdir(folder) and any(p.isdigit() for p in os.listdir(folder)):
            pids.add(int(worker.split(":")[1]))
    return pids


@pytest.mark.slow
def test_chaos_repeated_sigkills_lose_no_trial(tmp_path, data_root):
    # Four rounds: wait until some population has checkpointed, SIGKILL its worker (and, every
    # other round, one more at random), restart it as a scheduler would. Bounded: 4 rounds.
    url = str(tmp_path / "chaos.journal")
    overrides = helpers.overrides(
        tmp_path, data_root, "model.width=256", "train.batch_size=128", "train.steps=3000", "train.chunk_steps=100",
        "search.trials=9",
    )  # fmt: skip
    workers = {i: helpers.worker(url, overrides, i) for i in range(3)}
    rng, kills = random.Random(0), 0
    for round_ in range(4):
        deadline = time.time() + 120
        while time.time() < deadline and not (_checkpointed_pids(url) & {w.pid for w in workers.values()}):
            time.sleep(0.2)
        targets = _checkpointed_pids(url) & {w.pid for w in workers.values() if w.poll() is None}
        if round_ % 2:
            targets |= {rng.choice([w.pid for w in workers.values() if w.poll() is None] or [0])}
        for index, proc in list(workers.items()):
            if proc.pid in targets and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                workers[index] = helpers.worker(url, overrides, index)
    for w in workers.values():
        w.communicate(timeout=900)
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    complete = helpers.assert_exactly_once(study, 9, chunks=30)
    resumed = [t.user_attrs["resumed_from_step"] for t in complete if "retry_of" in t.user_attrs]
    print(f"\nchaos: {kills} SIGKILLs, 9/9 trials finished once, {len(resumed)} resumed at steps {sorted(resumed)}")
    assert kills >= 3 and resumed and max(resumed) > 0


@pytest.mark.slow
@pytest.mark.service
def test_postgresql_down_for_30_seconds_mid_sweep(postgres, tmp_path, data_root):
    cluster = os.environ.get("RESEARCH_TEST_PG_CLUSTER")
    if not cluster:
        helpers.service_absent("a PostgreSQL cluster this test may stop (RESEARCH_TEST_PG_CLUSTER)")
    overrides = helpers.overrides(
        tmp_path, data_root, "train.steps=600", "search.trials=9", "search.stale_after_s=120.0"
    )
    workers = [helpers.worker(postgres, overrides, i) for i in range(2)]
    time.sleep(15)
    try:
        subprocess.run(["pg_ctlcluster", *cluster.split(), "stop"], check=True)
        time.sleep(30)
    finally:  # whatever happens, the server comes back for the tests after this one
        subprocess.run(["pg_ctlcluster", *cluster.split(), "start"], check=True)
    # 1800 s: on 2 loaded cores one worker's batch took over 12 minutes after the restart (see the
    # stop note of 2026-11-30); the cause is open, the test still demands every trial exactly once.
    outputs = [w.communicate(timeout=1800)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[-3000:] for o in outputs]
    assert any("storage unreachable" in o for o in outputs)  # a message says what happened
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(postgres))
    helpers.assert_exactly_once(study, 9, chunks=60)


def _tmpfs(path, size="256k"):
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        helpers.service_absent(f"a tmpfs mount for the disk-fault test ({done.stderr.decode().strip()})")


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_journal_on_a_full_or_read_only_disk_is_a_clear_error_and_keeps_trials(tmp_path, data_root, fault):
    disk = tmp_path / "disk"
    _tmpfs(disk)
    try:
        url = str(disk / "studies.journal")
        study = optuna.create_study(study_name="kept", storage=storage.open_storage(url))
        study.optimize(lambda t: t.suggest_float("alpha", 0.5, 8.0, log=True), n_trials=5)
        if fault == "full":
            with open(disk / "filler", "wb") as f:
                try:
                    f.write(b"\0" * (1 << 20))
                except OSError:
                    pass
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        argv = helpers.worker_argv(url, helpers.overrides(tmp_path, data_root))
        done = subprocess.run([sys.executable, "-m", "research", *argv], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr[-2000:]
        message = done.stderr.strip().splitlines()[-1]
        assert "Traceback" not in done.stderr and ("No space left" in message or "Read-only" in message)
        kept = optuna.load_study(study_name="kept", storage=storage.open_existing(str(url)))  # read-only: read as is
        assert len([t for t in kept.trials if t.state == TrialState.COMPLETE]) == 5
        if fault == "read-only":  # the commands that only read still work on it
            assert cli.main(["status", "--storage", url]) == 0
            assert cli.main(["export", "--storage", url, "--out", str(tmp_path / "export")]) == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# --- bad input -------------------------------------------------------------------------------
FIELDS = """
model.depth model.width model.activation model.sigma_b model.init.mode
model.init.distribution train.optimizer train.steps train.chunk_steps train.batch_size
train.learning_rate train.momentum search.trials search.alpha_range search.learning_rate_range
search.sampler search.pruner search.objective search.seeds search.stale_after_s
data.view data.validation_fraction data.normalization search.nonexistent nosection.field
""".split()
VALUES = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.tuples(st.floats(-10, 10), st.floats(-10, 10)), st.just("()"), st.none(), st.booleans(),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_any_bad_override_is_one_clear_sentence(field, value):
    try:
        experiment.load(helpers.TINY, "quick", [f"{field}={value!r}"])
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and message.endswith(".")
        assert field.split(".")[-1] in message, message  # the sentence names the field it rejects


CHEAP = {"theory": ["--activation", "relu"], "probe": ["--depth", "2", "--width", "8", "--seeds", "1", "--batch", "4"]}
WORDS = """
--activation relu swish leaky_relu:x --depth -3 0 --mode
fan_up --alpha nan -1 --width x --sigma-b --json
--seeds --model vit --distribution cauchy
""".split()


@settings(max_examples=120, deadline=None)
@given(command=st.sampled_from(sorted(CHEAP)), words=st.lists(st.sampled_from(WORDS), max_size=5))
def test_cli_bad_words_end_in_one_sentence_and_exit_2(command, words):
    # In process, an uncaught exception would fail this test itself; what is checked here is the
    # outcome: exit 0, or exit 2 with the reason on the last line of stderr, named after the command.
    err = io.StringIO()
    usage = False
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main([command, *CHEAP[command], *words])
        except SystemExit as exit_:  # argparse's own usage error: a usage line, then the reason
            code, usage = exit_.code, True
    assert code in (0, 2)
    if code == 2:
        lines = err.getvalue().strip().splitlines()
        assert lines[-1].startswith(f"research {command}: ") and lines[-1].rstrip().endswith((".", ")")) or usage
        assert len(lines) == 1 or usage, lines


def test_bad_input_never_corrupts_an_existing_study(tmp_path, data_root):
    url = str(tmp_path / "studies.journal")
    study = optuna.create_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    study.optimize(lambda t: t.suggest_float("alpha", 0.5, 8.0, log=True), n_trials=3)
    before = open(url, "rb").read()
    for bad in (["search.trials=-1"], ["train.optimizer='lion'"], ["search.alpha_range=(0, 1)"]):
        argv = helpers.worker_argv(url, helpers.overrides(tmp_path, data_root, *bad))
        assert cli.main(argv) == 2
    assert open(url, "rb").read() == before


# --- numerics and exposure --------------------------------------------------------------------
def test_non_finite_values_never_poison_the_estimator():
    # Trials whose every value is NaN or inf (a probe that overflowed) are left out, not averaged in.
    rng = np.random.default_rng(0)
    x = np.log(np.geomspace(0.5, 8.0, 20))
    values = (x[:, None] - np.log(2.0)) ** 2 + 0.02 * rng.normal(size=(20, 3))
    trials = [types.SimpleNamespace(state=types.SimpleNamespace(name="COMPLETE"), params={"alpha": float(np.exp(a))},
                                    value=0.0, user_attrs={"seed_values": list(np.exp(v))})
              for a, v in zip(x, values, strict=True)]  # fmt: skip
    for t, bad in zip(trials[-3:], ([np.nan] * 3, [np.inf, np.nan, -np.inf], [0.0, -1.0, np.nan]), strict=True):
        t.user_attrs["seed_values"] = bad
    obs = estimate.from_trials(trials, objectives.get("train_loss"))
    est = estimate.estimate(obs)
    assert est.status == "ok" and np.all(np.isfinite(est.fit_value)) and abs(est.alpha / 2 - 1) < 0.15
    assert estimate.estimate(estimate.Observations(np.zeros(0), np.zeros((0, 0)))).status == "too few trials"


def test_reports_and_messages_never_carry_passwords(tmp_path, data_root):
    secret = "postgresql://u:hunter2@127.0.0.1:1/db"
    done = subprocess.run(
        [sys.executable, "-m", "research", "status", "--storage", secret], capture_output=True, text=True
    )
    assert done.returncode == 2 and "hunter2" not in done.stderr + done.stdout
    # What a study records (config, theory, code version) never holds the storage URL it lives in.
    url = f"sqlite:///{tmp_path}/hunter2.db"
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root))
    study = studies.create(cfg, url)
    assert study.user_attrs["config"]["name"] == "tiny"
    assert "hunter2" not in json.dumps(study.user_attrs)


def test_a_torn_journal_tail_is_set_aside_and_the_journal_stays_readable(tmp_path, caplog):
    url = str(tmp_path / "s.journal")
    alpha = lambda t: t.suggest_float("alpha", 0.5, 8.0, log=True)  # noqa: E731
    optuna.create_study(study_name="kept", storage=storage.open_storage(url)).optimize(alpha, n_trials=3)
    fragment = b'{"op_code": 5, "worker_id": "killed-mid-append", "trial_id": 2, "param'
    with open(url, "ab") as f:
        f.write(fragment)
    # Without the repair, this append joins the fragment to a new record and every later read fails.
    optuna.load_study(study_name="kept", storage=storage.open_storage(url)).optimize(alpha, n_trials=2)
    reread = optuna.load_study(study_name="kept", storage=storage.open_storage(url))
    assert len([t for t in reread.trials if t.state == TrialState.COMPLETE]) == 5
    (aside,) = tmp_path.glob("s.journal.torn-*")
    assert aside.read_bytes() == fragment
    assert f"moved its {len(fragment)} bytes" in caplog.text


def test_workers_get_the_storage_url_through_the_environment_not_the_command_line(tmp_path, data_root, monkeypatch):
    launched = []

    class Exited:  # a worker process that exits at once
        def __init__(self, argv, env, **kwargs):
            launched.append((argv, env))
            self.returncode = 0

        def poll(self):
            return 0

    monkeypatch.setattr(sweep.subprocess, "Popen", Exited)
    monkeypatch.setattr(provenance, "_git", lambda root: ("0" * 40, False))  # it runs git through Popen too
    cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, "search.poll_s=0.01"))
    url = f"sqlite:///{tmp_path}/hunter2.db"
    with pytest.raises(RuntimeError, match="workers stopped"):
        sweep.run(cfg, url, 1, echo=lambda _: None)
    assert launched and all("hunter2" not in " ".join(argv) for argv, _ in launched)
    assert all(env["RESEARCH_STORAGE"] == url for _, env in launched)


def test_make_refuses_a_storage_url_on_its_command_line_and_never_echoes_it():
    done = subprocess.run(["make", "-n", "sweep", "STORAGE=postgresql://u:hunter2@127.0.0.1/db"], capture_output=True,
                          text=True, cwd=os.path.dirname(helpers.TESTS))  # fmt: skip
    assert done.returncode != 0 and "RESEARCH_STORAGE" in done.stderr and "hunter2" not in done.stdout + done.stderr


# In a query a value must be percent-encoded to hold & ; # (else the parser ends it there): those forms use {quoted}.
PASSWORDS = st.text(alphabet="abcXYZ019@/:?#&=%;+ !", min_size=6, max_size=16).filter(lambda p: p.strip("@/:?#&=%;+ !"))
URL_FORMS = (
    "postgresql://u:{raw}@127.0.0.1:5432/db", "postgresql://u:{quoted}@db-host/db?sslmode=require",
    "postgresql://u@host/db?password={quoted}", "postgresql://u@host/db?sslmode=require&sslpassword={quoted}",
    "postgresql+psycopg://u:{raw}@host:1/db?application_name=x&password={quoted}", "postgresql:/u:{raw}@host/db",
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(password=PASSWORDS, form=st.sampled_from(URL_FORMS))
def test_a_password_anywhere_in_a_storage_url_never_shows(password, form):
    import urllib.parse

    url = form.format(raw=password, quoted=urllib.parse.quote(password, safe=""))
    secret = max(password.split("@")[-1:] + password.split("@")[:1], key=len)  # any part long enough to matter
    for shown in (storage.redact(url), storage.scrub(f"cannot connect to {url} with {password}", url)):
        assert password not in shown and urllib.parse.quote(password, safe="") not in shown
        assert len(secret) < 4 or secret not in shown, shown


def test_a_mistyped_database_url_is_refused_masked_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"looks like a database URL without '//'") as err:
        storage.open_storage("postgresql:/u:hunter2@host/db")
    assert "hunter2" not in str(err.value) and ":***@" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no directory named after the URL


def test_storage_comes_from_the_flag_then_the_environment_and_an_empty_flag_is_refused(monkeypatch):
    monkeypatch.delenv("RESEARCH_STORAGE", raising=False)
    monkeypatch.setenv("OPTUNA_STORAGE", "sqlite:///optuna.db")
    assert storage.resolve(None) == "sqlite:///optuna.db"
    monkeypatch.setenv("RESEARCH_STORAGE", "runs/x.journal")
    assert storage.resolve(None) == "runs/x.journal" and storage.resolve("given.journal") == "given.journal"
    with pytest.raises(ConfigError, match="--storage is empty"):
        storage.resolve("  ")


def test_the_sbatch_script_parses_and_stops_without_a_storage_url():
    script = os.path.join(helpers.EXPERIMENTS, "slurm", "sweep.sbatch")
    assert subprocess.run(["bash", "-n", script], capture_output=True).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "RESEARCH_STORAGE"}
    done = subprocess.run(["bash", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0 and "export RESEARCH_STORAGE" in done.stderr


BAD_FILES = {
    "syntax.py": b'def get_config(profile="quick":\n    pass\n',
    "raises.py": b'def get_config(profile="quick"):\n    raise KeyError("boom")\n',
    "returns_int.py": b'def get_config(profile="quick"):\n    return 42\n',
    "picture.journal": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "noise.journal": bytes(range(256)) * 3,
    "damaged.journal": b'{"op_code": 0, "worker_id": "a"}\n{not json}\n{"op_code": 1}\n',
}
BAD_RUNS = {  # scenario: (argv, with {tmp} for the test's folder; what the one sentence says)
    "syntax error": (["worker", "--config", "{tmp}/syntax.py"], "has a syntax error at line 1"),
    "get_config raises": (["worker", "--config", "{tmp}/raises.py"], "get_config raised KeyError"),
    "get_config returns 42": (["worker", "--config", "{tmp}/returns_int.py"], "must return an ml_collections"),
    "config is a directory": (["worker", "--config", "{tmp}"], "is a directory"),
    "PNG as journal": (["status", "--storage", "{tmp}/picture.journal"], "is not an Optuna journal file"),
    "noise as journal": (["status", "--storage", "{tmp}/noise.journal"], "is not an Optuna journal file"),
    "damaged journal": (["report", "--storage", "{tmp}/damaged.journal"], "has a damaged record"),
    "port not a number": (["status", "--storage", "postgresql://u:hunter2@127.0.0.1:port/db"], "is malformed"),
    "no mysql driver": (["status", "--storage", "mysql://u@127.0.0.1/db"], "pip install PyMySQL"),
    "unwritable --out": (["report", "--storage", "{tmp}/empty.journal", "--out", "/dev/null/r"], "cannot be written"),
    "absurd --alpha": (["probe", "--alpha", "1e300", "--depth", "2", "--width", "8"], "--alpha must be a number in"),
    "unknown dataset": (
        ["sweep", "--config", helpers.TINY, "--set", "data.name='mnist_typo'", "--set", "search.runs_dir={tmp}/runs"],
        "is neither an offline builder nor a TFDS dataset",
    ),
    "port out of range": (["dashboard", "--storage", "{tmp}/empty.journal", "--port", "-1"], "from 1 to 65535"),
    "zero batch": (["lsuv", "--config", helpers.TINY, "--batch", "0"], "--batch: must be an integer from 1"),
    "zero workers": (["sweep", "--config", helpers.TINY, "--workers", "0"], "--workers: must be an integer from 1"),
    "seed past int32": (["sweep", "--config", helpers.TINY, "--set", "train.data_seed=4294967296"],
                        "train.data_seed must be an integer from 0 to 2147483647"),
    "seed offset past int32": (["sweep", "--config", helpers.TINY, "--set", "search.seed_offset=2147483647"],
                               "search.seed_offset must be an integer from 0 to"),
    "width past int32": (["sweep", "--config", helpers.TINY, "--set", "model.width=4294967296"],
                         "model.width must be an integer from 1 to 2147483647"),
}  # fmt: skip


@pytest.mark.parametrize(("argv", "says"), BAD_RUNS.values(), ids=list(BAD_RUNS))
def test_bad_files_and_urls_stop_with_one_sentence_and_touch_nothing(argv, says, tmp_path, capsys):
    for name, content in BAD_FILES.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "empty.journal").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err and err.startswith(f"research {argv[0]}: ") and "hunter2" not in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, repaired or created


@pytest.mark.slow
def test_a_finished_sweep_says_nothing_to_do_and_starts_no_worker(tmp_path, data_root, capsys):
    extra = ["search.objective='forward_log_ratio'", "search.trials=4", "search.probe_seeds=2", "search.probe_batch=16"]
    argv = ["sweep", "--config", helpers.TINY, "--no-report"]
    argv += [a for o in helpers.overrides(tmp_path, data_root, *extra) for a in ("--set", o)]
    assert cli.main(argv) == 0
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == [f"tiny-quick-forward_log_ratio-worker0-{os.getpid()}.log"]  # one log per sweep process
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "already holds 4 finished trials of 4; nothing to do" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == logs


def test_workers_that_stop_short_end_the_sweep_with_exit_2(tmp_path, data_root, monkeypatch, capsys):
    class Exited:
        def __init__(self, argv, **kwargs):
            self.returncode = 1

        def poll(self):
            return 1

    monkeypatch.setattr(sweep.subprocess, "Popen", Exited)
    monkeypatch.setattr(provenance, "_git", lambda root: ("0" * 40, False))  # it runs git through Popen too
    argv = ["sweep", "--config", helpers.TINY, "--no-report", "--set", "search.poll_s=0.01"]
    argv += [a for o in helpers.overrides(tmp_path, data_root) for a in ("--set", o)]
    assert cli.main(argv) == 2
    assert "workers stopped with 0 of 12 trials finished" in capsys.readouterr().err


@pytest.mark.parametrize("objective", ["train_loss", "forward_log_ratio"])
def test_a_population_that_cannot_fit_stops_in_seconds_and_writes_nothing(objective, tmp_path, data_root, capsys):
    url = tmp_path / "s.journal"
    argv = helpers.worker_argv(str(url), helpers.overrides(tmp_path, data_root, "model.width=1000000",
                                                           f"search.objective='{objective}'"))  # fmt: skip
    started = time.time()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "needs at least" in err and "GiB but the cpu device holds" in err and "\n" not in err.strip()
    assert time.time() - started < 60 and not url.exists()


SIGNALLED = [
    "train.steps=6000",
    "train.chunk_steps=100",
    "search.trials=6",
    "search.heartbeat_s=2.0",
    "search.stale_after_s=60.0",
    "search.checkpoint_every_chunks=1000",
]  # fmt: skip  (no periodic saves)


def _until(condition, timeout_s: float = 300.0) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def _training_started(url: str, study_name: str = "tiny-quick-train_loss") -> bool:
    try:
        study = optuna.load_study(study_name=study_name, storage=storage.open_storage(url))
    except KeyError:
        return False
    return any(t.intermediate_values for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _assert_released(url: str) -> list:
    """The stopped worker's trials: failed as preempted, none left running, each with a waiting retry."""
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    trials = study.get_trials(deepcopy=False)
    preempted = [t for t in trials if t.user_attrs.get("preempted")]
    assert preempted and all(t.state == TrialState.FAIL for t in preempted)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in waiting) == sorted(t.number for t in preempted)
    return preempted


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])  # a cluster's preemption; Ctrl-C
def test_a_signalled_worker_checkpoints_and_releases_its_trials_for_an_immediate_retry(sig, tmp_path, data_root):
    url = str(tmp_path / "s.journal")
    overrides = helpers.overrides(tmp_path, data_root, *SIGNALLED)
    victim = helpers.worker(url, overrides, 0)
    _until(lambda: _training_started(url))
    victim.send_signal(sig)
    out = victim.communicate(timeout=300)[0]
    assert victim.returncode == 128 + sig and f"stopped by {sig.name}" in out and "Traceback" not in out, out[-2000:]
    preempted = _assert_released(url)
    # No stale wait: another worker resumes them at once, from the checkpoint the signal wrote.
    survivor = helpers.worker(url, overrides, 1)
    out = survivor.communicate(timeout=900)[0]
    assert survivor.returncode == 0, out[-2000:]
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    complete = helpers.assert_exactly_once(study, 6, chunks=60)
    resumed = [t for t in complete if "retry_of" in t.user_attrs]
    assert len(resumed) == len(preempted) and all(t.user_attrs["resumed_from_step"] > 0 for t in resumed)


@pytest.mark.slow
def test_sigint_to_the_sweep_alone_stops_its_workers_cleanly(tmp_path, data_root):
    url = str(tmp_path / "s.journal")
    argv = [sys.executable, "-m", "research", "sweep", "--config", helpers.TINY, "--storage", url, "--no-report"]
    argv += [a for o in helpers.overrides(tmp_path, data_root, *SIGNALLED) for a in ("--set", o)]
    sweeping = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _until(lambda: _training_started(url))
    sweeping.send_signal(signal.SIGINT)  # to the sweep process only, not its group
    _, err = sweeping.communicate(timeout=300)
    assert sweeping.returncode == 130 and "stopped by SIGINT" in err and "Traceback" not in err, err[-2000:]
    _assert_released(url)
    log = next((tmp_path / "logs").glob("*.log")).read_text()
    worker_pid = int(re.search(r"\[[^\]\s:]+:(\d+):[0-9a-f]{6}\]", log).group(1))  # the [host:pid:id] tag
    with pytest.raises(ProcessLookupError):  # no orphan left training
        os.kill(worker_pid, 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0, exclude_max=True), junk=st.binary(max_size=40).filter(lambda b: b"\n" not in b))
def test_any_torn_tail_leaves_every_complete_trial_readable(tmp_path_factory, cut, junk):
    folder = tmp_path_factory.mktemp("torn")
    url = str(folder / "s.journal")
    alpha = lambda t: t.suggest_float("alpha", 0.5, 8.0, log=True)  # noqa: E731
    optuna.create_study(study_name="s", storage=storage.open_storage(url)).optimize(alpha, n_trials=2)
    whole = open(url, "rb").read()
    optuna.load_study(study_name="s", storage=storage.open_storage(url)).optimize(alpha, n_trials=1)
    last = open(url, "rb").read()[len(whole) :]  # the third trial's records
    with open(url, "wb") as f:  # a writer killed part-way through them, plus whatever bytes it left
        f.write(whole + last[: int(cut * len(last))] + junk)
    study = optuna.load_study(study_name="s", storage=storage.open_storage(url))
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) >= 2
    study.optimize(alpha, n_trials=1)  # and it takes the next append
    assert len(optuna.load_study(study_name="s", storage=storage.open_storage(url)).trials) >= 3


@settings(max_examples=200, deadline=None)
@given(lo=st.floats(allow_nan=True, allow_infinity=True), hi=st.floats(allow_nan=True, allow_infinity=True))
def test_alpha_ranges_near_and_past_float32_limits_are_kept_or_refused(lo, hi):
    try:
        cfg = experiment.load(helpers.TINY, "quick", [f"search.alpha_range=({lo!r}, {hi!r})"])
    except ConfigError as err:
        assert "search.alpha_range" in str(err) and "\n" not in str(err)
    else:  # accepted: inside what float32 training holds
        low, high = cfg.search.alpha_range
        assert 1e-6 <= low < high <= 1e6


URL_PARTS = st.sampled_from(["postgresql", "postgresql+psycopg", "mysql", "sqlite", "redis", "postgres"])


@settings(max_examples=150, deadline=None)
@given(
    scheme=URL_PARTS, sep=st.sampled_from(["://", ":/", ":", ":///"]),
    host=st.text(alphabet="ab1.:@/%-?#=", max_size=14), port=st.text(alphabet="0123456789xy:", max_size=6),
)  # fmt: skip
def test_malformed_database_urls_are_one_sentence_and_never_show_the_password(
    scheme, sep, host, port, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("urls")
    url = f"{scheme}{sep}u:hunter2@{host}:{port}/db"
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        storage.open_storage(url)
    except ConfigError as err:
        assert "hunter2" not in str(err) and "\n" not in str(err) and str(err).endswith(".")
    finally:
        os.chdir(cwd)
    # A database URL never becomes a file or folder; sqlite:///NAME does name a file, by design.
    assert list(folder.iterdir()) == [] or "://" not in url or scheme == "sqlite"


def test_local_workers_share_one_accelerator():
    assert sweep.shared_accelerator(1, {}) == {}
    assert sweep.shared_accelerator(3, {}) == {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.300"}
    assert sweep.shared_accelerator(2, {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}) == {}  # the user's choice wins


def test_make_sweep_installs_no_test_tools():
    done = subprocess.run(["make", "-n", "sweep", "VENV=/nonexistent/venv"], capture_output=True, text=True,
                          cwd=os.path.dirname(helpers.TESTS))  # fmt: skip
    assert done.returncode == 0 and "-c constraints.txt -e '.'" in done.stdout and "[test" not in done.stdout


def test_the_sbatch_script_passes_overrides_and_runs_every_objective(tmp_path):
    fake = tmp_path / ".venv" / "bin" / "research"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    script = os.path.join(helpers.EXPERIMENTS, "slurm", "sweep.sbatch")
    overrides = "search.seeds=16; train.steps=5000\n search.alpha_range=(0.5, 8.0) ;train.tag=match*"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SLURM_SUBMIT_DIR": str(tmp_path),
           "SLURM_ARRAY_TASK_ID": "3", "RESEARCH_STORAGE": "postgresql://u:hunter2@h/db",
           "OVERRIDES": overrides}  # fmt: skip
    (tmp_path / "train.tag=match-me").touch()  # what a glob of the last one would expand to
    done = subprocess.run(["bash", script], capture_output=True, text=True, env=env)
    said, *args = done.stdout.splitlines()  # the task's first line, then the worker's arguments
    assert done.returncode == 0 and said.startswith("task 3 of job") and args[:2] == ["worker", "--every-objective"]
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == ["search.seeds=16", "train.steps=5000", "search.alpha_range=(0.5, 8.0)", "train.tag=match*"]
    assert "--index\n3" in done.stdout
    assert "hunter2" not in done.stdout
    env.pop("OVERRIDES")
    assert subprocess.run(["bash", script], capture_output=True, text=True, env=env).returncode == 0  # none given
    env.pop("RESEARCH_STORAGE")
    missing = subprocess.run(["bash", script], capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and "export RESEARCH_STORAGE" in missing.stderr


@pytest.mark.slow
def test_a_worker_whose_trial_was_taken_over_says_so_in_one_line_and_goes_on(tmp_path, data_root):
    url = str(tmp_path / "s.journal")
    extra = ["train.steps=3000", "search.trials=3", "search.trials_per_batch=3", "search.pruner='none'"]
    worker = helpers.worker(url, helpers.overrides(tmp_path, data_root, *extra))
    _until(lambda: _training_started(url))
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
    study.tell(0, state=TrialState.FAIL)  # what a reaper does to a trial it believes dead
    out, _ = worker.communicate(timeout=600)
    assert worker.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert out.count("trial 0 was taken over by another worker") == 1
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.user_attrs.get("retry_of", t.number) for t in trials if t.state == TrialState.COMPLETE) == [0, 1, 2]


@pytest.mark.parametrize("name", ["a/b", "/tmp/abs", "..", "x y", "", "-dash"])
def test_an_unsafe_experiment_name_is_one_sentence(name):
    with pytest.raises(ConfigError, match=r"^name must be letters, digits") as err:
        experiment.load(helpers.TINY, "quick", [f"name={name!r}"])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_someone_elses_studies_in_the_storage_are_skipped_not_crashed_on(tmp_path, data_root, capsys, caplog):
    url = str(tmp_path / "s.journal")
    argv = ["sweep", "--config", helpers.TINY, "--no-report", "--storage", url]
    extra = ["search.objective='forward_log_ratio'", "search.trials=4", "search.probe_seeds=2", "search.probe_batch=16"]
    assert cli.main(argv + [a for o in helpers.overrides(tmp_path, data_root, *extra) for a in ("--set", o)]) == 0
    backend = storage.open_storage(url)
    for name in ("theirs", "../escape", "line\nbreak"):  # an ordinary Optuna study, with a `config` of its own
        study = optuna.create_study(study_name=name, storage=backend)
        study.set_user_attr("config", {"lr": 0.1, "model": "resnet"})
        study.set_user_attr("config_hash", "x")
        study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1.0, log=True), n_trials=2)
    capsys.readouterr()
    assert cli.main(["status", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "tiny-quick-forward_log_ratio" in out and "theirs: 2 finished trials" in out and "line\nbreak" not in out
    assert cli.main(["report", "--storage", url, "--out", str(tmp_path / "r"), "--no-figures"]) == 0
    assert "skipped 3 studies that are not this project's" in caplog.text
    assert cli.main(["export", "--storage", url, "--out", str(tmp_path / "e")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if "escape" in p.name) == []


def _request(url, method="GET", **headers):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:  # not listening yet
        return None


def _serving(url, argv, cwd=None):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "research", "dashboard", "--storage", url, "--port", str(port), *argv]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    assert helpers.poll(lambda: _request(f"{base}/api/studies") == 200 if server.poll() is None else True, 120)
    return server, base


@pytest.mark.slow
def test_the_dashboard_refuses_foreign_hosts_and_origins_and_is_read_only_unless_asked(tmp_path):
    url = str(tmp_path / "s.journal")
    optuna.create_study(study_name="kept", storage=storage.open_storage(url))
    server, base = _serving(url, [])
    try:
        delete = f"{base}/api/studies/0"
        assert _request(f"{base}/api/studies", Host="rebound.example:80") == 403  # a DNS-rebinding page
        assert _request(delete, "DELETE", Host="attacker.example", Origin="http://attacker.example") == 403
        assert _request(delete, "DELETE", Origin="http://attacker.example") == 403  # a foreign page's fetch
        assert _request(delete, "DELETE") == 403  # read-only by default
        assert _request(f"{base}/api/studies") == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert optuna.get_all_study_names(storage.open_storage(url)) == ["kept"]
    server, base = _serving(url, ["--writable"])
    try:
        assert _request(f"{base}/api/studies/0", "DELETE", Origin=base) == 204  # asked for, from its own page
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert optuna.get_all_study_names(storage.open_storage(url)) == []


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_releases_the_trials_and_leaves_no_partial_checkpoint(tmp_path, data_root):
    runs = tmp_path / "runs"
    _tmpfs(runs, size="1m")
    try:
        with open(runs / "filler", "wb") as f:  # leaves less than a checkpoint needs
            with contextlib.suppress(OSError):
                f.write(b"\0" * (1 << 20))
        url = str(tmp_path / "s.journal")  # the storage has room: only the checkpoints' disk is full
        overrides = [f"search.runs_dir={runs}", f"data.data_dir={data_root}", "search.trials=3"]
        argv = helpers.worker_argv(url, overrides)
        done = subprocess.run([sys.executable, "-m", "research", *argv], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert "No space left on device" in done.stderr.strip().splitlines()[-1]
        study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
        assert [t.state for t in study.trials] == [TrialState.FAIL] * 3  # released for a retry, not left RUNNING
        assert all("No space left" in t.user_attrs["failure"] for t in study.trials)
        assert not list(runs.rglob("*orbax-checkpoint-tmp*"))
    finally:
        subprocess.run(["umount", "-l", str(runs)], capture_output=True)


@pytest.mark.parametrize(
    "env, says",
    [({"TFDS_DATA_DIR": "/etc/hostname"}, "$TFDS_DATA_DIR must be a folder for the datasets"),
     ({"XLA_FLAGS": "--xla_no_such_flag=1"}, "$XLA_FLAGS is not usable: XLA does not know --xla_no_such_flag=1")],
)  # fmt: skip
def test_bad_environment_variables_are_one_sentence(tmp_path, env, says):
    argv = ["worker", "--config", helpers.TINY, "--storage", str(tmp_path / "s.journal"), "--set", "search.trials=1"]
    done = subprocess.run([sys.executable, "-m", "research", *argv], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    err = done.stderr.strip()
    assert done.returncode == 2 and says in err and "\n" not in err, err[-2000:]
    assert not (tmp_path / "s.journal").exists()


def test_sigint_while_the_report_is_written_is_one_sentence(tmp_path, monkeypatch, capsys):
    from research import report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    optuna.create_study(study_name="s", storage=storage.open_storage(str(tmp_path / "s.journal")))
    monkeypatch.setattr(report, "write", interrupted)
    assert cli.main(["report", "--storage", str(tmp_path / "s.journal"), "--out", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err == "research report: stopped by SIGINT; what was already recorded is intact.\n"


@pytest.mark.slow
def test_reading_commands_leave_the_journal_byte_identical_and_the_dashboard_finds_figures_anywhere(
    tmp_path, data_root, monkeypatch, capsys
):
    url = str(tmp_path / "runs" / "studies.journal")
    extra = ["search.objective='forward_log_ratio'", "search.trials=6", "search.probe_seeds=2", "search.probe_batch=16"]
    sets = [a for o in helpers.overrides(tmp_path / "runs", data_root, *extra) for a in ("--set", o)]
    assert cli.main(["sweep", "--config", helpers.TINY, *sets]) == 0  # publishes notes and figures
    swept = optuna.load_study(study_name="tiny-quick-forward_log_ratio", storage=storage.open_existing(url))
    with monkeypatch.context() as m:  # status and advise answer from the sweep's cached analyses
        m.setattr(verdicts, "analyse_all", lambda record: pytest.fail("analysed again"))
        capsys.readouterr()
        assert cli.main(["status", "--storage", url]) == 0
        assert "alpha*" in capsys.readouterr().out
        assert cli.main(["advise", "--config", helpers.TINY, *sets, "--storage", url]) == 0
        assert "take the study's alpha* for forward_log_ratio" in capsys.readouterr().out
    trained_on = {t.user_attrs["device"] for t in swept.trials}
    assert swept.user_attrs["devices"] == sorted(trained_on)  # what the workers trained on, not the sweep's own
    assert trained_on == {f"cpu x{devices.cpu_cores()}"}  # workers use every core; the sweep's parent, one
    before = open(url, "rb").read()
    for argv in (["status"], ["status", "--json"], ["report", "--out", str(tmp_path / "out" / "r")],
                 ["export", "--out", str(tmp_path / "out" / "e")]):  # fmt: skip
        assert cli.main([*argv, "--storage", url]) == 0, argv
    assert open(url, "rb").read() == before  # nothing written, not even a dashboard note
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["e", "r"]  # no artifacts/ beside --out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server, base = _serving(url, [], cwd=elsewhere)
    try:
        listing = json.loads(_body(f"{base}/api/studies"))
        study_id = listing["study_summaries"][0]["study_id"]
        detail = json.loads(_body(f"{base}/api/studies/{study_id}?after=0"))
        png = next(a for a in detail["artifacts"] if a["filename"].endswith(".png"))
        assert _body(f"{base}/artifacts/{study_id}/{png['artifact_id']}")[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert open(url, "rb").read() == before


def _body(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as f:
        return f.read()
