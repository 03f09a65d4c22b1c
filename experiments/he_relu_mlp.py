"""He et al. 2015 on a deep ReLU MLP: is alpha* = 2 on fan_in, once the learning rate is profiled out?

    research sweep --config experiments/he_relu_mlp.py        # quick: about 5 min on 2 cores

quick: MNIST-1D, 20 bias-free layers x 128, SGD momentum 0.9, 1000 steps of 128, on a fixed grid of
6 alphas in [0.8, 4] x 4 learning rates in [3e-4, 3e-2] x 3 seeds, run as one population. At one
learning rate the trained optimum sits at the stability edge of that rate (the effective step of a
bias-free ReLU net grows about as (alpha/2)^9 with 20 layers); alpha* here is the minimum of the
profile over lr, for the final training loss and for the objectives in `verdict.objectives` (loss
after 300 steps, steps to a loss of 1, early-stopped validation loss and error), all read off the
same stored curves. The report draws lr*(alpha) against the slope homogeneity predicts
(docs/theory.md). The forward signal at initialisation runs as a width series (64 to 512 units,
6 alphas x 48 seeds each, a fixed grid): its zero drifts above 2 by O(1/n) at finite width (Hanin &
Rolnick 2018), and the intercept of alpha*(n) = a + b/n is judged against He's 2 with a 1% region.
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("he_relu_mlp", "relu", "fan_in")
    experiment.lr_profiled(cfg, (0.8, 4.0), (3e-4, 3e-2), alphas=6, lrs=4, seeds=3)
    cfg.search.objectives = ("train_loss", "forward_log_ratio")
    cfg.search.probe.update({"trials": 16, "alpha_range": (0.5, 8.0)})  # log-slope ~ log alpha: few trials do
    cfg.verdict.objectives = (
        "train_loss_at_300", "steps_to_threshold", "val_loss_early_stopped", "val_error_early_stopped"
    )  # fmt: skip
    cfg.search.series.update(
        {"field": "width", "levels": (64, 128, 256, 512), "alpha_range": (1.8, 2.25), "points": 6, "seeds": 48}
    )
    if profile == "paper":
        cfg.model.update({"depth": 30, "width": 256})
        experiment.paper_scale(cfg)
        experiment.lr_profiled(cfg, (0.7, 5.6), (1e-4, 0.1), alphas=12, lrs=7, seeds=8)
        cfg.verdict.objectives = ("train_loss_at_300", "train_loss_at_1200", *cfg.verdict.objectives[1:])
    return cfg
