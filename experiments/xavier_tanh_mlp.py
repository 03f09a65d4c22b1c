"""Glorot & Bengio 2010 on a deep tanh MLP: is alpha* = 1 on fan_avg, once the learning rate is profiled out?

    research sweep --config experiments/xavier_tanh_mlp.py    # quick: about 5 min on 2 cores

quick: MNIST-1D, 20 layers x 128, SGD momentum 0.9, 500 steps of 128, on the ridge design
(docs/theory.md, section 7): a pilot over 7 alphas half an octave apart from 0.5 to 4, then 8
alphas a quarter octave apart around its best (placed to hold Xavier's 1 and the other rules'
predictions where it can) x 7 learning rates 2x apart along the ridge x 8 seeds, each with its own
batch order, halved along the learning rate after 50 and 100 steps (4, then 3 rates per alpha
kept; the last rung keeps the 6 alphas nearest the best and those beside each prediction). The
final training loss measures how fast 3600 examples are memorised (about 18
epochs); the early-stopped validation loss and error,
the loss after 300 steps and the steps to a loss of 1 are read off the same stored curves, and the
report says whether their alpha* agree. The probe objective is the Jacobian gain per layer with
faint inputs (q1 about 0.005, near the fixed point q* = 0), where mean-field theory puts the edge of
chaos at alpha = 1 (Poole et al. 2016); the network as run, with those inputs, is critical at
1.0095 (docs/theory.md); it runs on the bracket design (16 alphas x 8 seeds, then 12 x 32 around
the zero). The same probe over several input scales, extrapolated to a vanishing
input (where theory puts the edge at 1):

    research sweep --config experiments/xavier_tanh_mlp.py --set "search.objectives=('jacobian_log_gain',)" \
        --set "search.series.field='probe_input_scale'" --set "search.series.levels=(0.05, 0.1, 0.2, 0.3)" \
        --set "search.series.alpha_range=(0.8, 1.4)"
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("xavier_tanh_mlp", "tanh", "fan_avg")
    cfg.train.update({"steps": 500, "chunk_steps": 50})
    experiment.ridge_profiled(cfg, tuple(2 ** (k / 2) for k in range(-2, 5)), seeds=8)
    cfg.search.update({"objectives": ("train_loss", "jacobian_log_gain"), "probe_input_scale": 0.1, "probe_seeds": 32})
    cfg.verdict.objectives = (
        "train_loss_at_300", "steps_to_threshold", "val_loss_early_stopped", "val_error_early_stopped"
    )  # fmt: skip
    if profile == "paper":
        cfg.model.update({"depth": 50, "width": 256})
        experiment.paper_scale(cfg)
        experiment.ridge_profiled(
            cfg,
            tuple(2 ** (k / 2) for k in range(-3, 6)),
            seeds=8,
            window=16,
            per_octave=8,
            focus=10,
            pilot_steps=300,
        )
        cfg.verdict.objectives = ("train_loss_at_300", "train_loss_at_1200", *cfg.verdict.objectives[1:])
    return cfg
