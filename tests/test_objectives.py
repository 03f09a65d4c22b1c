"""The objectives registry: every name validates, unknown names list the accepted ones."""

import numpy as np
import pytest

from research import experiment, objectives, probes
from research.errors import ConfigError
from tests import helpers


@pytest.mark.parametrize("name", objectives.NAMES)
def test_every_registered_objective_is_a_valid_search_objective(name):
    cfg = experiment.load(helpers.TINY, "quick", [f"search.objective='{name}'"])
    objective = objectives.get(cfg.search.objective)
    assert objective.trained != objective.signed  # either trained (a minimum) or a probe (a zero)


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
