"""Population engine against the tutorial loop and the machine's matmul ceiling.

Measures side by side, in one run on one machine: (1) the engine training P trials of the
quick He/ReLU task as one program, for several P; (2) the same trials trained one at a
time the way tutorial code does (an Optuna objective that builds a Flax model, jits a
step inside the objective and loops over steps in Python, under `study.optimize`);
(3) dense float32 matmul through XLA, the ceiling. Prints and writes JSON + Markdown.

    make bench                          # 2 CPU cores: about 10 minutes
    python benchmarks/bench.py --populations 64 256 1024 --tutorial-trials 4   # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optuna
from flax import nnx

from research import data, devices, models, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--flops-width", type=int, default=256, help="width for the FLOP/s fraction run")
    parser.add_argument("--tutorial-trials", type=int, default=3)
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
    }
    write(report, pathlib.Path(args.out))


def engine_run(dataset, population: int, steps: int, depth: int, width: int) -> dict:
    """Train `population` He/ReLU members as one program; time compile and steady state apart."""
    model = _model_config(depth, width)
    cfg = train.default_config()
    cfg.update({"steps": steps, "chunk_steps": steps})
    trainer = train.Trainer(model, cfg, dataset)
    groups = models.groups(model)
    first = train.Population.create(groups, np.geomspace(1.0, 4.0, population), 0.01, np.arange(population))
    second = train.Population.create(groups, np.geomspace(0.5, 3.0, population), 0.02, 1000 + np.arange(population))
    timings = []
    for pop in (first, second):  # the first call compiles; the second, new values, must not
        state = trainer.start(pop)
        jax.block_until_ready(state)
        start = time.perf_counter()
        jax.block_until_ready(trainer.chunk(state))
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


def tutorial_run(dataset, trials: int, steps: int, depth: int, width: int) -> dict:
    """The way tutorials do it: one trial at a time, a jitted step built inside the objective."""
    model_cfg = _model_config(depth, width)
    x_train, y_train = np.asarray(dataset.x_train), np.asarray(dataset.y_train)

    def objective(trial: optuna.Trial) -> float:
        alpha = trial.suggest_float("alpha", 1.0, 4.0, log=True)
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
    ]
    (out / "bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {out / 'bench.json'}, {out / 'bench.md'}")


def _model_config(depth: int, width: int):
    model = models.default_config("mlp")
    model.update({"depth": depth, "width": width, "activation": "relu"})
    return model


def _flops_per_step(model, batch: int) -> float:
    """Matmul FLOPs of one training step: the forward pass, and twice that backward."""
    return 3.0 * batch * models.forward_flops(model, (model.input_dim,))


if __name__ == "__main__":
    main()
