"""DeepNet's beta on a small pre-LN Transformer: do output projections at (8N)^(-1/2) train better than Xavier?

    research sweep --config experiments/transformer_deepnet.py:depth=2    # quick: about 1.5 min (depth 8: 4.5)

quick: a sequence task generated offline (12 tokens from 16, the label is the most frequent token),
a pre-LN Transformer of `depth` blocks (16 features, 2 heads, GELU MLP 2x wide), Adam, 300 steps
of 128. The searched alpha is the variance of every block's attention output projection and MLP
output layer on fan_avg (alpha 1: Xavier); the rest keep Xavier. DeepNet (Wang et al. 2022) scales
these layers' std by beta = (8N)^(-1/4) for N blocks: alpha = (8N)^(-1/2), 0.25 at N = 2 and 0.125
at N = 8 (docs/theory.md section 11). DeepNet derives beta for Post-LN with up-weighted residuals;
a pre-LN block is bounded without it, so the question is whether the same down-scaling still helps.
A ridge search of alpha (pilot 1/512 to 2) found the training loss nearly flat below alpha 0.5 and
its optimum unresolved, so the claim is tested head to head: Xavier, DeepNet's alpha and a branch
16 times smaller still, each at its best of 5 Adam learning rates 2x apart around 0.04 / depth (0.005
to 0.08 at depth 2), 8 shared seeds, paired differences judged against `verdict.regret_tolerance`
(docs/theory.md section 9).
The suite runs depths 2 and 8.
"""

from research import experiment
from research.errors import integer


def get_config(profile: str = "quick", depth: int = 2):
    integer(depth, "transformer_deepnet.py's depth")  # before the rules divide by it
    cfg = experiment.base_config(f"transformer_deepnet_{depth}", model="transformer", dataset="sequences")
    cfg.model.update({"depth": depth, "features": 16, "heads": 2, "mlp_ratio": 2, "vocab": 16, "length": 12,
                      "num_outputs": 16})  # fmt: skip
    cfg.data.params.update({"vocab": 16, "length": 12})
    cfg.data.normalization = "none"  # token ids stay integers
    cfg.train.update({"optimizer": "adam", "steps": 300, "chunk_steps": 50})
    deepnet = (8 * depth) ** -0.5
    arms = (("Xavier", 1.0), ("DeepNet", deepnet), ("DeepNet / 16", deepnet / 16))
    lr = 0.04 / depth  # the best Adam rate falls with depth (0.04 at 2 blocks, 0.005 to 0.01 at 8 in a first run)
    experiment.compared_arms(cfg, arms, (lr / 4, lr * 4), lrs=5, seeds=8)
    cfg.search.objectives = ("train_loss",)
    if profile == "paper":
        cfg.model.update({"features": 64, "heads": 4, "mlp_ratio": 4})
        experiment.paper_scale(cfg)
        experiment.compared_arms(cfg, arms, (lr / 16, lr * 4), lrs=7, seeds=8)
    return cfg
