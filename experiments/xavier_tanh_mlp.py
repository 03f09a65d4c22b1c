"""2. Glorot & Bengio 2010 on a deep tanh MLP: is alpha* = 1 on fan_avg?

    research sweep --config experiments/xavier_tanh_mlp.py    # quick: about 2 min on 2 cores

quick: MNIST-1D, 20 layers x 128, SGD momentum 0.9, lr 0.01, 1000 steps of 128, on a
scrambled Sobol design. The probe objective is the Jacobian gain per layer with faint inputs
(q1 about 0.005, near the fixed point q* = 0), where mean-field theory puts the edge of chaos at
alpha = 1 (Poole et al. 2016); the network as run, with those inputs, is critical at 1.0095
(docs/theory.md). The trained optimum sits on the chaotic side, between the edge and the
forward rule; the README has the measured table. The same probe over several input scales,
extrapolated to a vanishing input (where theory puts the edge at 1; docs/theory.md):

    research sweep --config experiments/xavier_tanh_mlp.py --set "search.objectives=('jacobian_log_gain',)" \
        --set "search.series.field='probe_input_scale'" --set "search.series.levels=(0.05, 0.1, 0.2, 0.3)" \
        --set "search.series.alpha_range=(0.8, 1.4)"
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.mnist1d_mlp("xavier_tanh_mlp", "tanh", "fan_avg")
    cfg.search.update(
        {"alpha_range": (0.25, 8.0), "sampler": "qmc", "objectives": ("train_loss", "jacobian_log_gain"),
         "probe_input_scale": 0.1, "probe_seeds": 32}
    )  # fmt: skip
    if profile == "paper":
        cfg.model.update({"depth": 50, "width": 256})
        cfg.train.learning_rate = 0.005
        experiment.paper_scale(cfg)
    return cfg
