"""Glorot & Bengio 2010 on sigmoid: their "standard" U(-1/sqrt(n), 1/sqrt(n)) against normalised init.

    research sweep --config experiments/sigmoid_standard_vs_normalised.py   # quick: about 2 min

On fan_avg with uniform weights, normalised init (Var = 2 / (fan_in + fan_out)) is alpha 1; the
standard init has Var = 1 / (3 fan_in), alpha 1/3 on the square hidden layers. 5 sigmoid layers of
128 units (as in their figures 6-7, smaller), each arm at its best of 5 learning rates in
[0.01, 1], 4 shared seeds; the report draws the per-layer activation and gradient variance at
initialisation for both arms, the stored curves, and the paired difference of the final losses.
"""

from research import experiment

ARMS = (("standard", 1 / 3), ("normalised", 1.0))


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("sigmoid_standard_vs_normalised", "sigmoid", "fan_avg", depth=5)
    cfg.model.init.distribution = "uniform"
    experiment.compared_arms(cfg, ARMS, (1e-2, 1.0), lrs=5, seeds=4)
    if profile == "paper":
        cfg.model.width = 1000
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        experiment.compared_arms(cfg, ARMS, (1e-3, 3.0), lrs=7, seeds=8)
    return cfg
