"""How a trained optimum moves with depth (depth_series.py): the exponent of alpha*(L) and the verdict on
each rule's, on analyses whose optima are set by hand."""

import math
import os

import numpy as np
import pytest

from research import depth_series, estimate, experiment, figures, render, verdicts
from tests import helpers

RESIDUAL = os.path.join(helpers.EXPERIMENTS, "residual_depth.py")


def _analysis(depth: int, alpha: float | None, se: float = 0.04, status: str = "ok", path: str = RESIDUAL,
              seed_offset: int = 0):  # fmt: skip
    cfg = experiment.load(f"{path}:depth={depth},norm=none")
    cfg.search.seed_offset = seed_offset
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
    assert d.intervals[0] == pytest.approx(tuple(math.exp(s * 0.04 * 2.086) for s in (-1, 1)), rel=1e-3)  # t, 20 df
    assert math.exp(d.intercept) * 16**d.exponent == pytest.approx(0.5, rel=0.02)


def test_the_depth_series_figure_draws_its_rules_points_and_fit(tmp_path):
    (d,) = depth_series.series([_analysis(L, 2 / math.sqrt(L)) for L in (4, 8, 16)])
    path = figures.depth_series_figure(d, tmp_path)
    assert path.name == "residual_depth_none-quick-train_loss-depth-series.png" and path.stat().st_size > 10_000


def test_a_replication_on_other_seeds_keeps_the_verdicts_it_gives_again_and_drops_the_others():
    fixup = [_analysis(L, 2 / math.sqrt(L), seed_offset=0) for L in (4, 8, 16)]
    again = [_analysis(L, 2 / math.sqrt(L) * (1.02 if L == 4 else 1.0), seed_offset=100) for L in (4, 8, 16)]
    a, b = depth_series.series(fixup + again)  # sorted by label: the replication carries its hash
    assert a.series == "residual_depth_none-quick (train_loss)" and b.seed_offset == 100
    assert b.series.startswith("residual_depth_none-quick-c") and b.series.endswith(" (train_loss)")
    assert [v for _, _, _, v in a.rules] == [v for _, _, _, v in b.rules] == ["different", "equivalent"]
    flat = [_analysis(L, 1.0, seed_offset=100) for L in (4, 8, 16)]  # depth-free: the forward rule's
    a, b = depth_series.series(fixup + flat)
    assert b.exponent == pytest.approx(0.0, abs=1e-9)
    not_replicated = {
        "forward": "inconclusive (not replicated: seed offset 0: different; seed offset 100: equivalent)",
        "fixup": "inconclusive (not replicated: seed offset 0: equivalent; seed offset 100: different)"}  # fmt: skip
    assert {rule: v for rule, _, _, v in a.rules} == {rule: v for rule, _, _, v in b.rules} == not_replicated


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
