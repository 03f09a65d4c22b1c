"""The cluster path run for real: the README's sbatch array on a one-node SLURM (.ci/slurm starts
it in CI) against PostgreSQL, one task preempted mid-run and requeued."""

import os
import shutil
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from research import storage
from tests import helpers

pytestmark = [pytest.mark.slow, pytest.mark.service]

SCRIPT = os.path.join(helpers.EXPERIMENTS, "slurm", "sweep.sbatch")


def _slurm_up() -> None:
    if shutil.which("sbatch") is None:
        helpers.service_absent("SLURM (sbatch)")
    done = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip().startswith(("idle", "mix", "alloc")):
        helpers.service_absent(f"a SLURM node ready for jobs ({(done.stderr or done.stdout).strip()})")


def _tasks(job: str) -> dict[str, str]:
    """Each array task of `job` still known to the controller: its state."""
    done = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%i %T"], capture_output=True, text=True)
    return dict(line.split() for line in done.stdout.splitlines())


def _until(condition, timeout_s: float) -> None:
    assert helpers.poll(condition, timeout_s, every_s=1.0), "timed out"


def test_the_sbatch_array_on_slurm_finds_every_trial_exactly_once_through_a_preemption(postgres, tmp_path, data_root):
    _slurm_up()
    overrides = [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}", "train.steps=1500",
                 "train.chunk_steps=50", "search.trials=6", "search.stale_after_s=60.0"]  # fmt: skip
    env = {**os.environ, "RESEARCH_STORAGE": postgres, "EXPERIMENT": helpers.TINY, "PROFILE": "quick",
           "OVERRIDES": "; ".join(overrides), "COMPILATION_CACHE": str(tmp_path / "xla")}  # fmt: skip
    argv = ["sbatch", "--parsable", "--array=0-2", "--gres=none", "--cpus-per-task=1", "--mem=3G",
            f"--output={tmp_path}/task-%A_%a.out", SCRIPT]  # fmt: skip
    job = subprocess.run(argv, env=env, cwd=helpers.ROOT, capture_output=True, text=True, check=True).stdout.strip()
    try:
        url = postgres

        def training() -> bool:
            try:
                study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(url))
            except KeyError:
                return False
            return any(len(t.intermediate_values) >= 3 for t in study.get_trials(states=(TrialState.RUNNING,)))

        _until(training, 600)
        victim = next(task for task, state in _tasks(job).items() if state == "RUNNING")
        subprocess.run(["scontrol", "requeue", victim], check=True)  # preemption: SIGTERM, then back in the queue
        _until(lambda: not _tasks(job), 900)
    finally:
        subprocess.run(["scancel", job], capture_output=True)
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(postgres))
    complete = helpers.assert_exactly_once(study, 6, chunks=30)
    preempted = [t for t in study.trials if t.user_attrs.get("preempted")]
    assert preempted, "the requeued task released its trials"
    resumed = [t for t in complete if t.user_attrs.get("retry_of") in {p.number for p in preempted}]
    assert resumed and all(t.user_attrs["resumed_from_step"] > 0 for t in resumed)  # from the checkpoint
    log = (tmp_path / f"task-{victim}.out").read_text()
    assert "(restart 0)" in log and "(restart 1)" in log  # both runs in one log: appended, not overwritten
    assert "stopped by SIGTERM" in log and "Traceback" not in log
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    print(f"\nslurm: job {job}, task {victim} requeued; {len(complete)} trials, {len(resumed)} resumed")
