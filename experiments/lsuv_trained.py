"""LSUV (Mishkin & Matas 2015) trained: does the data-driven scale train as well as theory's alpha?

    research sweep --config experiments/lsuv_trained.py    # quick: about 3 min

LSUV rescales an orthonormal init layer by layer until each layer's output has unit variance on a
data batch. Its per-layer alphas (Var(W) * fan_in; `research lsuv`) are measured here, on 512
training inputs, and their median over the hidden layers after the first is one arm; He's 2 (what
theory asks of every layer after the first) is the other; both orthogonal, 20 ReLU layers, each
at its best of 5 learning rates, 4 shared seeds. Close arms are the expected outcome: the paired
difference says how close, against a 10% region.
"""

import jax
import numpy as np

from research import data, experiment, lsuv


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("lsuv_trained", "relu", "fan_in")
    cfg.model.init.distribution = "orthogonal"
    if profile == "paper":
        cfg.model.update({"depth": 30, "width": 256})
    # The LSUV arm is measured on this very network and data (a few seconds at config time).
    x = data.load(cfg.data).x_train[:512]
    found = lsuv.scales(cfg.model, x, jax.random.key(0))
    arms = (("LSUV", round(float(np.median(found[1:])), 4)), ("He", 2.0))
    experiment.compared_arms(cfg, arms, (3e-4, 3e-2), lrs=5, seeds=4)
    if profile == "paper":
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        experiment.compared_arms(cfg, cfg.search.arms, (1e-4, 0.1), lrs=7, seeds=8)
    return cfg
