"""Named inits head to head: best learning rate per arm, paired differences judged three ways."""

import dataclasses
import json
import math

import numpy as np
import optuna
import pytest

from research import compare, estimate, experiment, judging, report, storage, studies
from research.worker import Worker
from tests import helpers


def _observations(rng, shift_b: float, seeds: int = 6) -> estimate.Observations:
    """Two arms (alpha 1 and 2) x three learning rates; arm b's loss is arm a's times exp(shift_b),
    both with the same per-seed offsets (the pairing) and a little independent noise."""
    alphas, lrs = [1.0, 2.0], [1e-3, 1e-2, 1e-1]
    seed_offset = rng.normal(0, 0.3, seeds)  # large: only the pairing removes it
    rows, la, llr = [], [], []
    for alpha, shift in zip(alphas, (0.0, shift_b), strict=True):
        for lr in lrs:
            lr_cost = 0.5 * (math.log10(lr) + 2) ** 2  # lr 1e-2 is best for both arms
            rows.append(math.log(0.5) + shift + lr_cost + seed_offset + 0.01 * rng.normal(size=seeds))
            la.append(math.log(alpha))
            llr.append(math.log(lr))
    return estimate.Observations(np.array(la), np.array(rows), np.array(llr), np.zeros((6, seeds), bool))


@pytest.mark.parametrize("shift, verdict", [(0.0, "equivalent"), (0.4, "different"), (-0.4, "different")])
def test_paired_difference_sees_through_seed_offsets(shift, verdict):
    obs = _observations(np.random.default_rng(1), shift)
    arms = compare.arms(obs, [("a", 1.0), ("b", 2.0)])
    assert [a.learning_rate for a in arms] == [pytest.approx(1e-2)] * 2  # each arm at its best lr
    assert arms[0].values == pytest.approx(np.exp(obs.values[1]).tolist())
    (d,) = compare.differences(arms, tolerance=0.1, level=0.9)
    assert d.relative == pytest.approx(math.expm1(shift), abs=0.02)
    assert d.interval[0] < d.relative < d.interval[1] and d.interval[1] - d.interval[0] < 0.05
    assert d.verdict == verdict and d.seeds == 6


def test_a_noisy_difference_is_inconclusive():
    rng = np.random.default_rng(2)
    obs = _observations(rng, 0.05, seeds=3)
    noisy = estimate.Observations(obs.log_alpha, obs.values + rng.normal(0, 0.2, obs.values.shape), obs.log_lr)
    (d,) = compare.differences(compare.arms(noisy, [("a", 1.0), ("b", 2.0)]), tolerance=0.1, level=0.9)
    assert d.verdict == "inconclusive"


def test_two_arms_both_at_chance_are_untrainable_not_equivalent():
    chance = math.log(10)
    stuck = [compare.Arm(label, alpha, 1e-2, [chance * (1 - 1e-4 * s) for s in range(6)], 0.0, i)
             for i, (label, alpha) in enumerate((("std 0.01", 0.02), ("xavier", 1.0)))]  # fmt: skip
    (d,) = compare.differences(stuck, tolerance=0.1, level=0.9)
    assert d.verdict == "equivalent"  # without the chance level: the same loss, so "equivalent"
    (d,) = compare.differences(stuck, tolerance=0.1, level=0.9, chance=chance)
    assert d.verdict == "untrainable"
    trained = [stuck[0], dataclasses.replace(stuck[1], values=[0.8] * 6)]
    assert compare.differences(trained, tolerance=0.1, level=0.9, chance=chance)[0].verdict == "different"


def test_arms_must_be_named_alphas_inside_the_range():
    cfg = experiment.load(helpers.TINY, "quick")
    with pytest.raises(Exception, match="search.arms must be"):
        experiment.derive(cfg, {"search.sampler": "grid", "search.arms": ((1.0, "He"),)})
    with pytest.raises(Exception, match="search.arms needs search.sampler 'grid'"):
        experiment.derive(cfg, {"search.arms": (("He", 2.0),)})


@pytest.mark.slow
def test_report_compares_arms_from_a_real_study(tmp_path, data_root):
    cfg = experiment.load(helpers.TINY, "quick", [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}"])
    experiment.compared_arms(cfg.unlock(), (("small", 0.05), ("He", 2.0)), (1e-2, 0.1), lrs=2, seeds=3)
    cfg.lock()
    url = str(tmp_path / "studies.journal")
    assert Worker(cfg, url, echo=lambda _: None).run() == 4
    report.write(url, tmp_path / "report")
    compared = json.loads((tmp_path / "report" / "report.json").read_text())["comparisons"]
    first = compared[0]
    assert first["objective"] == "train_loss" and [a["label"] for a in first["arms"]] == ["small", "He"]
    trials = optuna.load_study(study_name=studies.study_name(cfg), storage=storage.open_storage(url)).get_trials()
    for arm in first["arms"]:  # each arm at the learning rate with its lowest mean, with that trial's seeds
        ran = [t for t in trials if t.params["alpha"] == pytest.approx(arm["alpha"])]
        best = min(ran, key=lambda t: t.value)
        assert len(ran) == 2 and arm["learning_rate"] == pytest.approx(best.params["learning_rate"])
        assert arm["values"] == pytest.approx(best.user_attrs["seed_values"], rel=1e-6)
    (d,) = first["differences"]
    paired = np.log(first["arms"][1]["values"]) - np.log(first["arms"][0]["values"])
    assert d["relative"] == pytest.approx(math.expm1(paired.mean()))
    assert d["interval"][0] <= d["relative"] <= d["interval"][1] and d["seeds"] == 3
    assert "Named inits head to head" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.slow
def test_report_maps_trainability_across_depth(tmp_path, data_root):
    """Three tiny studies of one experiment at depths 2, 3 and 4 become one (alpha, depth) map."""
    url = str(tmp_path / "studies.journal")
    for depth in (2, 3, 4):
        overrides = [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}", f"model.depth={depth}",
                     f"name='tinydepth_{depth}'"]  # fmt: skip
        cfg = experiment.load(helpers.TINY, "quick", overrides)
        experiment.lr_profiled(cfg.unlock(), (0.5, 8.0), (1e-2, 0.1), alphas=6, lrs=2, seeds=3)
        cfg.lock()
        assert Worker(cfg, url, echo=lambda _: None).run() == 12
    records = judging.collect(url)
    (group,) = report.depth_groups(records).values()
    assert [j.cfg.model.depth for j in group] == [2, 3, 4]
    report.write(url, tmp_path / "report")
    figure = tmp_path / "report" / "figures" / "tinydepth-quick-trainability.png"
    assert figure.stat().st_size > 1000
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["studies"]
    with_lr = [r for r in rows if r["objective"] == "train_loss"]
    assert len(with_lr) == 3 and all(r["estimate"]["lr_range"] == pytest.approx([1e-2, 0.1]) for r in with_lr)
