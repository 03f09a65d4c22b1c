"""Glorot & Bengio 2010 on sigmoid: their "standard" U(-1/sqrt(n), 1/sqrt(n)) against normalised init.

    research sweep --config experiments/sigmoid_standard_vs_normalised.py   # quick: about 2 min

On fan_avg with uniform weights, normalised init (Var = 2 / (fan_in + fan_out)) is alpha 1; the
standard init has Var = 1 / (3 fan_in), alpha 1/3 on the square hidden layers. 5 sigmoid layers of
128 units (as in their figures 6-7, smaller), Adam, each arm at its best of 5 learning rates in
[1e-3, 3e-2], 4 shared seeds; the report draws the per-layer activation and gradient variance at
initialisation for both arms, the stored curves, and the paired difference of the final losses.
Under SGD with momentum neither arm left the chance level in 1000 steps at any learning rate from
0.01 to 10 (measured on 2026-11-29), so the quick profile uses Adam.
"""

from research import experiment

ARMS = (("standard", 1 / 3), ("normalised", 1.0))


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("sigmoid_standard_vs_normalised", "sigmoid", "fan_avg", depth=5)
    cfg.model.init.distribution = "uniform"
    cfg.train.optimizer = "adam"
    experiment.compared_arms(cfg, ARMS, (1e-3, 3e-2), lrs=5, seeds=4)
    if profile == "paper":
        cfg.model.width = 1000
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        experiment.compared_arms(cfg, ARMS, (1e-4, 3e-2), lrs=7, seeds=8)
    return cfg
