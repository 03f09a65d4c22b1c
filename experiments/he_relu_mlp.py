"""He et al. 2015 on a deep ReLU MLP: is alpha* = 2 on fan_in, once the learning rate is profiled out?

    research sweep --config experiments/he_relu_mlp.py        # quick: about 5 min on 2 cores

quick: MNIST-1D, 20 bias-free layers x 128, SGD momentum 0.9, 500 steps of 128, on the ridge
design (docs/theory.md, section 7): a pilot (6 alphas half an octave apart from 0.71 to 4 x
learning rates 4x apart from 1e-5 to 10, 2 seeds, 150 steps) finds where the best learning rate
goes, lr*(alpha), and roughly where alpha* is; then 8 alphas a quarter octave apart around it
(He's 2 among them) x 7 learning rates 2x apart along that ridge x 8 seeds, each seed with its own
batch order and phase of the lr grid, run as one population halved along the learning rate
(docs/theory.md, section 7): after 50 steps each alpha keeps 4 consecutive rates around its best
(one above it), after 100 steps 3, and only the 6 alphas nearest the best and those beside He's 2
train on to 500 steps; the pilot keeps 4 of its 11 rates per alpha after 50 steps. alpha* is the
minimum of the profile over lr, for the final training loss
and for the objectives in `verdict.objectives` (loss after 300 steps, steps to a loss of 1,
early-stopped validation loss and error), all read off the same stored curves, with diverged
runs censored, the regret cross-fitted and every verdict checked against the pre-registered
analysis variants. The report draws lr*(alpha) against both slopes homogeneity predicts. The
forward signal at initialisation runs as a width series (64 to 512 units, 6 alphas x 48 seeds
each, a fixed grid): its zero drifts above 2 by O(1/n) at finite width (Hanin & Rolnick 2018),
and the intercept of alpha*(n) = a + b/n is judged against He's 2 with a 1% region.
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("he_relu_mlp", "relu", "fan_in")
    cfg.train.update({"steps": 500, "chunk_steps": 50})
    experiment.ridge_profiled(cfg, tuple(2 * 2 ** (k / 2) for k in range(-3, 3)), seeds=8)
    cfg.search.objectives = ("train_loss", "forward_log_ratio")
    cfg.verdict.objectives = (
        "train_loss_at_300", "steps_to_threshold", "val_loss_early_stopped", "val_error_early_stopped"
    )  # fmt: skip
    cfg.search.series.update(
        {"field": "width", "levels": (64, 128, 256, 512), "alpha_range": (1.8, 2.25), "points": 6, "seeds": 48}
    )
    if profile == "paper":
        cfg.model.update({"depth": 30, "width": 256})
        experiment.paper_scale(cfg)
        experiment.ridge_profiled(
            cfg,
            tuple(2 * 2 ** (k / 2) for k in range(-4, 4)),
            seeds=8,
            window=16,
            per_octave=8,
            focus=10,
            pilot_steps=300,
        )
        cfg.verdict.objectives = ("train_loss_at_300", "train_loss_at_1200", *cfg.verdict.objectives[1:])
    return cfg
