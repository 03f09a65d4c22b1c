"""6. The activation zoo: which theory predicts the optimum, for probes and for training?

    research sweep --config experiments/zoo.py:activation=gelu   # one activation, quick: about 3 min
    make suite                                                   # every activation

Probes at initialisation: one layer's forward gain at unit input variance (what defines the
second-moment rule 1/E[phi^2]) and the forward signal's log-ratio across 20 layers (where
non-homogeneous activations settle at their own fixed point q*). Training: MNIST-1D, 20
layers x 128, 600 steps.
"""

from research import experiment

ACTIVATIONS = ("leaky_relu:0.2", "elu", "selu", "gelu", "silu", "sigmoid", "softplus")


def get_config(profile: str = "quick", activation: str = "gelu"):
    name = "zoo_" + activation.replace(":", "").replace(".", "p")
    cfg = experiment.mnist1d_mlp(name, activation, "fan_in")
    cfg.train.update({"steps": 600})
    cfg.search.update(
        {"alpha_range": (0.25, 16.0), "trials": 16, "trials_per_batch": 8, "seeds": 2,
         "objectives": ("forward_one_layer", "forward_log_ratio", "train_loss"),
         "probe_inputs": "gaussian", "probe_seeds": 32}
    )  # fmt: skip
    if profile == "paper":
        experiment.paper_scale(cfg)
    return cfg
