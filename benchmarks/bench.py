"""Population engine against the tutorial loop and the machine's matmul ceiling, and what users wait for.

Measures side by side, in one run on one machine: (1) the engine training P trials of the
quick He/ReLU task as one program, for several P; (2) the same trials trained one at a
time the way tutorial code does (an Optuna objective that builds a Flax model, jits a
step inside the objective and loops over steps in Python, under `study.optimize`);
(3) dense float32 matmul through XLA, the ceiling; (4) a sweep worker against the engine on
the same population; (5) a population half of whose members diverge at once against a
healthy one; (6) the largest population (an alpha x lr x seed grid) with its peak memory;
(7) the time from an empty storage to the quick He/ReLU verdicts. Prints and writes JSON +
Markdown.

    make bench                          # 2 CPU cores: about 30 minutes
    python benchmarks/bench.py --populations 64 256 1024 --tutorial-trials 4   # a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optuna
from flax import nnx

from research import data, devices, experiment, members, models, objectives, recipe, storage, studies, train, verdicts
from research.worker import Worker

QUICK_HE = "experiments/he_relu_mlp.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--flops-width", type=int, default=256, help="width for the FLOP/s fraction run")
    parser.add_argument("--tutorial-trials", type=int, default=3)
    parser.add_argument("--large-population", type=int, default=704, help="members of the largest population")
    parser.add_argument("--large-steps", type=int, default=20, help="its steps (one chunk)")
    parser.add_argument("--no-verdict", action="store_true", help="skip the time-to-verdict sweep (minutes)")
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args()

    devices.use_cpu_cores()  # what the sweep's workers do; the tutorial loop runs on device 0 as written
    dataset = data.load(data.default_config("mnist1d"))
    ceiling = matmul_rate()
    print(f"matmul ceiling: {ceiling / 1e9:.1f} GFLOP/s ({jax.devices()[0].device_kind}, {jax.device_count()} devices)")
    engine = [engine_run(dataset, p, args.steps, args.depth, args.width) for p in args.populations]
    for row in engine:
        print(
            f"engine P={row['population']}: {row['trials_per_minute']:.2f} trials/min, compile {row['compile_s']:.1f} s"
        )
    wide = engine_run(dataset, max(args.populations), args.steps // 4, args.depth, args.flops_width)
    wide["fraction_of_ceiling"] = wide["flops_per_s"] / ceiling
    print(
        f"engine width {args.flops_width}: {wide['flops_per_s'] / 1e9:.1f} GFLOP/s"
        f" = {wide['fraction_of_ceiling']:.0%} of the ceiling"
    )
    tutorial = tutorial_run(dataset, args.tutorial_trials, args.steps, args.depth, args.width)
    print(f"tutorial loop: {tutorial['trials_per_minute']:.2f} trials/min")
    best = max(engine, key=lambda r: r["trials_per_minute"])
    narrow = max((r for r in engine if r["width"] == args.width), key=lambda r: r["population"])
    sweep = sweep_over_engine(dataset)
    print(f"sweep worker / engine, population {sweep['population']}: {sweep['ratio']:.2f}")
    diverged = diverged_cost(dataset, args.depth, args.width)
    print(f"half diverged / healthy wall time: {diverged['fraction']:.2f}")
    large = in_child(large_population, args.large_population, args.large_steps, args.depth, args.width)
    print(f"population {large['population']}: peak RSS {large['peak_rss_mb']:.0f} MB")
    verdict = None if args.no_verdict else time_to_verdict(tutorial["total_s"] / tutorial["trials"] / args.steps)
    if verdict:
        print(f"time to verdict: {verdict['seconds']:.0f} s (tutorial loop: {verdict['tutorial_seconds']:.0f} s);"
              f" verdict cost ratio {verdict['verdict_cost_ratio']:.2f}")  # fmt: skip
    report = {
        "machine": {
            "platform": platform.platform(),
            "device": jax.devices()[0].device_kind,
            "cpus": os.cpu_count(),
            "devices": jax.device_count(),
            "jax": jax.__version__,
        },
        "task": {
            "dataset": "mnist1d",
            "depth": args.depth,
            "width": args.width,
            "steps": args.steps,
            "batch": 128,
            "optimizer": "sgd momentum 0.9",
        },
        "matmul_flops_per_s": ceiling,
        "engine": engine,
        "engine_wide": wide,
        "tutorial": tutorial,
        "speedup": best["trials_per_minute"] / tutorial["trials_per_minute"],
        "fraction_of_ceiling_128": narrow["flops_per_s"] / ceiling,
        "sweep": sweep,
        "sweep_over_engine": sweep["ratio"],
        "diverged": diverged,
        "diverged_cost_fraction": diverged["fraction"],
        "large": large,
        "peak_rss_mb": large["peak_rss_mb"],
    }
    if verdict:
        report.update(
            verdict=verdict,
            time_to_verdict_s=verdict["seconds"],
            tutorial_time_to_verdict_s=verdict["tutorial_seconds"],
            verdict_cost_ratio=verdict["verdict_cost_ratio"],
            halving_cost_ratio=verdict["halving_cost_ratio"],
            theory_s=verdict["theory_s"],
            status_s=verdict["status_s"],
            advise_s=verdict["advise_s"],
        )
    write(report, pathlib.Path(args.out))


def engine_run(dataset, population: int, steps: int, depth: int, width: int) -> dict:
    """Train `population` He/ReLU members as one program; time compile and steady state apart."""
    model = _model_config(depth, width)
    cfg = recipe.default_config()
    cfg.update({"steps": steps, "chunk_steps": steps})
    trainer = train.Trainer(model, cfg, dataset)
    groups = models.groups(model)
    # Healthy members only (alpha <= 2 at these learning rates): a diverged member costs less.
    first = members.Population.create(groups, np.geomspace(0.5, 2.0, population), 0.01, np.arange(population))
    second = members.Population.create(groups, np.geomspace(0.6, 1.9, population), 0.005, 1000 + np.arange(population))
    timings = []
    for pop in (first, second):  # the first call compiles; the second, new values, must not
        state = trainer.start(pop)
        jax.block_until_ready(state)
        start = time.perf_counter()
        jax.block_until_ready(trainer.chunk(state, trainer.arrays))
        timings.append(time.perf_counter() - start)
    compile_s, run_s = timings[0] - timings[1], timings[1]
    flops = population * steps * _flops_per_step(model, cfg.batch_size)
    return {
        "population": population,
        "width": width,
        "compile_s": compile_s,
        "run_s": run_s,
        "trials_per_minute": population * 60.0 / run_s,
        "flops_per_s": flops / run_s,
        "compilations": trainer.chunk._cache_size(),
    }


def sweep_over_engine(dataset, trials: int = 8, seeds: int = 4) -> dict:
    """A sweep worker (ask, train as one population with per-chunk evaluation, reports and
    checkpoints, tell) against the bare engine (one chunk, evaluated once) and the engine in the
    worker's chunks without storage or checkpoints, on the quick He/ReLU study's population,
    alphas in [0.5, 2] (nothing diverges, so nothing leaves); each timed after compiling."""
    alpha_range = (0.5, 2.0)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            "search.objective=train_loss",
            "search.objectives=()",
            "search.sampler='qmc'",  # one learning rate (train.learning_rate), as the engine runs below
            "search.learning_rate_range=()",
            f"search.alpha_range={alpha_range}",
            f"search.trials={2 * trials}",
            f"search.trials_per_batch={trials}",
            f"search.seeds={seeds}",
            f"search.runs_dir={tmp}",
        ]
        cfg = experiment.load(QUICK_HE, "quick", overrides)
        worker = Worker(cfg, storage.default_url(tmp), echo=lambda *_: None)
        worker.run(max_batches=1)
        start = time.perf_counter()
        worker.run(max_batches=1)
        worker_s = time.perf_counter() - start
    size = trials * seeds
    alphas = np.repeat(np.geomspace(*alpha_range, trials), seeds)
    pop = members.Population.create(models.groups(cfg.model), alphas, cfg.train.learning_rate, np.arange(size) % seeds)
    one_chunk = cfg.train.copy_and_resolve_references()
    one_chunk.chunk_steps = one_chunk.steps
    timings = {}
    for name, train_cfg in (("engine", one_chunk), ("chunked", cfg.train)):
        timings[name] = _second_run_s(train.Trainer(cfg.model, train_cfg, dataset), pop)[0]
    return {
        "population": size,
        "trials": trials,
        "seeds": seeds,
        "chunks": cfg.train.steps // cfg.train.chunk_steps,
        "worker_s": worker_s,
        "chunked_s": timings["chunked"],
        "engine_s": timings["engine"],
        "ratio": timings["engine"] / worker_s,  # trials per minute, worker over engine
    }


def diverged_cost(dataset, depth: int, width: int, population: int = 16, steps: int = 1000) -> dict:
    """Wall time of a population half of whose trials (two seeds side by side, trial-major as
    a sweep lays them out) diverge in the first chunk (lr 10) over a healthy one of the same
    size; each timed on its second run, after compiling."""
    model = _model_config(depth, width)
    cfg = recipe.default_config()
    cfg.steps = steps
    trainer = train.Trainer(model, cfg, dataset)
    groups = models.groups(model)
    alphas, seeds = np.geomspace(1.0, 3.0, population), np.arange(population)
    lrs = {"healthy": np.full(population, 0.01), "half": np.where(seeds // 2 % 2 == 1, 10.0, 0.01)}
    timings, diverged = {}, {}
    for name, lr in lrs.items():
        timings[name], result = _second_run_s(trainer, members.Population.create(groups, alphas, lr, seeds))
        diverged[name] = result.diverged_step.tolist()
    first_chunk = all(0 <= s < cfg.chunk_steps for s, lr in zip(diverged["half"], lrs["half"], strict=True) if lr > 1)
    return {
        "population": population,
        "steps": steps,
        "chunk_steps": cfg.chunk_steps,
        "healthy_s": timings["healthy"],
        "half_diverged_s": timings["half"],
        "all_diverged_in_first_chunk": first_chunk,
        "fraction": timings["half"] / timings["healthy"],
        "compilations": trainer.traces["chunk"],
    }


def large_population(population: int, steps: int, depth: int, width: int, reference: int = 64) -> dict:
    """One chunk of the largest population (an alpha x lr x seed grid), after one of `reference`
    members at the same steps for its speed per member; run in a child process, so the peak
    resident memory is its own."""
    devices.use_cpu_cores()
    dataset = data.load(data.default_config("mnist1d"))
    model = _model_config(depth, width)
    cfg = recipe.default_config()
    cfg.update({"steps": steps, "chunk_steps": steps})
    trainer = train.Trainer(model, cfg, dataset)
    rates = {}
    for size in (reference, population):
        grid = np.arange(size)
        alpha, lr = np.geomspace(0.5, 2.0, 12)[grid % 12], np.geomspace(1e-3, 1e-2, 7)[grid // 12 % 7]  # healthy
        seconds, _ = _second_run_s(trainer, members.Population.create(models.groups(model), alpha, lr, grid))
        rates[size] = size * steps / seconds
    return {
        "population": population,
        "steps": steps,
        "member_steps_per_s": rates[population],
        "member_steps_per_s_vs_reference": rates[population] / rates[reference],
        "reference_population": reference,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# The same ridge design without its adaptive parts: every cell trains to the end, the pilot too
NO_HALVING = ("search.ridge.keep=(7, 7)", "search.ridge.focus=0", "search.ridge.pilot_keep=0",
              "search.objectives=('train_loss',)")  # fmt: skip
DECISIVE = ("equivalent", "different", "near-optimal", "costly")  # the equivalence and the regret verdicts


def time_to_verdict(tutorial_step_s: float) -> dict:
    """`research sweep` of the quick He/ReLU experiment (adaptive design) from an empty storage and
    a cold compilation cache to its verdicts; then its trained design without halving, focus or
    pilot halving (same seeds, its own storage), to count the member-steps the adaptive parts save
    and check that the verdicts agree. The tutorial figure is the adaptive design's trained
    member-steps at the tutorial loop's measured time per step (probes left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in storage.ENV_VARS}  # the temporary storage
        seconds, adaptive = _sweep(pathlib.Path(tmp) / "adaptive", env)
        latencies = interactive_latencies(adaptive, env)
        full_s, full = _sweep(pathlib.Path(tmp) / "full", env, NO_HALVING)
        a, f = _trained_run(adaptive), _trained_run(full)
    verdicts_a, verdicts_f = a.pop("verdicts"), f.pop("verdicts")
    agree = [k for k, v in verdicts_a.items() if v in DECISIVE and verdicts_f.get(k) == v]
    return {"experiment": QUICK_HE, "seconds": seconds, "no_halving_seconds": full_s, "adaptive": a,
            "no_halving": f, "verdicts": verdicts_a, "no_halving_verdicts": verdicts_f,
            "verdict_cost_ratio": a["member_steps"] / a["rectangle_member_steps"],
            "halving_cost_ratio": a["member_steps"] / f["member_steps"], "same_cells": a["cells"] == f["cells"],
            "decisive_agree": agree, "decisive_disagree": [k for k, v in verdicts_a.items() if v in DECISIVE
                                                           and k not in agree],
            "tutorial_seconds": a["member_steps"] * tutorial_step_s, **latencies}  # fmt: skip


