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

from research import init, models, own_model, predictions, theory_cache


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


def advise(cfg, judged: list | None = None) -> dict:
    """Per-layer recommendations; `judged` (the `verdicts.Analysis` of a study of this experiment,
    one per objective, its own first: `verdicts.analyse_all`) adds evidence.

    Searched layers are given in the experiment's own units (its init spec at alpha, from
    predictions.for_model), so a fixed-variance experiment gets a fixed std, not a fan rule.
    """
    model = cfg.model
    mode = model.init.get("mode", "preset")
    preds, xi = theory_cache.predictions(model.activation, float(model.sigma_b))
    raw = {p.theory: p for p in preds}
    searched = predictions.for_model(model)
    judged = judged or []
    by_objective = [_evidence(a) for a in judged]
    # The layers take the study's own objective (the one it searched); the others are shown beside it.
    primary = judged[0].estimate if judged and judged[0].estimate.status == "ok" else None
    objective = judged[0].objective if primary is not None else None
    plan = models.family(model).plan  # a module built by a plan: only its searched kernels are advised
    fans = own_model.searched_kernels(plan, model) if plan else None
    rows = [_layer(path, shape, model, raw, searched, primary, objective, fans[f"{path}/kernel"] if fans else "dense")
            for path, shape in layers(model) if fans is None or f"{path}/kernel" in fans]  # fmt: skip
    forward = raw["forward"].alpha
    return {
        "activation": model.activation,
        "mode": mode,
        "theory": {k: p.alpha for k, p in raw.items()},
        "closest_preset": _closest(forward, raw, model.activation, mode),
        "edge_of_chaos_note": raw["edge_of_chaos"].note,
        "depth_scale_at_forward": xi,
        "layers": rows,
        "evidence": None if primary is None else {"objective": objective, **by_objective[0]},
        "evidence_by_objective": by_objective,
    }


def _evidence(analysis) -> dict:
    """What one judged objective says: its alpha* and interval, or why there is none."""
    est = analysis.estimate
    ok = est.status == "ok"
    return {"objective": analysis.objective, "status": est.status,
            "alpha": est.alpha if ok else None, "interval": est.interval() if ok else None}  # fmt: skip


def _layer(path: str, shape: tuple[int, ...], model, raw: dict, searched: dict, evidence, objective,
           fan: str = "dense") -> dict:  # fmt: skip
    """One kernel's recommendation: readout fixed, recurrence at the edge of chaos, the rest searched;
    `fan` is its layer kind (init.FANS)."""
    fan_in, fan_out = init.FANS[fan](shape)
    if path.startswith(models.READOUT):
        alpha, source, spec = 1.0, "LeCun (readout kept fixed)", init.lecun()
    elif models.family(model).recurrent_kernel(path):
        eoc = raw["edge_of_chaos"].alpha
        alpha = eoc if eoc is not None else raw["forward"].alpha
        source, spec = "edge of chaos (recurrent: time plays depth)", init.InitSpec(1.0, "fan_in")
    elif evidence is not None:
        alpha, source = evidence.alpha, f"study alpha* {evidence.alpha:.3g} {_ci(evidence)} for {objective}"
        spec = init.from_config(model.init)
    else:  # the forward rule, or (a family with rules of its own) its first
        name = "forward" if "forward" in searched else next(iter(searched))
        source = "forward variance 1/E[phi^2]" if name == "forward" else f"the {name} rule"
        alpha, spec = searched[name], init.from_config(model.init)
    std = math.sqrt(init.variance(spec, shape, alpha, fan))
    return {"layer": path, "shape": shape, "fan_in": fan_in, "fan_out": fan_out, "alpha": alpha,
            "mode": spec.mode, "std": std, "source": source}  # fmt: skip


def _ci(est) -> str:
    lo, hi = est.interval()
    return f"[{lo:.3g}, {hi:.3g}]"


# The presets by fan mode they are defined on; each applies where theory.predict derives it.
_PRESETS = {"fan_in": ("he", "lecun"), "fan_out": ("he",), "fan_avg": ("xavier",)}


def _closest(alpha: float, raw: dict, activation: str, mode: str) -> str:
    """The preset nearest to theory's `alpha` among those defined on `mode` and derived for this
    activation (He's for rectifiers, LeCun's for unit-slope units, Xavier's where a linear regime
    exists; none for a fixed variance)."""
    presets = {name: raw[name].alpha for name in _PRESETS.get(mode, ()) if raw[name].alpha is not None}
    if not presets:
        return f"none derived for {activation} on {mode}; theory asks {alpha:.3g}"
    name = min(presets, key=lambda k: abs(math.log(presets[k] / alpha)))
    return f"{name} ({presets[name]:.3g} on {mode}); theory asks {alpha:.3g} for {activation}"
