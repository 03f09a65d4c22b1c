"""5. A vanilla tanh RNN: sequence length plays depth; where is the recurrent kernel's optimum?

Mean-field: W_h ~ N(0, g^2 / N) is at the edge of chaos at g^2 = 1 (the recurrent alpha).
The input kernel stays at LeCun (alpha 1); only the recurrent group is searched.

    research sweep --config experiments/tanh_rnn.py           # quick: about 4 min

quick: MNIST-1D as 40 steps of 1 feature, 128 hidden units, Adam lr 1e-3, 800 steps.
"""

from research import experiment


def get_config(profile: str = "quick"):
    cfg = experiment.base_config("tanh_rnn", model="rnn", dataset="mnist1d")
    cfg.data.view = "sequence"
    cfg.model.update({"activation": "tanh", "cell": "vanilla", "hidden": 128, "input_dim": 1})
    cfg.train.update({"optimizer": "adam", "learning_rate": 1e-3, "steps": 800, "chunk_steps": 100})
    cfg.search.update(
        {"alpha_range": (0.25, 4.0), "alpha_groups": ("recurrent",), "trials": 16, "trials_per_batch": 8,
         "seeds": 2, "objectives": ("train_loss", "jacobian_log_gain"), "probe_input_scale": 0.1}
    )  # fmt: skip
    if profile == "paper":
        cfg.model.hidden = 256
        experiment.paper_scale(cfg)
    return cfg
