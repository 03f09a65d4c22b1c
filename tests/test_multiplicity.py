"""False discovery control across a report's verdicts (research/multiplicity.py) and the rule a
study is judged by (verdicts.rule_note)."""

import numpy as np
import pytest

from research import experiment, multiplicity, verdicts


def test_benjamini_hochberg_step_up_on_a_worked_example():
    # Benjamini & Hochberg's step-up at q = 0.05 over 8 p-values: thresholds k * 0.05 / 8; the
    # largest k with p_(k) below its threshold is 2, so exactly the two smallest are rejected.
    p = np.array([0.041, 0.001, 0.074, 0.039, 0.008, 0.06, 0.205, 0.042])
    assert np.flatnonzero(multiplicity.rejected(p)).tolist() == [1, 4]
    # step-up: a p above its own threshold is still rejected when a later one passes
    assert multiplicity.rejected(np.array([0.03, 0.02, 0.0375])).tolist() == [True, True, True]
    assert multiplicity.rejected(np.array([])).tolist() == []


def test_under_the_null_false_discoveries_stay_below_q():
    # 100 true nulls (uniform p-values), 2000 reports: BH at 0.05 rejects anything in at most 5%
    # of them (its FDR equals the family-wise rate when every hypothesis is null); Binomial(2000,
    # 0.05) stays below 0.062 with probability 0.99.
    rng = np.random.default_rng(0)
    any_rejected = np.mean([multiplicity.rejected(rng.uniform(size=100)).any() for _ in range(2000)])
    assert any_rejected <= 0.062


def test_p_values_of_the_two_one_sided_questions():
    eq, diff = verdicts.p_values(0.0, 0.01, 7.0, rope=0.10)  # alpha* on the prediction, tight
    assert eq < 1e-4 and diff > 0.999
    eq, diff = verdicts.p_values(0.5, 0.01, 7.0, rope=0.10)  # 65% away
    assert eq > 0.999 and diff < 1e-4
    assert verdicts.p_values(0.0, float("inf"), 7.0, 0.1) == (1.0, 1.0)


def _row(*judged):
    return {"verdicts": [{"verdict": v, "p_equivalent": pe, "p_different": pd} for v, pe, pd in judged]}


def test_a_decisive_verdict_whose_test_is_not_kept_becomes_inconclusive():
    rows = [_row(("equivalent", 0.001, 0.99), ("different", 0.9, 0.002)), _row(("equivalent", 0.04, 0.9)),
            _row(("inconclusive", 0.3, 0.4))]  # fmt: skip
    control = multiplicity.control(rows)
    # 8 tests: 0.001 and 0.002 pass (k * 0.05 / 8: 0.00625, 0.0125); 0.04 does not (0.01875)
    assert (control.tests, control.kept, control.downgraded) == (8, 2, 1)
    (weak,) = rows[1]["verdicts"]
    assert weak["verdict"] == "inconclusive" and "equivalent not kept" in weak["fdr"]
    assert [v["verdict"] for v in rows[0]["verdicts"]] == ["equivalent", "different"]
    assert "over the 8 equivalence and difference tests" in control.sentence()


def test_a_study_made_before_a_rule_setting_existed_says_it_is_judged_by_todays_default():
    cfg = experiment.base_config("t")
    stored = cfg.to_dict()
    assert verdicts.rule_note(stored) is None
    del stored["verdict"]["estimator"]
    assert "verdict.estimator" in verdicts.rule_note(stored) and "today's defaults" in verdicts.rule_note(stored)


@pytest.mark.parametrize("bad", [(0.5, 0.1, 12), (0.05, 2.0), (0.05, 2.0, 1)])
def test_bad_bandwidth_candidates_are_refused_in_one_sentence(bad):
    cfg = experiment.base_config("t")
    with pytest.raises(Exception, match="verdict.estimator.bandwidths must be"):
        experiment.derive(cfg, {"verdict.estimator.bandwidths": bad})


def _run(offset, depth, *judged):
    return {"objective": "train_loss", "config": {"search": {"seed_offset": offset, "sampler_seed": 0},
                                                  "train": {"data_seed": offset // 100}, "model": {"depth": depth}},
            "verdicts": [{"verdict": v, "regret_verdict": r} for v, r in judged]}  # fmt: skip


def test_a_verdict_another_replication_does_not_give_is_inconclusive():
    from research import replication, studies

    a = _run(0, 20, ("equivalent", "near-optimal"), ("different", "costly"))
    b = _run(100, 20, ("equivalent", "near-optimal"), ("inconclusive", "costly"))
    b["config"]["search"]["on_config_change"] = "new"  # how it was started: outside the identity
    other = _run(0, 30, ("different", "costly"), ("different", "costly"))  # another depth: not a replication
    assert replication.check([a, b, other], studies.stored_hash) == 1
    assert [v["verdict"] for v in a["verdicts"]] == ["equivalent", "inconclusive"]
    assert (
        a["verdicts"][1]["replication"]
        == "verdict not replicated (seed offset 0: different; seed offset 100: inconclusive)"
    )
    assert "replication" not in a["verdicts"][0] and a["verdicts"][1]["regret_verdict"] == "costly"
    assert [v["verdict"] for v in other["verdicts"]] == ["different", "different"]
