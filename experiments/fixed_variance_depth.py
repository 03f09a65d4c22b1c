"""A fixed init std of 0.01 against Xavier and He as depth grows: where does the naive choice fail?

    research sweep --config experiments/fixed_variance_depth.py:depth=10   # quick: 1 to 4 min per depth

Mode "fixed" with scale 1e-4: Var(W) = alpha * 1e-4 whatever the fan, so alpha 1 is std 0.01 and,
on the 128 x 128 hidden layers, Xavier's 1/128 is alpha 78.125 and He's 2/128 alpha 156.25 (the
first layer, 40 inputs, takes the same variance as the others). Three arms, each at its best of 5
learning rates in [1e-3, 0.1], 4 shared seeds, 400 steps; the suite runs depths 2, 5, 10, 20, 30.
The report draws each arm's stored curves with a band over seeds, the per-layer variance at
initialisation, and the paired differences against std 0.01.
"""

from research import experiment

ARMS = (("std 0.01", 1.0), ("Xavier", 78.125), ("He", 156.25))


def get_config(profile: str = "quick", depth: int = 10):
    cfg = experiment.mnist1d_mlp(f"fixed_variance_depth_{depth}", "relu", "fixed", depth=depth)
    cfg.model.init.scale = 1e-4
    cfg.train.update({"steps": 400})
    experiment.compared_arms(cfg, ARMS, (1e-3, 0.1), lrs=5, seeds=4)
    if profile == "paper":
        cfg.model.width = 256
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        arms = (("std 0.01", 1.0), ("Xavier", 1e4 / 256), ("He", 2e4 / 256))
        experiment.compared_arms(cfg, arms, (1e-4, 0.1), lrs=7, seeds=8)
    return cfg
