"""Fixup's depth rule on a residual MLP: does the best scale of the residual branch fall as 1/depth?

    research sweep --config experiments/residual_depth.py:depth=16,norm=none   # quick: minutes per study

quick: MNIST-1D, a dense stem, `depth` pre-activation ReLU blocks x + W_out relu(W_in relu(x)) of 64
units (`norm=layer`: a LayerNorm before each relu and before the readout), SGD momentum 0.9, 400
steps of 128. The searched alpha is the variance of each branch's last layer, W_out (on fan_in);
W_in keeps He's 2. At He's 2 each block adds as much variance as the stream holds, so without
normalisation the signal grows as (1 + alpha / 2)^depth; Fixup's rule (Zhang et al. 2019) divides
the branch's variance by the depth: alpha = 2 / depth (docs/theory.md section 10). A LayerNorm
removes the growth's effect on every branch but the readout's input, so the rule has less reason to
hold there. Ridge design (docs/theory.md section 7): a pilot over 13 alphas half an octave apart
from 1/16 to 4 (Fixup's 2/16 and 2/4 and He's 2 among them) finds the learning rate's ridge, then 8
alphas a quarter octave apart around its best x 7 rates x 8 seeds. The suite runs depths 4 and 16,
with and without normalisation.
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
