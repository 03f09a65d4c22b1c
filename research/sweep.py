"""`research sweep`: W local worker processes against one storage, one progress bar.

Workers are separate processes (`research worker ...`), cooperating only through the
storage, exactly as on a cluster. A worker that dies is restarted; its trials are
reaped by the heartbeat rules and resumed from their checkpoint. Each finished study is
analysed, and its report figures drawn, in a background thread (`closing_in_background`)
while the next study's workers start.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import ml_collections
import optuna
from scipy import stats
from tqdm import tqdm

from research import compare, coordination, experiment, extrapolate, report, search, storage, verdicts
from research.errors import Interrupted, RunError

_STOPS = (signal.SIGINT, signal.SIGTERM)


def run_all(cfg, path: str, overrides: list[str], url: str | None, workers: int, **kw) -> list[optuna.Study]:
    """One study per objective the experiment `cfg` (loaded from `path` with `overrides`) lists,
    and for a probe objective with a series (search.series) one per value (`kw`: `run`'s)."""
    return [run(member, path, [*overrides, *extra], url, workers, **kw) for member, extra in designs(cfg)]


def designs(cfg) -> list[tuple[ml_collections.ConfigDict, list[str]]]:
    """(config, the overrides that make it from `cfg`) for every study a sweep of `cfg` runs, in order."""
    out = []
    for objective in tuple(cfg.search.objectives) or (cfg.search.objective,):
        choose = [f"search.objective='{objective}'"]
        choose += search.probe_design(experiment.derive(cfg, choose))
        chosen = experiment.derive(cfg, choose)
        for extra in search.series(chosen) if search.in_series(chosen) else [[]]:
            out.append((experiment.derive(chosen, extra), [*choose, *extra]))
    return out


def run(
    cfg,
    path: str,
    overrides: list[str],
    url: str | None,
    workers: int,
    *,
    echo=tqdm.write,
    closing=None,
    figures: bool = True,
) -> optuna.Study:
    """Sweep experiment `cfg` to its trial budget with `workers` processes (each loads `path` with
    `overrides` itself, as a cluster worker would); returns the study. Its closing work (`close`)
    runs through `closing` (`closing_in_background`'s submit) when given, else here."""
    profile = cfg.profile
    url = storage.resolve(url, cfg.search.runs_dir)
    study = coordination.retry(lambda: search.create_study(cfg, url))
    name = study.study_name
    logs = os.path.join(cfg.search.runs_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    target = cfg.search.trials
    done = coordination.retry(lambda: coordination.counts(study))["finished"]
    if done >= target:
        echo(f"{name}: the study already holds {done} finished trials of {target}; nothing to do.")
        return study
    echo(f"{name}: {target} trials, {workers} worker(s), storage {storage.redact(url)}, worker logs in {logs}/")

    def launch(index: int) -> subprocess.Popen:
        argv = [sys.executable, "-m", "research", "worker", "--config", path, "--profile", profile]
        argv += ["--index", str(index)] + [arg for o in overrides for arg in ("--set", o)]
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
    echo(summary(study, seconds, report.prepare(study, report.folder(runs_dir), figures=figures)))


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


def summary(study: optuna.Study, seconds: float | None = None, analyses: list[verdicts.Analysis] | None = None) -> str:
    """The study's alpha* and the verdict on every distinct prediction, by its own stored rule,
    for each objective it is judged on (a trained study: also those read off its stored curves)."""
    c = coordination.counts(study)
    took = f" in {seconds / 60:.1f} min" if seconds is not None else ""
    lines = [
        f"{study.study_name}: {c['finished']} finished trials ({c['complete']} complete, {c['pruned']} pruned){took}"
    ]
    if "config" not in study.user_attrs:
        return "\n".join([*lines, "  not a study of this project: no estimate"])
    for analysis in analyses or verdicts.analyse_all(study):
        lines += _judged(analysis)
    return "\n".join(lines)


def _judged(analysis: verdicts.Analysis) -> list[str]:
    named = [(str(label), float(alpha)) for label, alpha in analysis.cfg.search.get("arms", ())]
    if named:
        return _head_to_head(analysis, named)
    est = analysis.estimate
    if est.alpha is None:
        return [f"  {analysis.objective}: alpha* {est.status}"]
    lo, hi = est.interval()
    lines = [f"  {analysis.objective}: alpha* = {est.alpha:.4g} [{lo:.4g}, {hi:.4g}] ({est.status});"
             f" ROPE ±{analysis.rope:.0%}"]  # fmt: skip
    for v in analysis.verdicts:
        regret = f", regret {v.regret:.1%}: {v.regret_verdict}" if v.regret is not None else ""
        lines.append(f"    {v.theories} {v.alpha:.4g}: {v.verdict}{regret}")
    if analysis.lr_slope:
        lines.append(f"    {verdicts.describe_lr_slope(analysis.lr_slope)}")
    return lines + [f"    note: {w}" for w in est.warnings]


def _head_to_head(analysis: verdicts.Analysis, named: list[tuple[str, float]]) -> list[str]:
    """Named arms at their best learning rates and each against the first, paired by seed."""
    _, tolerance, level = verdicts.rule(analysis.cfg, analysis.objective)
    found = compare.arms(analysis.observations, named)
    lines = [f"  {analysis.objective}: " + "; ".join(
        f"{a.label} (alpha {a.alpha:.4g}, lr {a.learning_rate:.2g}) {sum(a.values) / len(a.values):.4g}"
        if a.learning_rate else f"{a.label} (alpha {a.alpha:.4g}) {sum(a.values) / len(a.values):.4g}"
        for a in found)]  # fmt: skip
    for d in compare.differences(found, tolerance, level):
        lo, hi = d.interval
        lines.append(f"    {d.b} vs {d.a}: {d.relative:+.1%} [{lo:+.1%}, {hi:+.1%}] ({level:.0%}): {d.verdict}")
    return lines


def series_summary(e: extrapolate.Extrapolation) -> str:
    """A series' intercept at the limit and the verdict on every prediction there."""
    t = stats.t.ppf(0.975, e.df)
    lo, hi = (e.intercept * math.exp(k * t * e.se) for k in (-1, 1))
    lines = [f"{e.series}, extrapolated to {e.axis} -> 0: alpha* = {e.intercept:.4g} [{lo:.4g}, {hi:.4g}],"
             f" slope {e.slope:+.3g} ± {2 * e.slope_se:.2g} ({e.slope_sign})"]  # fmt: skip
    return "\n".join(lines + [f"  {v.theories} {v.alpha:.4g}: {v.verdict}" for v in e.verdicts])


def _best_alpha(study: optuna.Study) -> str:
    try:
        return f"{study.best_trial.params['alpha']:.3g}"
    except ValueError:
        return "-"
