"""What frozen spare rows cost: one 50-step chunk of the quick ReLU net (20 x 128) with 64 live
members in 64 rows against 44 live members in the same 64 rows (20 frozen spare rows, packed at
each device's end by `Trainer.layout`), alternating, each timed after a warm-up chunk.

    .venv/bin/python benchmarks/frozen_rows.py
"""

import time

import numpy as np

from research import data, devices, members, models, recipe, train


def chunk_s(trainer: train.Trainer, model, count: int) -> tuple[float, int, int]:
    """Seconds of one chunk of `count` members (after a first, compiling one); live and all rows."""
    pop = members.Population.create(models.groups(model), np.geomspace(0.5, 2, count), 0.01, np.arange(count))
    progress = trainer.begin(pop)
    trainer.advance(progress)
    start = time.perf_counter()
    trainer.advance(progress)
    return time.perf_counter() - start, int((progress.roster.slots >= 0).sum()), len(progress.roster.slots)


def main() -> None:
    devices.use_cpu_cores()
    dataset = data.load(data.default_config("mnist1d"))
    model = models.default_config("mlp")
    model.update({"depth": 20, "width": 128})
    cfg = recipe.default_config()
    cfg.update({"steps": 100, "chunk_steps": 50})
    trainer = train.Trainer(model, cfg, dataset, population_size=64)
    for count in (64, 44) * 3:
        seconds, live, rows = chunk_s(trainer, model, count)
        print(f"{live} live in {rows} rows: {seconds:.2f} s", flush=True)


if __name__ == "__main__":
    main()
