"""How a trained optimum moves with depth (depth_series.py): the exponent of alpha*(L) and the verdict on
each rule's, on analyses whose optima are set by hand."""

import math
import os

import numpy as np
import pytest

from research import depth_series, estimate, experiment, render, verdicts
from tests import helpers

RESIDUAL = os.path.join(helpers.EXPERIMENTS, "residual_depth.py")


def _analysis(depth: int, alpha: float | None, se: float = 0.04, status: str = "ok", path: str = RESIDUAL):
    cfg = experiment.load(f"{path}:depth={depth},norm=none")
    est = estimate.Estimate(status, alpha, se if alpha else None, 20.0, 1.0, 56, 448, None, np.zeros(0), np.zeros(0),
                            np.zeros((0, 0)))  # fmt: skip
    return verdicts.Analysis(cfg, "train_loss", None, est, [], [], 0.1, None)


def test_an_optimum_falling_as_fixup_says_is_equivalent_to_fixup_and_different_from_depth_free():
    # branch "all": Fixup's 2 / sqrt(L), exponent -1/2; the forward rule's 2 at every depth, exponent 0
    analyses = [_analysis(L, 2 / math.sqrt(L) * (1.03 if L == 8 else 1.0)) for L in (4, 8, 16)]
    (d,) = depth_series.series(analyses)
    assert d.series == "residual_depth_none-quick (train_loss)" and d.depths == [4, 8, 16]
    assert d.exponent == pytest.approx(-0.5, abs=0.02)
    lo, hi = d.interval()
    assert hi - lo < 0.3
    assert {rule: (round(s, 6), verdict) for rule, _, s, verdict in d.rules} == {
        "forward": (0.0, "different"), "fixup": (-0.5, "equivalent")}  # fmt: skip
    assert "L=4: 1, L=8: 0.7283, L=16: 0.5" in render.depth_markdown([d])


def test_a_series_with_one_resolved_depth_decides_nothing():
    (d,) = depth_series.series([_analysis(4, 1.0), _analysis(16, None, status="flat")])
    assert d.exponent is None and d.statuses == ["ok", "flat"]
    assert {verdict for _, _, _, verdict in d.rules} == {"inconclusive (fewer than two depths resolved)"}


def test_studies_whose_rules_do_not_move_with_depth_form_no_series():
    path = os.path.join(helpers.EXPERIMENTS, "trainability_depth.py")
    analyses = []
    for depth in (5, 10):
        cfg = experiment.load(f"{path}:depth={depth}")
        est = estimate.Estimate("ok", 2.0, 0.05, 20.0, 1.0, 10, 30, None, np.zeros(0), np.zeros(0), np.zeros((0, 0)))
        analyses.append(verdicts.Analysis(cfg, cfg.search.objective, None, est, [], [], 0.1, None))
    assert depth_series.series(analyses) == []
