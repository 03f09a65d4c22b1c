"""He et al. 2015 on a deep ReLU MLP: is alpha* = 2 on fan_in?

    research sweep --config experiments/he_relu_mlp.py              # quick: about 3 min on 2 cores
    research sweep --config experiments/he_relu_mlp.py:paper --storage postgresql://...   # cluster

quick: MNIST-1D, 20 layers x 128, SGD momentum 0.9, lr 0.01, 1000 steps of 128 (the
THEORY.md measured setting), 24 trials x 3 seeds, TPE on alpha in [0.5, 8].
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.base_config("he_relu_mlp", model="mlp", dataset="mnist1d")
    cfg.model.update({"activation": "relu", "depth": 20, "width": 128})
    cfg.model.init.mode = "fan_in"
    cfg.train.update({"optimizer": "momentum", "learning_rate": 0.01, "steps": 1000, "chunk_steps": 100})
    cfg.search.update(
        {"objective": "train_loss", "alpha_range": (0.5, 8.0), "trials": 24, "trials_per_batch": 8, "seeds": 3}
    )
    if profile == "paper":
        cfg.model.update({"depth": 30, "width": 256})
        cfg.data.params.num_samples = 20000
        cfg.train.update({"steps": 3000, "chunk_steps": 250})
        cfg.search.update({"trials": 200, "trials_per_batch": 16, "seeds": 5})
    return cfg
