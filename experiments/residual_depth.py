"""Fixup's depth rule on a residual MLP: does the best scale of the residual branch fall with depth as it says?

    research sweep --config experiments/residual_depth.py:depth=16,norm=none   # quick: 1.5 min (depth 4) to 4 (16)

quick: MNIST-1D, a dense stem, `depth` pre-activation ReLU blocks x + W_out relu(W_in relu(x)) of 64
units (`norm=layer`: a LayerNorm before each relu and before the readout), SGD momentum 0.9, 400
steps of 128. The searched alpha is the variance of both of each branch's layers, W_in and W_out
(on fan_in; `model.branch = "all"`). At He's 2 on both, each block adds as much variance as the
stream holds, so without normalisation the signal grows as (1 + alpha^2 / 4)^depth; Fixup's rule
(Zhang et al. 2019) divides the branch's variance by the depth, which on two scaled layers is
alpha = 2 / sqrt(depth) on each (docs/theory.md section 10). A LayerNorm removes the growth's effect
on every branch but the readout's input, so the rule has less reason to hold there. Ridge design
(docs/theory.md section 7): a pilot over 13 alphas half an octave apart from 1/16 to 4 (He's 2
among them) finds the learning rate's ridge, then 8 alphas a quarter octave apart around its best x
7 rates x 8 seeds. The suite runs depths 4, 8 and 16, with and without normalisation; the report's
depth series fits the exponent of alpha*(depth) and judges it against Fixup's -1/2.
"""

from research import experiment


def get_config(profile: str = "quick", depth: int = 4, norm: str = "none"):
    cfg = experiment.base_config(f"residual_depth_{norm}_{depth}", model="resmlp", dataset="mnist1d")
    cfg.model.update({"activation": "relu", "depth": depth, "width": 64, "norm": norm, "branch": "all"})
    cfg.train.update({"optimizer": "momentum", "steps": 400, "chunk_steps": 50})
    experiment.ridge_profiled(cfg, tuple(2 * 2 ** (k / 2) for k in range(-10, 3)), seeds=8, per_octave=2, window=10)
    cfg.search.objectives = ("train_loss",)
    if profile == "paper":
        cfg.model.width = 256
        experiment.paper_scale(cfg)
        experiment.ridge_profiled(cfg, tuple(2 * 2 ** (k / 2) for k in range(-12, 3)), seeds=8, window=16,
                                  per_octave=8, pilot_steps=300)  # fmt: skip
    return cfg
