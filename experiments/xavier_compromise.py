"""Xavier's compromise: a funnel of strongly unequal widths (512 -> 23, ratio r = 1/sqrt(2)).

Linear units keep the arithmetic exact. On fan_avg, a layer's forward gain is
2 alpha / (1 + r) and its backward gain 2 r alpha / (1 + r): forward preservation asks for
alpha = (1 + r) / 2 = 0.854 (fan_in), backward for (1 + r) / (2 r) = 1.207 (fan_out), and
Xavier's alpha = 1 sits between. The widths are rounded and the first layer widens 40 -> 512,
so the probes are judged against the mean-field recursion of this very funnel (0.8538 and
1.2066, docs/theory.md). Three studies show where each criterion puts the optimum: the forward
and backward probes at initialisation, and the training loss (6 alphas in [0.25, 4] x 3 learning
rates x 3 seeds, the learning rate profiled out).

    research sweep --config experiments/xavier_compromise.py   # quick: about 2 min
"""

from research import experiment

FUNNEL = (512, 362, 256, 181, 128, 91, 64, 45, 32, 23)


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("xavier_compromise", "linear", "fan_avg", depth=len(FUNNEL))
    cfg.model.widths = FUNNEL
    experiment.lr_profiled(cfg, (0.25, 4.0), (3e-3, 3e-2), alphas=6, lrs=3, seeds=3)
    cfg.search.update({"probe_seeds": 32, "objectives": ("forward_log_ratio", "backward_log_ratio", "train_loss")})
    cfg.search.probe.alpha_range = (0.25, 4.0)
    if profile == "paper":
        experiment.paper_scale(cfg)
        experiment.lr_profiled(cfg, (0.25, 4.0), (1e-3, 0.1), alphas=12, lrs=7, seeds=8)
    return cfg
