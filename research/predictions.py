"""Every theory's optimal alpha for an experiment, in the units its search uses: the one conversion.

Theory speaks of s in Var(W) = s / fan. The search's alpha multiplies the experiment's
init.scale c, so alpha = s / c; the fixed-variance family (mode "fixed") has no fan, so
s / fan_in becomes alpha = s / (c * fan_in) with the searched layers' fan_in. Search, report
and advise all call this module; a second derivation elsewhere once recommended a fixed
variance eight times too large.
"""

from __future__ import annotations

from research import init, models, theory


def theory_mode(model_cfg) -> str:
    """The fan mode theory is asked about: the experiment's own, or fan_in for a fixed variance."""
    mode = model_cfg.init.get("mode", "fan_in")
    return mode if mode in theory.MODES else "fan_in"


def per_unit_s(model_cfg) -> float:
    """How much s one unit of the search's alpha is (s = alpha * per_unit_s)."""
    spec = init.from_config(model_cfg.init)
    return spec.scale * (models.family(model_cfg).hidden_fan_in(model_cfg) if spec.mode == "fixed" else 1)


def for_model(model_cfg) -> dict[str, float | None]:
    """Every named theory's alpha for this model, in the search's units (None: no prediction)."""
    unit = per_unit_s(model_cfg)
    preds = theory.predict(model_cfg.activation, theory_mode(model_cfg), float(model_cfg.sigma_b))
    return {p.theory: None if p.alpha is None else p.alpha / unit for p in preds}
