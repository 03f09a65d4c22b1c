"""10. The naive fixed-variance baseline (std 0.01): how it fails as depth grows.

Var(W) = alpha * 1e-4 whatever the fan, so alpha = 1 is std 0.01 and He on 128 units is
alpha = 156. Run one depth per study; std 0.01 trains at depth 2 and stalls at depth 10+.

    research sweep --config experiments/fixed_variance.py:depth=10   # quick: about 2 min each
"""

from research import experiment


def get_config(profile: str = "quick", depth: int = 10):
    cfg = experiment.mnist1d_mlp(f"fixed_variance_{depth}", "relu", "fixed", depth=depth)
    cfg.model.init.scale = 1e-4
    cfg.train.update({"steps": 600})
    cfg.search.update({"alpha_range": (0.1, 2000.0), "trials": 16, "trials_per_batch": 8, "seeds": 2})
    if profile == "paper":
        experiment.paper_scale(cfg)
    return cfg
