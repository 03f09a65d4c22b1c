"""The trials x seeds member layout and how a batch of trials becomes a population."""

import numpy as np
import pytest

from research import populations


def test_layout_is_trial_major_seed_minor():
    layout = populations.Layout(trials=3, seeds=2)
    assert layout.size == 6
    assert layout.members(1) == slice(2, 4)
    assert layout.seed_ids().tolist() == [0, 1, 0, 1, 0, 1]
    assert layout.repeat([0.5, 2.0, 8.0]).tolist() == [0.5, 0.5, 2.0, 2.0, 8.0, 8.0]
    values = np.arange(6.0)
    assert layout.per_trial(values).tolist() == [[0, 1], [2, 3], [4, 5]]
    assert layout.per_trial(values)[1].mean() == values[layout.members(1)].mean()
    # Trials at slots 2 and 0 of an earlier population with the same seeds, in that order.
    assert layout.slot_members([2, 0]) == [4, 5, 0, 1]


def test_population_scales_only_the_searched_groups():
    layout = populations.Layout(trials=2, seeds=2)
    pop = populations.population(layout, ("input", "recurrent"), ("recurrent",), [0.5, 4.0], [0.01, 0.1])
    assert pop.alpha["recurrent"].tolist() == [0.5, 0.5, 4.0, 4.0]
    assert pop.alpha["input"].tolist() == [1.0] * 4
    assert pop.learning_rate.tolist() == pytest.approx([0.01, 0.01, 0.1, 0.1])
    assert pop.seed.tolist() == [0, 1, 0, 1]
