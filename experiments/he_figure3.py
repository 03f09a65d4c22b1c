"""9. He et al. 2015, Figure 3, in small: a 30-layer ReLU MLP trains with He init (alpha 2)
and stalls at the chance plateau (ln 10 = 2.303) with Xavier init (alpha 1).

A two-point grid, three seeds each; the report's curves figure shows both runs.

    research sweep --config experiments/he_figure3.py         # quick: about 2 min
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("he_figure3", "relu", "fan_in", depth=30)
    cfg.search.update(
        {"sampler": "grid", "alpha_range": (1.0, 2.0), "grid_points": 2, "trials": 2, "trials_per_batch": 2}
    )
    if profile == "paper":
        cfg.model.width = 256
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        cfg.search.seeds = 5
    return cfg
