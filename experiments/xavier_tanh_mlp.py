"""Glorot & Bengio 2010 on a deep tanh MLP: is alpha* = 1 on fan_avg?

    research sweep --config experiments/xavier_tanh_mlp.py          # quick: about 3 min on 2 cores

quick: MNIST-1D, 20 layers x 128, SGD momentum 0.9, lr 0.01, 1000 steps of 128, 24 trials
x 3 seeds, TPE on alpha in [0.25, 8]. THEORY.md measured the trained optimum near 1.7
(train loss), between the edge of chaos (1) and the forward rule (2.54).
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.base_config("xavier_tanh_mlp", model="mlp", dataset="mnist1d")
    cfg.model.update({"activation": "tanh", "depth": 20, "width": 128})
    cfg.model.init.mode = "fan_avg"
    cfg.train.update({"optimizer": "momentum", "learning_rate": 0.01, "steps": 1000, "chunk_steps": 100})
    cfg.search.update(
        {"objective": "train_loss", "alpha_range": (0.25, 8.0), "trials": 24, "trials_per_batch": 8, "seeds": 3}
    )
    if profile == "paper":
        cfg.model.update({"depth": 50, "width": 256})
        cfg.data.params.num_samples = 20000
        cfg.train.update({"steps": 3000, "chunk_steps": 250, "learning_rate": 0.005})
        cfg.search.update({"trials": 200, "trials_per_batch": 16, "seeds": 5})
    return cfg
