"""4. A deep plain ReLU CNN (no normalisation): He's fan_in counts kernel area x input channels.

    research sweep --config experiments/relu_cnn.py           # quick: about 4 min

quick: MNIST-1D as a 1-D image (40 x 1), 12 conv layers of 32 channels, kernel 3, global
average pooling, SGD momentum 0.9, lr 0.01, 600 steps; probe: forward signal at init.
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.base_config("relu_cnn", model="cnn", dataset="mnist1d")
    cfg.data.view = "image"
    cfg.model.update({"activation": "relu", "depth": 12, "channels": 32, "kernel_size": 3, "input_shape": (40, 1)})
    cfg.train.update({"optimizer": "momentum", "learning_rate": 0.01, "steps": 600, "chunk_steps": 100})
    cfg.search.update(
        {"alpha_range": (0.5, 8.0), "trials": 16, "trials_per_batch": 8, "seeds": 2,
         "objectives": ("train_loss", "forward_log_ratio")}
    )  # fmt: skip
    if profile == "paper":
        cfg.model.update({"depth": 30, "channels": 64})
        experiment.paper_scale(cfg)
    return cfg
