"""The optimiser's role: plain SGD, momentum and Adam, each with the learning rate profiled out.

    research sweep --config experiments/optimizers.py:optimizer=sgd
    research sweep --config experiments/optimizers.py:optimizer=momentum
    research sweep --config experiments/optimizers.py:optimizer=adam    # quick: about 2 min each

A bias-free 20-layer ReLU MLP is positively homogeneous: scaling alpha scales each SGD step's
relative effect on the logits by about (alpha/2)^9, so under SGD lr*(alpha) should fall with slope
-9 in log-log, while Adam's fixed step size asks lr ~ alpha^(1/2) (predictions.lr_slope). Each
optimiser: 6 alphas in [0.8, 4] x 5 learning rates x 3 seeds, 400 steps; alpha* is the minimum of
the profile over lr, and the report draws lr*(alpha) against the predicted slope.
"""

from research import experiment

LEARNING_RATES = {"sgd": (1e-3, 0.3), "momentum": (3e-4, 3e-2), "adam": (3e-5, 3e-3), "adamw": (3e-5, 3e-3)}


def get_config(profile: str = "quick", optimizer: str = "momentum"):
    cfg = experiment.mnist1d_mlp(f"optimizers_{optimizer}", "relu", "fan_in")
    cfg.train.update({"optimizer": optimizer, "steps": 400})
    lrs = LEARNING_RATES.get(optimizer, LEARNING_RATES["momentum"])
    experiment.lr_profiled(cfg, (0.8, 4.0), lrs, alphas=6, lrs=5, seeds=3)
    if profile == "paper":
        experiment.paper_scale(cfg)
        experiment.lr_profiled(cfg, (0.7, 5.6), (lrs[0] / 3, lrs[1] * 3), alphas=12, lrs=7, seeds=8)
    return cfg
