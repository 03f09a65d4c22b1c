"""`research sweep`: W local worker processes against one storage, one progress bar.

Workers are separate processes (`research worker ...`), cooperating only through the
storage, exactly as on a cluster. A worker that dies is restarted; its trials are
reaped by the heartbeat rules and resumed from their checkpoint. Each finished study is
analysed, and its report figures drawn, in a background thread (`closing_in_background`)
while the next study's workers start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import optuna
from tqdm import tqdm

from research import coordination, judging, render, report, storage, studies
from research.errors import Interrupted, RunError

_STOPS = (signal.SIGINT, signal.SIGTERM)


def run_all(cfg, url: str | None, workers: int, **kw) -> list[optuna.Study]:
    """One study per objective the experiment `cfg` lists, and for a probe objective with a series
    (search.series) one per value (`kw`: `run`'s)."""
    return [run(member, url, workers, **kw) for member in studies.expand(cfg)]


def run(cfg, url: str | None, workers: int, *, echo=tqdm.write, closing=None, figures: bool = True) -> optuna.Study:
    """Sweep the study of config `cfg` to its trial budget with `workers` processes (each loads
    the config's snapshot, as a cluster worker would load its file); returns the study. Its closing
    work (`close`) runs through `closing` (`closing_in_background`'s submit) when given, else here."""
    url = storage.resolve(url, cfg.search.runs_dir)
    study = coordination.retry(lambda: studies.create(cfg, url))
    name = study.study_name
    logs = os.path.join(cfg.search.runs_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    target = cfg.search.trials
    done = coordination.retry(lambda: coordination.counts(study))["finished"]
    if done >= target:
        echo(f"{name}: the study already holds {done} finished trials of {target}; nothing to do.")
        return study
    echo(f"{name}: {target} trials, {workers} worker(s), storage {storage.redact(url)}, worker logs in {logs}/")

    snapshot = studies.snapshot(cfg, cfg.search.runs_dir)

    def launch(index: int) -> subprocess.Popen:
        argv = [sys.executable, "-m", "research", "worker", "--config", snapshot, "--profile", cfg.profile]
        argv += ["--index", str(index)]
        log = open(os.path.join(logs, f"{name}-worker{index}-{os.getpid()}.log"), "a")  # one per sweep
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RESEARCH_STORAGE": url}  # never on the command line
        env.update(shared_accelerator(workers, os.environ))
        # Its own session: a terminal's Ctrl-C reaches the sweep alone, which stops the workers itself.
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    started = time.time()
    with _signals_forwarded() as received:
        procs = _supervise(study, cfg, workers, launch, received)
        if received:
            _stop(procs, grace_s=cfg.search.stale_after_s)
            raise Interrupted(received[0])
    c = coordination.counts(study)
    if c["finished"] < target:
        raise RunError(f"{name}: workers stopped with {c['finished']} of {target} trials finished; see {logs}/.")
    args = (study, time.time() - started, cfg.search.runs_dir, figures, echo)
    if closing is None:
        close(*args)
    else:
        closing(close, *args)
    return study


def close(study: optuna.Study, seconds: float, runs_dir: str, figures: bool, echo) -> None:
    """A finished study's closing work: its analyses and (with `figures`) its own figures, cached in
    the runs directory's report folder for the closing report, and its summary."""
    analyses = report.prepare(study, judging.folder(runs_dir), figures=figures)
    echo(render.summary(study.study_name, coordination.counts(study), analyses, seconds))


@contextlib.contextmanager
def closing_in_background():
    """Yields a submit function for `run(closing=...)`: closing work runs in one thread beside the
    next study, whose workers spend their first tens of seconds importing, loading data and
    compiling on about one core. Leaving waits for every job and raises the first error; leaving
    on an error drops the jobs not yet started (the report redoes them from the stored trials)."""
    futures = []
    pool = ThreadPoolExecutor(1, thread_name_prefix="closing")
    try:
        yield lambda fn, *args: futures.append(pool.submit(fn, *args))
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()
    for future in futures:
        future.result()


def shared_accelerator(workers: int, environ) -> dict[str, str]:
    """Environment for one of `workers` local processes on one accelerator: without it each JAX
    process preallocates 75% of the GPU's memory and the second fails; with it each takes an equal
    slice (the user's own XLA_PYTHON_CLIENT_* settings win)."""
    if workers < 2 or any(k.startswith("XLA_PYTHON_CLIENT_") for k in environ):
        return {}
    return {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / workers:.3f}"}


def _supervise(study, cfg, workers: int, launch, received: list) -> dict[int, subprocess.Popen]:
    """Watch the workers with a progress bar, restarting any that exit before the budget is met,
    until none is left or a signal arrives; returns the workers still running."""
    target, name = cfg.search.trials, study.study_name
    procs = {i: launch(i) for i in range(workers)}
    restarts = 0
    with tqdm(total=target, desc=name, unit="trial", dynamic_ncols=True) as bar:
        while procs and not received:
            time.sleep(cfg.search.poll_s)
            c = coordination.retry(lambda: coordination.counts(study))
            bar.n = min(c["finished"], target)
            bar.set_postfix_str(f"running {c['running']}, best alpha {_best_alpha(study)}", refresh=False)
            bar.refresh()
            for index, proc in list(procs.items()):
                if proc.poll() is None or received:
                    continue
                del procs[index]
                if c["finished"] < target and restarts < 3 * workers:
                    restarts += 1
                    tqdm.write(f"worker {index} exited with status {proc.returncode}; restarting it")
                    procs[index] = launch(index)
    return procs


@contextlib.contextmanager
def _signals_forwarded():
    """SIGINT and SIGTERM are recorded (in the yielded list) instead of killing the sweep, so it
    can stop its workers cleanly; the previous handlers come back afterwards."""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in _STOPS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(procs: dict[int, subprocess.Popen], grace_s: float) -> None:
    """SIGTERM every worker (each checkpoints at its next chunk and releases its trials), then
    wait; any still running after `grace_s` is killed (its trials are reaped as stale later)."""
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    deadline = time.time() + grace_s
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _best_alpha(study: optuna.Study) -> str:
    try:
        return f"{study.best_trial.params['alpha']:.3g}"
    except ValueError:
        return "-"
