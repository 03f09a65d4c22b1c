"""He et al. 2015, Figure 3, in small: does a 30-layer ReLU MLP train with He's init and stall with Xavier's?

    research sweep --config experiments/he_vs_xavier_30_layers.py    # quick: about 3 min

Two arms on fan_in (every hidden layer is 128 x 128, so Xavier's 2 / (fan_in + fan_out) is alpha 1):
Xavier at 1, He at 2, each on a grid of 5 learning rates in [1e-3, 0.1], 5 shared seeds, 600 steps. Each arm
takes its best learning rate; the paired per-seed difference of the final losses, with its interval,
is judged against a 10% region (compare.py). The report draws both arms' stored curves (mean and
band over seeds).
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("he_vs_xavier_30_layers", "relu", "fan_in", depth=30)
    cfg.train.steps = 600
    experiment.compared_arms(cfg, (("Xavier", 1.0), ("He", 2.0)), (1e-3, 0.1), lrs=5, seeds=5)
    cfg.verdict.objectives = ("train_loss_at_300", "val_loss_early_stopped", "val_error_early_stopped")
    if profile == "paper":
        cfg.model.width = 256
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        experiment.compared_arms(cfg, (("Xavier", 1.0), ("He", 2.0)), (1e-4, 0.1), lrs=7, seeds=8)
    return cfg
