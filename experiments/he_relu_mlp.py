"""1. He et al. 2015 on a deep ReLU MLP: is alpha* = 2 on fan_in?

    research sweep --config experiments/he_relu_mlp.py        # quick: about 3 min on 2 cores

quick: MNIST-1D, 20 layers x 128, SGD momentum 0.9, lr 0.01, 1000 steps of 128; 32 trials
x 4 seeds of TPE on alpha in [0.5, 8] for the training loss, and 32 x 8 for the forward
signal at initialisation (seconds).
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("he_relu_mlp", "relu", "fan_in")
    # The trained loss is flat from about 1.4 to 2.4: 32 trials x 4 seeds pin its minimum down.
    cfg.search.update(
        {"alpha_range": (0.5, 8.0), "trials": 32, "seeds": 4, "objectives": ("train_loss", "forward_log_ratio")}
    )
    if profile == "paper":
        cfg.model.update({"depth": 30, "width": 256})
        experiment.paper_scale(cfg)
    return cfg
