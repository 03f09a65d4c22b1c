"""The activation zoo: which theory predicts the optimum, for probes and for training?

    research sweep --config experiments/zoo.py:activation=gelu   # one activation, quick: about 2 min
    make suite                                                   # every activation

Probe at initialisation: the forward signal's log-ratio across 20 layers (where non-homogeneous
activations settle at their own fixed point q*), on the bracket design (bracket.py): 16 alphas x 8
seeds over [0.25, 16], then 12 alphas x 32 seeds around the sign change; the zero is read off the
two trials beside it (crossing.py), kinked for GELU and SiLU, flat for softplus. One layer's gain
at unit input variance defines the second-moment rule 1/E[phi^2], so probing it tests only the
quadrature; the suite leaves it out (`--set search.objectives="('forward_one_layer',)"` runs it). Training: MNIST-1D, 20
layers x 128, 300 steps, on a grid of 5 alphas in [0.35, 11.3] x 3 learning rates in
[3e-3, 3e-2] x 3 seeds (the learning rate profiled out).
"""

from research import experiment


def get_config(profile: str = "quick", activation: str = "gelu"):
    name = "zoo_" + activation.replace(":", "").replace(".", "p")
    cfg = experiment.mnist1d_mlp(name, activation, "fan_in")
    cfg.train.update({"steps": 300})
    experiment.lr_profiled(cfg, (0.35, 11.3), (3e-3, 3e-2), alphas=5, lrs=3, seeds=3)
    cfg.search.update(
        {"objectives": ("forward_log_ratio", "train_loss"),
         "probe_inputs": "gaussian", "probe_seeds": 32}
    )  # fmt: skip
    cfg.search.probe.alpha_range = (0.25, 16.0)
    if profile == "paper":
        experiment.paper_scale(cfg)
        experiment.lr_profiled(cfg, (0.25, 16.0), (1e-3, 0.1), alphas=12, lrs=7, seeds=8)
    return cfg
