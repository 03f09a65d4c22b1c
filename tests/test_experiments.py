"""Every experiment file loads, validates and locks in both profiles."""

import pathlib

import pytest

from research import experiment, objectives, predictions
from tests import helpers

FILES = sorted(p.name for p in pathlib.Path(helpers.EXPERIMENTS).glob("*.py"))
SLOW_TO_LOAD = "lsuv_trained.py"  # calibrates its scales on data while it loads (15-18 s)


@pytest.mark.parametrize("profile", experiment.PROFILES)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == SLOW_TO_LOAD else n for n in FILES])
def test_every_experiment_loads_in_every_profile(name, profile):
    cfg = experiment.load(f"{helpers.EXPERIMENTS}/{name}", profile)
    assert cfg.profile == profile and cfg.is_locked
    for objective in (cfg.search.objective, *cfg.search.objectives):
        objectives.get(objective)
    assert predictions.default_alpha(cfg.model) > 0  # every family has a default rule


def test_the_paper_profile_is_bigger_than_the_quick_one():
    quick = experiment.load(f"{helpers.EXPERIMENTS}/he_relu_mlp.py", "quick")
    paper = experiment.load(f"{helpers.EXPERIMENTS}/he_relu_mlp.py", "paper")
    assert paper.search.trials > quick.search.trials and paper.train.steps > quick.train.steps
