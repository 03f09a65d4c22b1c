"""Trainability against depth: does the (alpha, depth) region that trains follow 6 xi(alpha)?

    research sweep --config experiments/trainability_depth.py:depth=20   # quick: 0.5 to 5 min per depth

tanh with sigma_b^2 = 0.05 (Schoenholz et al. 2017): edge of chaos at alpha 1.76, depth scale
xi = 3.6 at alpha 1 and 25 at alpha 2 (`research theory`); signals survive about 6 xi layers.
One study per depth (the suite runs 5, 10, 20, 40 and 80), each a grid of 7 alphas in [0.5, 4]
x 3 learning rates in [1e-3, 3e-2] x 3 seeds, 300 steps. The report joins them in a map: each
cell is the training loss at the best learning rate, against chance, with 6 xi(alpha) drawn over
it, and the width of the near-optimal band (within 10% of the best loss) against depth.
"""

import math

from research import experiment


def get_config(profile: str = "quick", depth: int = 20):
    cfg = experiment.mnist1d_mlp(f"trainability_depth_{depth}", "tanh", "fan_in", depth=depth)
    cfg.model.sigma_b = math.sqrt(0.05)
    cfg.train.update({"steps": 300})
    experiment.lr_profiled(cfg, (0.5, 4.0), (1e-3, 3e-2), alphas=7, lrs=3, seeds=3)
    if profile == "paper":
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        experiment.lr_profiled(cfg, (0.35, 5.6), (1e-4, 0.1), alphas=12, lrs=7, seeds=8)
    return cfg
