"""Launch W sweep workers as a SLURM job array through submitit (make venv EXTRAS=cuda12,slurm).

    export RESEARCH_STORAGE='postgresql://initscale:PASSWORD@db-host:5432/initscale'
    .venv/bin/python experiments/slurm/submit.py --workers 16 --config experiments/he_relu_mlp.py \
        --profile paper --set search.seeds=16

Each task runs `research worker --every-objective` against the shared PostgreSQL storage, one
GPU per task, and reads the URL from RESEARCH_STORAGE (SLURM passes the environment on), so the
password never appears on a command line; the same fault tolerance as the sbatch script applies
(submitit's pre-timeout and preemption signal is SIGUSR2: the worker takes it as it takes SIGTERM,
checkpoints at its next chunk and releases its trials for any worker to resume).
"""

import argparse
import os

from research import cli


def run_worker(index: int, args: argparse.Namespace) -> int:
    argv = ["worker", "--every-objective", "--config", args.config, "--profile", args.profile]
    argv += ["--index", str(index), "--compilation-cache", os.path.expanduser("~/.cache/init-scale/xla")]
    return cli.main(argv + [a for o in args.set for a in ("--set", o)])


def main() -> None:
    import submitit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--config", default="experiments/he_relu_mlp.py")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args()
    if not os.environ.get("RESEARCH_STORAGE"):
        parser.error("export RESEARCH_STORAGE, the study's PostgreSQL URL, first.")
    executor = submitit.AutoExecutor(folder="runs/submitit")
    executor.update_parameters(
        name="init-scale",
        gpus_per_node=1,
        cpus_per_task=8,
        mem_gb=32,
        timeout_min=int(args.hours * 60),
        slurm_partition=args.partition,
        slurm_array_parallelism=args.workers,
        slurm_additional_parameters={"requeue": True},
    )
    jobs = executor.map_array(run_worker, range(args.workers), [args] * args.workers)
    print(f"submitted {len(jobs)} workers: job {jobs[0].job_id.split('_')[0]}")


if __name__ == "__main__":
    main()
