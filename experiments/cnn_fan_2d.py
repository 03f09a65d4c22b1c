"""Which fan does a 2-D convolution have? He's k*k*C_in against C_in alone and k*C_in.

    research sweep --config experiments/cnn_fan_2d.py    # quick: about 4 min

A plain 2-D ReLU CNN (no normalisation) on scikit-learn's 8x8 digits: 6 conv layers of 8
channels, 3x3 kernels, global average pooling. On fan_in = k*k*C_in (He et al. 2015) the forward
rule is alpha 2; had the fan been C_in alone, Var = 2 / C_in would be alpha 2 k^2 = 18; had it
been k*C_in (a 1-D reading of the kernel), alpha 2k = 6. All three are explicit predictions
(`verdict.alternatives`), judged by the forward probe at initialisation (against the network as
run, zero padding included; the bracket design, 12 alphas x 32 seeds around the zero) and by
training: 7 alphas in [1, 32] x 3 learning rates x 3 seeds, 400 steps. At 8 channels the probe's
zero sits well above the infinite-width as-run value (docs/findings.md).
"""

from research import experiment

K = 3


def get_config(profile: str = "quick"):
    cfg = experiment.base_config("cnn_fan_2d", model="cnn", dataset="digits")
    cfg.data.view = "image"
    cfg.model.update({"activation": "relu", "depth": 6, "channels": 8, "kernel_size": K, "input_shape": (8, 8, 1)})
    cfg.train.update({"optimizer": "momentum", "steps": 400, "chunk_steps": 100})
    experiment.lr_profiled(cfg, (1.0, 32.0), (3e-3, 3e-2), alphas=7, lrs=3, seeds=3)
    cfg.search.objectives = ("train_loss", "forward_log_ratio")
    cfg.search.probe.alpha_range = (0.5, 64.0)
    cfg.search.probe_seeds = 32
    cfg.verdict.alternatives = (("fan = C_in", 2.0 * K * K), ("fan = k C_in", 2.0 * K))
    if profile == "paper":
        cfg.model.update({"depth": 12, "channels": 64})
        cfg.train.update({"steps": 3000, "chunk_steps": 300})
        experiment.lr_profiled(cfg, (0.7, 45.0), (1e-3, 0.1), alphas=12, lrs=7, seeds=8)
    return cfg
