"""Every theory's optimal alpha for an experiment, in the units its search uses: the one conversion.

Theory speaks of s in Var(W) = s / fan. The search's alpha multiplies the experiment's
init.scale c, so alpha = s / c; the fixed-variance family (mode "fixed") has no fan, so
s / fan_in becomes alpha = s / (c * fan_in) with the searched layers' fan_in. Search, report
and advise all call this module; a second derivation elsewhere once recommended a fixed
variance eight times too large.
"""

from __future__ import annotations

from research import activations, asrun, init, models, objectives, theory, theory_cache


def per_unit_s(model_cfg) -> float:
    """How much s one unit of the search's alpha is (s = alpha * per_unit_s)."""
    spec = init.from_config(model_cfg.init)
    return spec.scale * (models.family(model_cfg).hidden_fan_in(model_cfg) if spec.mode == "fixed" else 1)


def _activation_rules(model_cfg) -> dict[str, float | None]:
    """A plain stack's rules, from its activation (theory.py): s in Var(W) = s / fan."""
    preds, _ = theory_cache.predictions(model_cfg.activation, float(model_cfg.sigma_b))
    return {p.theory: p.alpha for p in preds}


def _residual_rules(model_cfg) -> dict[str, float | None]:
    """The residual MLP's branch (docs/theory.md section 10): at the activation's forward-variance s
    (He's 2 for ReLU) the branch adds as much as the stream holds; Fixup's rule (Zhang et al. 2019;
    its L^(-1/(2m-2)) on the m - 1 = 1 scaled layer of a two-layer branch) divides the branch's
    variance by the depth L: s / L on its last layer, s / sqrt(L) on each of both."""
    forward = _activation_rules(model_cfg)["forward"]
    power = 1.0 if model_cfg.branch == "last" else 0.5
    return {"forward": forward, "fixup": forward * model_cfg.depth**-power}


def _transformer_rules(model_cfg) -> dict[str, float | None]:
    """The pre-LN Transformer's output projections (docs/theory.md section 11): Xavier's s = 1 on
    fan_avg, and DeepNet's beta = (8N)^(-1/4) on the std for N blocks (Wang et al. 2022), s = beta^2."""
    return {"xavier": 1.0, "deepnet": (8.0 * model_cfg.depth) ** -0.5}


RULES = {"resmlp": _residual_rules, "transformer": _transformer_rules}  # families with rules of their own


def for_model(model_cfg) -> dict[str, float | None]:
    """Every named theory's alpha for this model, in the search's units (None: no prediction)."""
    unit = per_unit_s(model_cfg)
    ideal = RULES.get(model_cfg.name, _activation_rules)(model_cfg)
    return {name: None if s is None else s / unit for name, s in ideal.items()}


def default_alpha(model_cfg) -> float:
    """The classic rule's alpha for this model, in its own units: He's for rectifiers, else
    Glorot's 1/phi'(0)^2, else forward variance 1/E[phi^2] (every activation has that one)."""
    preds = for_model(model_cfg)
    return next(preds[name] for name in ("he", "xavier", "forward") if preds.get(name) is not None)


def compared(cfg, input_moment=None, limit: bool = False) -> tuple[list[tuple[str, float]], list[str]]:
    """What a study of experiment `cfg` is judged against: each distinct prediction once, named
    by every theory that gives it (a probe's as-run prediction first, at the study's widths, or
    with `limit` at infinite width), and the theories that do not apply to this activation."""
    ideal = for_model(cfg.model)
    distinct = theory.distinct(ideal)
    distinct += [(label, float(alpha)) for label, alpha in cfg.verdict.alternatives]
    skipped = [name for name, alpha in ideal.items() if alpha is None]
    if objectives.get(cfg.search.objective).trained:
        return distinct, skipped
    run = asrun.predict(cfg, input_moment, at_width=not limit)
    if run.alpha is None:
        return distinct, [*skipped, f"as run ({run.note})"]
    return [("as run", run.alpha)] + distinct, skipped


SCALE_FREE_STEPS = ("adam", "adamw")  # an update's size does not follow the gradient's


def lr_slopes(cfg) -> dict[str, float] | None:
    """d log lr* / d log alpha that homogeneity predicts for a bias-free MLP of positively
    homogeneous units, under the two readings of "the same step" (None for other networks).
    Scaling the L searched layers' weights by c = sqrt(alpha / alpha_0) scales the logits by c^L,
    each layer's gradient by c^(L-1) and the tangent kernel by c^(2(L-1)). With SGD or momentum:
    a step that changes the logits by the same fraction of their size needs lr ~ alpha^(-(L-2)/2)
    ("relative step"); one at the same fraction of the stability edge, set by the tangent kernel
    at a fixed loss curvature, needs lr ~ alpha^(-(L-1)) ("stability edge"). Adam's steps have a
    fixed size: lr ~ alpha^(1/2) for the relative step, alpha^(-(L-1)/2) for the logits' absolute
    change. docs/theory.md derives both and says when each should hold."""
    model = cfg.model
    if model.name != "mlp" or not activations.get(model.activation).homogeneous or model.sigma_b:
        return None
    depth = len(models.hidden_widths(model))
    if cfg.train.optimizer in SCALE_FREE_STEPS:
        return {"relative step": 0.5, "stability edge": -(depth - 1) / 2}
    return {"relative step": -(depth - 2) / 2, "stability edge": -(depth - 1)}
