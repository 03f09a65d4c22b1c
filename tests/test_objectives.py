"""The objectives registry: every name validates, unknown names list the accepted ones."""

import numpy as np
import pytest

from research import experiment, objectives, probes
from research.errors import ConfigError
from tests import helpers

# Two seeds, three chunks of 100 steps: the validation loss is least at the second chunk for seed 0
# and at the third for seed 1; seed 1's training loss never reaches the threshold 1.5.
_CURVES = {"train_loss": [[3.0, 1.2, 1.0], [3.0, 2.0, 1.8]], "val_loss": [[3.0, 1.0, 2.0], [3.0, 2.0, 1.5]],
           "val_error": [[0.9, 0.2, 0.4], [0.9, 0.5, 0.3]]}  # fmt: skip
_READ = {"train_loss": [1.0, 1.8], "val_loss": [2.0, 1.5], "val_error": [0.4, 0.3],
         "val_loss_early_stopped": [1.0, 1.5], "val_error_early_stopped": [0.2, 0.3],
         "steps_to_threshold": [200.0, 600.0]}  # fmt: skip


@pytest.mark.parametrize("name", objectives.NAMES)
def test_every_registered_objective_is_searchable_and_reads_its_values(name):
    cfg = experiment.load(helpers.TINY, "quick", [f"search.objective='{name}'"])
    objective = objectives.get(cfg.search.objective)
    if objective.trained:  # each seed's value off its stored curve (never reached: twice the steps)
        assert objective.seed_values(_CURVES, 100, 1.5).tolist() == _READ[name]
    else:  # a probe: the signed log-ratio of its own statistic, zero where the signal is preserved
        flat = np.ones((1, 4))
        stats = probes.Stats(flat, flat, flat)
        assert objective.log_ratios(stats)[objective.statistic].tolist() == [0.0]


def test_a_metric_at_a_budget_reads_the_chunk_that_ends_there():
    assert objectives.get("train_loss_at_200").seed_values(_CURVES, 100, 1.5).tolist() == [1.2, 2.0]


def test_unknown_objective_lists_the_registry():
    with pytest.raises(ConfigError, match="search.objective must be one of .*train_loss"):
        objectives.get("accuracy")


def test_one_layer_probe_is_the_log_ratio_of_the_first_two_layers():
    forward = np.array([[1.0, 2.0, 8.0], [2.0, 2.0, 2.0]])
    stats = probes.Stats(forward, forward, forward)
    ratios = objectives.get("forward_one_layer").log_ratios(stats)
    assert ratios["forward"] == pytest.approx([np.log(2.0), 0.0])
    # Across depth: the least-squares slope of log E[h^2] per layer.
    assert objectives.get("forward_log_ratio").log_ratios(stats)["forward"] == pytest.approx([np.log(8) / 2, 0.0])


CURVES = {  # two seeds, four chunks of 100 steps; seed 1 diverged after chunk 2 (chance level after)
    "train_loss": [[2.0, 1.2, 0.8, 0.5], [2.0, 1.5, 2.3, 2.3]],
    "val_loss": [[2.1, 1.4, 1.1, 1.3], [2.1, 1.6, 2.3, 2.3]],
    "val_error": [[0.8, 0.5, 0.4, 0.35], [0.8, 0.6, 0.9, 0.9]],
}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("train_loss", [0.5, 2.3]),
        ("train_loss_at_200", [1.2, 1.5]),
        ("val_loss_at_400", [1.3, 2.3]),
        ("val_loss_early_stopped", [1.1, 1.6]),
        ("val_error_early_stopped", [0.4, 0.6]),  # the error where the validation loss was least
        ("steps_to_threshold", [300.0, 800.0]),  # threshold 1.0: chunk 3 for seed 0; never: twice 400 steps
    ],
)
def test_trained_objectives_read_the_stored_curves(name, expected):
    values = objectives.get(name).seed_values(CURVES, chunk_steps=100, threshold=1.0)
    assert values == pytest.approx(expected)


def test_a_budget_must_be_a_chunk_boundary_the_run_reaches():
    with pytest.raises(ConfigError, match="verdict.objectives 'train_loss_at_250' needs a budget .* multiple"):
        experiment.load(helpers.TINY, "quick", ["verdict.objectives=('train_loss_at_250',)"])
    with pytest.raises(ConfigError, match="search.objective must be one of .*train_loss_at_<steps>"):
        objectives.get("train_loss_at_0")
    with pytest.raises(ConfigError, match="verdict.objectives: 'forward_log_ratio' is not trained"):
        experiment.load(helpers.TINY, "quick", ["verdict.objectives=('forward_log_ratio',)"])
