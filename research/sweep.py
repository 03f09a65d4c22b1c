"""`research sweep`: W local worker processes against one storage, one progress bar.

Workers are separate processes (`research worker ...`), cooperating only through the
storage, exactly as on a cluster. A worker that dies is restarted; its trials are
reaped by the heartbeat rules and resumed from their checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import optuna
from tqdm import tqdm

from research import coordination, experiment, search, storage
from research.errors import RunError


def run_all(cfg, path: str, overrides: list[str], url: str | None, workers: int) -> list[optuna.Study]:
    """One study per objective the experiment `cfg` (loaded from `path` with `overrides`) lists."""
    objectives = tuple(cfg.search.objectives) or (cfg.search.objective,)
    runs = [[*overrides, f"search.objective='{o}'"] for o in objectives]
    return [run(experiment.derive(cfg, extra[-1:]), path, extra, url, workers) for extra in runs]


def run(cfg, path: str, overrides: list[str], url: str | None, workers: int, *, echo=print) -> optuna.Study:
    """Sweep experiment `cfg` to its trial budget with `workers` processes (each loads `path` with
    `overrides` itself, as a cluster worker would); returns the study."""
    name = search.study_name(cfg)
    profile = cfg.profile
    url = storage.resolve(url, cfg.search.runs_dir)
    study = search.create_study(cfg, url, name)
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
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    procs = {i: launch(i) for i in range(workers)}
    restarts, started = 0, time.time()
    with tqdm(total=target, desc=name, unit="trial", dynamic_ncols=True) as bar:
        while procs:
            time.sleep(cfg.search.poll_s)
            c = coordination.retry(lambda: coordination.counts(study))
            bar.n = min(c["finished"], target)
            bar.set_postfix_str(f"running {c['running']}, best alpha {_best_alpha(study)}", refresh=False)
            bar.refresh()
            for index, proc in list(procs.items()):
                if proc.poll() is None:
                    continue
                del procs[index]
                if c["finished"] < target and restarts < 3 * workers:
                    restarts += 1
                    tqdm.write(f"worker {index} exited with status {proc.returncode}; restarting it")
                    procs[index] = launch(index)
    c = coordination.counts(study)
    if c["finished"] < target:
        raise RunError(f"{name}: workers stopped with {c['finished']} of {target} trials finished; see {logs}/.")
    echo(summary(study, time.time() - started))
    return study


def summary(study: optuna.Study, seconds: float | None = None) -> str:
    """The study's best alpha next to every theory's prediction."""
    c = coordination.counts(study)
    took = f" in {seconds / 60:.1f} min" if seconds is not None else ""
    lines = [
        f"{study.study_name}: {c['finished']} finished trials ({c['complete']} complete, {c['pruned']} pruned){took}"
    ]
    try:
        best = study.best_trial
        seeds = len(best.user_attrs.get("seeds", [])) or 1
        lines.append(
            f"  best trial: alpha = {best.params['alpha']:.4g}"
            f"  ({study.user_attrs.get('objective')} {best.value:.4g}, mean of {seeds} seeds)"
        )
    except ValueError:
        lines.append("  no complete trial")
    preds = study.user_attrs.get("theory", {})
    lines.append("  theory: " + ", ".join(f"{k} {v:.4g}" if v is not None else f"{k} none" for k, v in preds.items()))
    return "\n".join(lines)


def _best_alpha(study: optuna.Study) -> str:
    try:
        return f"{study.best_trial.params['alpha']:.3g}"
    except ValueError:
        return "-"
