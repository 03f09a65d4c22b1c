"""The advisor: for a model config, the init each layer should get, from theory and evidence.

The common rule of thumb (He for ReLU, Xavier otherwise) made precise: each
searched layer's alpha comes from the theory that matches the criterion (forward variance on
fan_in, the edge of chaos where a stable one exists), and from a study's alpha* where the
storage holds one for the same experiment.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from research import init, models, predictions, theory, verdicts


def layers(model_cfg) -> list[tuple[str, tuple[int, ...]]]:
    """(path, shape) of every kernel of the model, in order."""
    state = nnx.eval_shape(lambda: models.build(model_cfg, 1.0, rngs=nnx.Rngs(0)))
    params = nnx.state(state, nnx.Param)
    out = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
        names = [n for n in names if n != "value"]
        if names[-1] == "kernel":
            out.append(("/".join(names[:-1]), tuple(leaf.shape)))
    return out


def advise(cfg, record=None) -> dict:
    """Per-layer recommendations; `record` (a `studies.Record` of this experiment) adds evidence.

    Searched layers are given in the experiment's own units (its init spec at alpha, from
    predictions.for_model), so a fixed-variance experiment gets a fixed std, not a fan rule.
    """
    model = cfg.model
    mode = model.init.get("mode", "preset")
    raw = {p.theory: p for p in theory.predict(model.activation, float(model.sigma_b))}
    searched = predictions.for_model(model)
    evidence = None
    if record is not None:
        est = verdicts.analyse(record).estimate
        if est.status == "ok":
            evidence = est
    rows = [_layer(path, shape, model, raw, searched, evidence) for path, shape in layers(model)]
    forward = raw["forward"].alpha
    return {
        "activation": model.activation,
        "mode": mode,
        "theory": {k: p.alpha for k, p in raw.items()},
        "closest_preset": _closest(forward, model.activation),
        "edge_of_chaos_note": raw["edge_of_chaos"].note,
        "depth_scale_at_forward": theory.depth_scale(model.activation, forward, float(model.sigma_b)),
        "layers": rows,
        "evidence": None if evidence is None else {"alpha": evidence.alpha, "interval": evidence.interval()},
    }


def _layer(path: str, shape: tuple[int, ...], model, raw: dict, searched: dict, evidence) -> dict:
    """One kernel's recommendation: readout fixed, recurrence at the edge of chaos, the rest searched."""
    fan_in, fan_out = init.fans(shape)
    if path.startswith(models.READOUT):
        alpha, source, spec = 1.0, "LeCun (readout kept fixed)", init.lecun()
    elif models.family(model).recurrent_kernel(path):
        eoc = raw["edge_of_chaos"].alpha
        alpha = eoc if eoc is not None else raw["forward"].alpha
        source, spec = "edge of chaos (recurrent: time plays depth)", init.InitSpec(1.0, "fan_in")
    elif evidence is not None:
        alpha, source = evidence.alpha, f"study alpha* {evidence.alpha:.3g} {_ci(evidence)}"
        spec = init.from_config(model.init)
    else:
        alpha, source, spec = searched["forward"], "forward variance 1/E[phi^2]", init.from_config(model.init)
    std = math.sqrt(init.variance(spec, shape, alpha))
    return {"layer": path, "shape": shape, "fan_in": fan_in, "fan_out": fan_out, "alpha": alpha,
            "mode": spec.mode, "std": std, "source": source}  # fmt: skip


def _ci(est) -> str:
    lo, hi = est.interval()
    return f"[{lo:.3g}, {hi:.3g}]"


def _closest(alpha: float, activation: str) -> str:
    presets = {"lecun (1)": 1.0, "he (2)": 2.0, "xavier (1 on fan_avg)": 1.0}
    name = min(presets, key=lambda k: abs(math.log(presets[k] / alpha)))
    return f"{name}; theory asks {alpha:.3g} for {activation}"
