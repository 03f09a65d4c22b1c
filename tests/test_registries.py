"""Registries carry their knowledge: a family and an activation registered from outside `research/`
get theory, probes, a judged study and a report, with nothing in `research/` edited."""

import json
import subprocess
import sys
import textwrap

import pytest

from research import activations, models, theory
from tests import helpers

_END_TO_END = """
import json, sys
from tests.fixtures import own_model
own_model.register()
from research import experiment, report, theory
from research.worker import Worker

cfg = experiment.base_config("byo", model="stack", dataset="mnist1d")
cfg.model.update({"activation": "absolute", "depth": 6, "units": 32})
cfg.search.update({"objective": "forward_log_ratio", "sampler": "grid", "alpha_range": (0.5, 2.0),
                   "grid_points": 6, "trials": 6, "trials_per_batch": 6, "probe_seeds": 16,
                   "runs_dir": sys.argv[1]})
cfg.data.data_dir = sys.argv[2]
experiment.validate(cfg)
cfg.lock()
told = Worker(cfg, sys.argv[1] + "/s.journal", echo=lambda _: None).run()
report.write(sys.argv[1] + "/s.journal", sys.argv[1] + "/report", figures=False)
rows = json.loads(open(sys.argv[1] + "/report/report.json").read())["studies"]
he = [p.alpha for p in theory.predict("absolute") if p.theory == "he"][0]
print(json.dumps({"told": told, "he": he, "row": rows[0]}))
"""


@pytest.mark.slow
def test_a_family_and_an_activation_registered_outside_research_run_end_to_end(tmp_path, data_root):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_END_TO_END), str(tmp_path), str(data_root)],
                          capture_output=True, text=True, timeout=600, cwd=helpers.ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["told"] == 6 and out["he"] == pytest.approx(1.0)  # He's rule from the declared slopes
    row = out["row"]
    assert row["model"] == "stack 6x32" and row["activation"] == "absolute"
    verdicts = {v["theories"]: v for v in row["verdicts"]}
    assert verdicts["as run"]["alpha"] == pytest.approx(1.0, rel=0.01)  # the family's declared recursion
    assert any("he" in name.split(" = ") for name in verdicts)
    assert row["estimate"]["alpha"] == pytest.approx(1.0, rel=0.05)  # the probe finds |z|'s preserving scale


def test_declared_slopes_decide_he_and_homogeneity():
    relu, leaky, linear, tanh = (activations.get(n) for n in ("relu", "leaky_relu:0.2", "linear", "tanh"))
    assert relu.rectifier and leaky.rectifier and not linear.rectifier and not tanh.homogeneous
    he = {name: next(p.alpha for p in theory.predict(name) if p.theory == "he") for name in ("relu", "leaky_relu:0.2")}
    assert he == {"relu": 2.0, "leaky_relu:0.2": pytest.approx(2.0 / 1.04)}
    assert next(p.alpha for p in theory.predict("linear") if p.theory == "he") is None  # no kink: not a rectifier


def test_registering_a_taken_name_is_refused():
    with pytest.raises(Exception, match="registered already"):
        models.register(models.FAMILIES["mlp"])
    with pytest.raises(Exception, match="must be a new identifier"):
        activations.register("relu", activations.Entry(lambda _: abs))