def _sweep(runs_dir: pathlib.Path, env: dict, overrides: tuple = ()) -> tuple[float, str]:
    """Seconds of `research sweep --no-report` of the quick He/ReLU experiment, and its journal."""
    command = [sys.executable, "-m", "research", "sweep", "--config", QUICK_HE, "--no-report"]
    for o in (f"search.runs_dir={runs_dir}", *overrides):
        command += ["--set", o]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start, str(runs_dir / "studies.journal")


def _trained_run(journal: str) -> dict:
    """A ridge sweep's trained member-steps (pilot included; a cell halving stopped counts the steps
    to its rung), the member-steps of the (alpha, lr) rectangle at the design's spacing that holds
    every cell of its study, the cells, and the train_loss verdicts (equivalence and regret)."""
    spent, out = 0, {}
    for record in studies.load_all(journal):
        cfg = record.cfg
        if not objectives.get(cfg.search.objective).trained:
            continue
        for t in record.trials:
            stopped = t.user_attrs.get("stopped")
            steps = (
                cfg.train.steps if t.state.name == "COMPLETE" else stopped and stopped["chunk"] * cfg.train.chunk_steps
            )
            spent += (steps or 0) * cfg.search.seeds
        if cfg.search.stage or cfg.search.objective != "train_loss":
            continue
        cells = np.log(np.array(record.attrs["design"]["cells"]))
        rates = 1 + math.ceil(np.ptp(cells[:, 1]) / math.log(cfg.search.ridge.spacing) - 1e-9)
        out["rectangle_member_steps"] = (
            len(np.unique(cells[:, 0].round(9))) * rates * cfg.search.seeds * cfg.train.steps
        )
        out["cells"] = record.attrs["design"]["cells"]
        judged = verdicts.analyse(record, "train_loss").verdicts
        regrets = {f"{v.theories}: regret": v.regret_verdict for v in judged if v.regret_verdict}
        out["verdicts"] = {**{v.theories: v.verdict for v in judged}, **regrets}
    return {"member_steps": spent, **out}


