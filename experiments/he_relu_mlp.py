"""1. He et al. 2015 on a deep ReLU MLP: is alpha* = 2 on fan_in?

    research sweep --config experiments/he_relu_mlp.py        # quick: about 3 min on 2 cores

quick: MNIST-1D, 20 layers x 128, SGD momentum 0.9, lr 0.01, 1000 steps of 128; 32 trials
x 4 seeds on a scrambled Sobol design over alpha in [0.5, 8] for the training loss. The forward
signal at initialisation runs as a width series (64 to 512 units, 6 alphas x 64 seeds each, a
fixed grid): its zero drifts above 2 by O(1/n) at finite width (Hanin & Rolnick 2018), and the
intercept of alpha*(n) = a + b/n is judged against He's 2 with a 1% region (docs/theory.md).
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("he_relu_mlp", "relu", "fan_in")
    # The trained loss is flat from about 1.4 to 2.4: 32 trials x 4 seeds pin its minimum down.
    cfg.search.update(
        {"alpha_range": (0.5, 8.0), "trials": 32, "seeds": 4, "sampler": "qmc",
         "objectives": ("train_loss", "forward_log_ratio")}
    )  # fmt: skip
    cfg.search.series.update(
        {"field": "width", "levels": (64, 128, 256, 512), "alpha_range": (1.8, 2.25), "points": 6, "seeds": 64}
    )
    if profile == "paper":
        cfg.model.update({"depth": 30, "width": 256})
        experiment.paper_scale(cfg)
    return cfg
