"""8. Depth: the near-optimal band narrows with depth, against the mean-field depth scale xi.

tanh with sigma_b^2 = 0.05 (Schoenholz et al.): edge of chaos at alpha = 1.76, xi = 3.6 at
alpha 1 and 25 at alpha 2 (`research theory`, Schoenholz et al. 2017). Run one depth per study:

    research sweep --config experiments/depth.py:depth=10     # quick: about 2 min each
"""

import math

from research import experiment


def get_config(profile: str = "quick", depth: int = 20):
    cfg = experiment.mnist1d_mlp(f"depth_{depth}", "tanh", "fan_in", depth=depth)
    cfg.model.sigma_b = math.sqrt(0.05)
    cfg.train.update({"steps": 600})
    cfg.search.update({"alpha_range": (0.25, 8.0), "trials": 16, "trials_per_batch": 8, "seeds": 2})
    if profile == "paper":
        experiment.paper_scale(cfg)
    return cfg
