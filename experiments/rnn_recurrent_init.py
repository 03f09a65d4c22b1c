"""Recurrent init: scaled Gaussian, orthogonal or identity recurrent kernels, in a vanilla tanh RNN or an LSTM.

    research sweep --config experiments/rnn_recurrent_init.py:distribution=orthogonal
    research sweep --config experiments/rnn_recurrent_init.py:cell=lstm,distribution=orthogonal

Sequence length plays depth. For the vanilla cell, mean field puts the recurrent kernel's edge of
chaos at gain 1 (alpha 1 on fan_in, whatever the distribution's shape: Gaussian, orthogonal
(Saxe et al. 2014) or the identity (Le et al. 2015), which at alpha 1 is exactly I). The Jacobian
probe (the bracket design: 16 alphas x 8 seeds, then 12 x 32 around the zero) is judged against
the network as run, its recursion per sequence; training (Adam, 400 steps) on a grid of 5 recurrent
alphas in [0.25, 4] x 2 learning rates x 3 seeds, the input kernel at LeCun; 128 units (the LSTM
64, the same compute: about 2 min each). The LSTM's gates have no such theory: its trained
optimum is reported against the vanilla predictions, as measured.
"""

from research import experiment


def get_config(profile: str = "quick", cell: str = "vanilla", distribution: str = "normal"):
    cfg = experiment.base_config(f"rnn_{cell}_{distribution}", model="rnn", dataset="mnist1d")
    cfg.data.view = "sequence"
    # An LSTM's four gates cost four vanilla kernels: at 64 units it costs the vanilla cell's 128.
    cfg.model.update({"activation": "tanh", "cell": cell, "hidden": 128 if cell == "vanilla" else 64, "input_dim": 1})
    cfg.model.recurrent_init.distribution = distribution
    cfg.train.update({"optimizer": "adam", "steps": 400, "chunk_steps": 100})
    experiment.lr_profiled(cfg, (0.25, 4.0), (1e-3, 1e-2), alphas=5, lrs=2, seeds=3)
    cfg.search.update({"alpha_groups": ("recurrent",), "probe_input_scale": 0.1})
    cfg.search.objectives = ("train_loss", "jacobian_log_gain") if cell == "vanilla" else ("train_loss",)
    cfg.search.probe.alpha_range = (0.25, 4.0)
    cfg.search.probe_seeds = 32
    if profile == "paper":
        cfg.model.hidden = 256 if cell == "vanilla" else 128
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        experiment.lr_profiled(cfg, (0.25, 4.0), (1e-4, 3e-2), alphas=12, lrs=7, seeds=8)
    return cfg
