"""Every theory's optimal alpha for an experiment, in the units its search uses: the one conversion.

Theory speaks of s in Var(W) = s / fan. The search's alpha multiplies the experiment's
init.scale c, so alpha = s / c; the fixed-variance family (mode "fixed") has no fan, so
s / fan_in becomes alpha = s / (c * fan_in) with the searched layers' fan_in. Search, report
and advise all call this module; a second derivation elsewhere once recommended a fixed
variance eight times too large.
"""

from __future__ import annotations

from research import asrun, init, models, objectives, theory


def per_unit_s(model_cfg) -> float:
    """How much s one unit of the search's alpha is (s = alpha * per_unit_s)."""
    spec = init.from_config(model_cfg.init)
    return spec.scale * (models.family(model_cfg).hidden_fan_in(model_cfg) if spec.mode == "fixed" else 1)


def for_model(model_cfg) -> dict[str, float | None]:
    """Every named theory's alpha for this model, in the search's units (None: no prediction)."""
    unit = per_unit_s(model_cfg)
    preds = theory.predict(model_cfg.activation, float(model_cfg.sigma_b))
    return {p.theory: None if p.alpha is None else p.alpha / unit for p in preds}


def compared(cfg, input_moment=None) -> tuple[list[tuple[str, float]], list[str]]:
    """What a study of experiment `cfg` is judged against: each distinct prediction once, named
    by every theory that gives it (a probe's as-run prediction first), and the theories that
    do not apply to this activation."""
    ideal = for_model(cfg.model)
    distinct = theory.distinct(ideal)
    skipped = [name for name, alpha in ideal.items() if alpha is None]
    if objectives.get(cfg.search.objective).trained:
        return distinct, skipped
    run = asrun.predict(cfg, input_moment)
    return ([("as run", run.alpha)] if run.alpha is not None else []) + distinct, skipped