def interactive_latencies(journal: str, env: dict) -> dict:
    """Wall seconds of the quick questions on a sweep's storage, each a fresh process as a user
    types it: `research theory` (its table cached after a first call), `status`, `advise`."""
    asked = {
        "theory_s": ["theory"],
        "status_s": ["status", "--storage", journal],
        "advise_s": ["advise", "--config", QUICK_HE, "--storage", journal],
    }
    subprocess.run([sys.executable, "-m", "research", "theory"], check=True, capture_output=True, env=env)  # warm
    out = {}
    for key, argv in asked.items():
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "research", *argv], check=True, capture_output=True, env=env)
        out[key] = time.perf_counter() - start
    return out


def in_child(function, *args) -> dict:
    """`function(*args)` in a fresh process (spawned: its own JAX and memory)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def tutorial_run(dataset, trials: int, steps: int, depth: int, width: int) -> dict:
    """The way tutorials do it: one trial at a time, a jitted step built inside the objective."""
    model_cfg = _model_config(depth, width)
    x_train, y_train = np.asarray(dataset.x_train), np.asarray(dataset.y_train)

    def objective(trial: optuna.Trial) -> float:
        alpha = trial.suggest_float("alpha", 0.5, 2.0, log=True)  # the engine's range: nothing diverges
        model = models.build(model_cfg, alpha, rngs=nnx.Rngs(trial.number))
        optimizer = nnx.Optimizer(model, optax.sgd(0.01, momentum=0.9), wrt=nnx.Param)

        @nnx.jit
        def step(model, optimizer, x, y):
            def loss_fn(model):
                return optax.softmax_cross_entropy_with_integer_labels(model(x)[0], y).mean()

            loss, grads = nnx.value_and_grad(loss_fn)(model)
            optimizer.update(model, grads)
            return loss

        rng = np.random.default_rng(trial.number)
        for _ in range(steps):
            idx = rng.integers(0, len(x_train), 128)
            loss = step(model, optimizer, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]))
        return float(loss)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    total = time.perf_counter() - start
    return {"trials": trials, "total_s": total, "trials_per_minute": trials * 60.0 / total}


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """Dense float32 matmul FLOP/s through XLA, the machine's ceiling for this work: the better of
    one n x n product on the default device and one per device run side by side."""
    devices = jax.devices()
    one = jax.random.normal(jax.random.key(0), (1, n, n))
    rates = [_matmul_rate(one, repeats)]
    if len(devices) > 1:
        mesh = jax.make_mesh((len(devices),), ("devices",), devices=devices)
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("devices"))
        rates.append(_matmul_rate(jax.device_put(jnp.concatenate([one] * len(devices)), sharding), repeats))
    return max(rates)


def _matmul_rate(a: jax.Array, repeats: int) -> float:
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = f(a)
    out.block_until_ready()
    return 2 * a.shape[0] * a.shape[1] ** 3 * repeats / (time.perf_counter() - start)


def write(report: dict, out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    machine = report["machine"]
    lines = [
        f"# Benchmark ({machine['device']} x {machine['devices']}, {machine['cpus']} CPUs, jax {machine['jax']})",
        "",
        f"Task: MNIST-1D, {report['task']['depth']}-layer {report['task']['width']}-wide ReLU MLP, "
        f"{report['task']['steps']} steps of batch 128, SGD momentum 0.9.",
        "",
        "| run | P | trials/min | compile s | run s | GFLOP/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["engine"]:
        lines.append(
            f"| engine | {r['population']} | {r['trials_per_minute']:.2f} | {r['compile_s']:.1f} | {r['run_s']:.1f}"
            f" | {r['flops_per_s'] / 1e9:.1f} |"
        )
    t = report["tutorial"]
    lines.append(f"| tutorial loop | 1 at a time | {t['trials_per_minute']:.2f} | per trial | {t['total_s']:.1f} | |")
    w = report["engine_wide"]
    lines += [
        "",
        f"- speedup, engine (best P) over the tutorial loop: **{report['speedup']:.1f}x** trials per minute",
        f"- matmul ceiling: {report['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s;"
        f" engine at width {w['width']}, P={w['population']}: "
        f"{w['flops_per_s'] / 1e9:.1f} GFLOP/s = **{w['fraction_of_ceiling']:.0%}** of it",
        f"- compilations per experiment: {max(r['compilations'] for r in report['engine'])}",
        f"- engine at width 128, P={max(r['population'] for r in report['engine'])}:"
        f" **{report['fraction_of_ceiling_128']:.0%}** of the ceiling",
    ]
    sw, dv, lg = report["sweep"], report["diverged"], report["large"]
    lines += [
        f"- a sweep worker over the engine, same population ({sw['trials']} trials x {sw['seeds']} seeds,"
        f" {sw['chunks']} chunks): **{sw['ratio']:.2f}** of its trials per minute"
        f" ({sw['worker_s']:.1f} s against {sw['engine_s']:.1f} s; the engine in the worker's"
        f" {sw['chunks']} chunks, each evaluated, without storage or checkpoints: {sw['chunked_s']:.1f} s)",
        f"- a population of {dv['population']} half of which diverges in the first chunk:"
        f" **{dv['fraction']:.2f}** of a healthy one's wall time ({dv['half_diverged_s']:.1f} s against"
        f" {dv['healthy_s']:.1f} s)",
        f"- a population of {lg['population']} ({lg['steps']} steps): peak resident memory"
        f" **{lg['peak_rss_mb']:.0f} MB**; per member {lg['member_steps_per_s_vs_reference']:.2f}x the speed of"
        f" a population of {lg['reference_population']}",
    ]
    if "verdict" in report:
        v = report["verdict"]
        a, f = v["adaptive"], v["no_halving"]
        lines += [
            f"- from an empty storage to the quick He/ReLU verdicts: **{v['seconds']:.0f} s**; its"
            f" {a['member_steps']:,} trained member-steps at the tutorial loop's time per step:"
            f" {v['tutorial_seconds']:.0f} s",
            f"- verdict cost ratio, the adaptive design's member-steps (pilot included) over the (alpha, lr)"
            f" rectangle holding every cell ({a['rectangle_member_steps']:,}): **{v['verdict_cost_ratio']:.2f}**;"
            f" over the same cells without halving, focus or pilot halving ({f['member_steps']:,}, same seeds,"
            f" {v['no_halving_seconds']:.0f} s): **{v['halving_cost_ratio']:.2f}**; same cells: {v['same_cells']};"
            f" decisive verdicts both give: {v['decisive_agree'] or 'none'}, that only the adaptive run gives:"
            f" {v['decisive_disagree'] or 'none'}",
        ]
        lines.append(
            f"- on that storage, each a fresh process: `research theory` **{v['theory_s']:.1f} s** (table cached"
            f" after a first call), `status` **{v['status_s']:.1f} s**, `advise` **{v['advise_s']:.1f} s**"
        )
    (out / "bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {out / 'bench.json'}, {out / 'bench.md'}")


def _model_config(depth: int, width: int):
    model = models.default_config("mlp")
    model.update({"depth": depth, "width": width, "activation": "relu"})
    return model


def _second_run_s(trainer: train.Trainer, pop: members.Population) -> tuple[float, members.Result]:
    """Seconds to train `pop` the second time (the first compiles), and that run's result."""
    train.train(trainer, pop)
    start = time.perf_counter()
    result = train.train(trainer, pop)
    return time.perf_counter() - start, result


def _flops_per_step(model, batch: int) -> float:
    """Matmul FLOPs of one training step: the forward pass, and twice that backward."""
    return 3.0 * batch * models.forward_flops(model, (model.input_dim,))


if __name__ == "__main__":
    main()
