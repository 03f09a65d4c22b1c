"""7. The optimiser's role: SGD against Adam, alpha and lr searched jointly.

alpha* is read off the profile min over lr. A bias-free ReLU net is homogeneous, so under
SGD the effective learning rate moves with alpha; Adam hides the gradient scale.

    research sweep --config experiments/optimizers.py:optimizer=momentum
    research sweep --config experiments/optimizers.py:optimizer=adam    # quick: about 3 min each
"""

from research import experiment


def get_config(profile: str = "quick", optimizer: str = "momentum"):
    cfg = experiment.mnist1d_mlp(f"optimizers_{optimizer}", "relu", "fan_in")
    lr = (1e-3, 0.1) if optimizer in ("sgd", "momentum") else (1e-4, 1e-2)
    cfg.train.update({"optimizer": optimizer, "steps": 600})
    cfg.search.update(
        {"alpha_range": (0.5, 8.0), "learning_rate_range": lr, "trials": 32, "trials_per_batch": 8, "seeds": 2}
    )
    if profile == "paper":
        experiment.paper_scale(cfg)
    return cfg
