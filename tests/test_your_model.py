"""Your own model (own_model.py, taps.py): a module from outside the package under the search, its
parameters chosen by patterns, its layers probed, and docs/your-model.md followed word for word."""

import math
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from research import experiment, init, models, probes
from research.errors import ConfigError
from tests import helpers

GUIDE = pathlib.Path(helpers.ROOT) / "docs" / "your-model.md"
FIXTURE = pathlib.Path(helpers.TESTS) / "fixtures" / "my_nets.py"


def _model(width=32, depth=6, searched=(("hidden", "layers/*/kernel", "dense"),), **fields):
    cfg = models.default_config("module")
    cfg.update({"module": "tests.fixtures.my_nets:make_model", "kwargs": {"width": width, "depth": depth},
                "searched": searched, "input_shape": (40,), **fields})  # fmt: skip
    return cfg


def _one_sentence(err: ConfigError) -> str:
    text = str(err)
    assert "\n" not in text and text.endswith(".")
    return text


@pytest.mark.parametrize(
    "searched, says",
    [
        ((("hidden", "blocks/*/kernel", "dense"),), "matches no parameter; the module has head/bias (10,)"),
        ((("hidden", "layers/*", "dense"),), "matches 'layers/0/bias' of shape (32,)"),
        ((("hidden", "layers/*/kernel", "dense"), ("head", "layers/0/kernel", "dense")), "is matched by"),
        ((("hidden", "layers/*/kernel", "attention"),), "model.searched fan of 'layers/*/kernel' must be one of"),
        ((("hidden", "layers/*/kernel"),), "model.searched must list (group, pattern, fan) entries"),
    ],
)
def test_a_bad_pattern_is_one_sentence_naming_what_exists(searched, says):
    with pytest.raises(ConfigError) as err:
        models.validate(_model(searched=searched))
    assert says in _one_sentence(err.value)


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"module": "tests.fixtures.my_nets"}, "must name a factory as 'package.module:function'"),
        ({"module": "no_such_package.nets:make"}, "cannot be loaded: ModuleNotFoundError"),
        ({"kwargs": {"widht": 32}}, "got an unexpected keyword argument 'widht'"),
        ({"input_shape": (41,)}, "fails on inputs of model.input_shape (41,)"),
        ({"input_shape": ()}, "model.input_shape must be one example's shape"),
    ],
)
def test_a_bad_module_setting_is_one_sentence(fields, says):
    cfg = _model()
    cfg.update(fields)
    with pytest.raises(ConfigError) as err:
        models.validate(cfg)
    assert says in _one_sentence(err.value)


def test_searched_parameters_take_the_family_and_the_rest_keep_their_own():
    cfg = _model(width=256, depth=3)
    assert models.groups(cfg) == ("hidden",)
    a, b = (models.init_state(cfg, jax.random.key(0), alpha) for alpha in (0.5, 3.0))
    for i in (1, 2):  # 256 x 256 kernels: the sample variance is within 1% (sd 0.3%)
        var = float(jnp.var(b["net"]["layers"][i]["kernel"][...]))
        assert var * 256 == pytest.approx(3.0, rel=0.01)
        np.testing.assert_allclose(
            b["net"]["layers"][i]["kernel"][...], a["net"]["layers"][i]["kernel"][...] * math.sqrt(6.0), rtol=1e-5
        )  # fmt: skip  (the same draw, rescaled)
    np.testing.assert_array_equal(a["net"]["head"]["kernel"][...], b["net"]["head"]["kernel"][...])
    assert float(jnp.abs(b["net"]["layers"][0]["bias"][...]).max()) == 0.0  # the module's zeros


def test_fans_by_layer_kind():
    assert init.FANS["heads_out"]((4, 8, 32)) == (32, 32)
    assert init.FANS["heads_in"]((32, 4, 8)) == (32, 32)
    assert init.FANS["embedding"]((8, 32)) == (32, 8)
    assert init.FANS["conv"]((3, 3, 16, 32)) == (144, 288)
    assert init.variance(init.xavier(), (4, 8, 32), 1.0, "heads_out") == pytest.approx(1 / 32)


def test_probes_of_a_foreign_module_follow_he():
    """Each Linear's output is tapped in call order: the forward and backward log-ratios per layer of
    the user's ReLU MLP are 0 at He's 2 and +-log 2 per layer at alpha 4 (wide layers, 8 seeds): the
    signal doubles going up, the gradient going down."""
    cfg = _model(width=512, depth=8)
    x = jax.random.normal(jax.random.key(1), (128, 40))
    stats = probes.grid(cfg, jnp.array([2.0, 4.0]), jnp.arange(8), x)
    forward = np.median(np.asarray(probes.log_slope(stats.forward)), axis=1)
    backward = np.median(np.asarray(probes.log_slope(stats.backward)), axis=1)
    assert stats.forward.shape == (2, 8, 8)
    np.testing.assert_allclose(forward, [0.0, math.log(2)], atol=0.02)
    np.testing.assert_allclose(backward, [0.0, -math.log(2)], atol=0.03)
    jacobian = np.median(np.asarray(probes.log_slope(stats.jacobian)), axis=1)
    np.testing.assert_allclose(jacobian, [0.0, math.log(2)], atol=0.03)


def test_flops_and_fan_of_a_foreign_module():
    cfg = _model(width=32, depth=2)
    assert models.family(cfg).hidden_fan_in(cfg) == 40
    # 40x32 + 32x32 + 32x10 multiply-adds, 2 FLOPs each (plus the biases and ReLUs XLA counts)
    assert 2 * (40 * 32 + 32 * 32 + 32 * 10) <= models.forward_flops(cfg, (40,)) < 1.2 * 2 * (40 * 32 + 32 * 32 + 320)


def test_an_experiment_on_a_foreign_module_loads_and_locks(tmp_path):
    file = tmp_path / "exp.py"
    file.write_text(
        "from research import experiment\n\n"
        "def get_config(profile='quick'):\n"
        "    cfg = experiment.base_config('mine', model='module')\n"
        "    cfg.model.update({'module': 'tests.fixtures.my_nets:make_model', 'kwargs': {'depth': 2},\n"
        "                      'searched': (('hidden', 'layers/*/kernel', 'dense'),), 'input_shape': (40,)})\n"
        "    return cfg\n"
    )
    cfg = experiment.load(str(file), overrides=["model.kwargs.depth=3"])
    assert cfg.model.kwargs.depth == 3 and isinstance(cfg.model.kwargs, ml_collections.ConfigDict)
    with pytest.raises(ConfigError, match="matches no parameter"):
        experiment.load(str(file), overrides=["model.searched=(('hidden', 'net/*', 'dense'),)"])


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_the_guide_word_for_word(tmp_path, data_root):
    """docs/your-model.md: its module (the one under tests/fixtures), its config and its two
    commands, run as written in a clean folder, give a report with both studies' verdicts."""
    guide = GUIDE.read_text()
    module, config = _blocks(guide, "python")
    assert module == FIXTURE.read_text()
    (tmp_path / "my_nets.py").write_text(module)
    (tmp_path / "my_experiment.py").write_text(config)
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "TFDS_DATA_DIR": str(data_root)}  # fmt: skip
    env.pop("RESEARCH_STORAGE", None)
    (commands,) = _blocks(guide, "bash")
    for line in commands.strip().splitlines():
        done = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = (tmp_path / "runs" / "report" / "report.md").read_text()
    assert "| my_mlp-quick-train_loss | train_loss" in report
    row = next(line for line in report.splitlines() if line.startswith("| my_mlp-quick-forward_log_ratio |"))
    alpha = float(row.split("|")[3].split()[0])
    assert 1.8 < alpha < 2.6  # He's 2, moved up by the 32-unit layers' finite width
    assert "as run (n/a: no mean-field recursion is known for model family 'module'" in report
    bad = (tmp_path / "my_experiment.py").read_text().replace("layers/*/kernel", "blocks/*/kernel")
    (tmp_path / "bad.py").write_text(bad)
    done = subprocess.run("PYTHONPATH=. research sweep --config bad.py", shell=True, cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "the module has head/bias (10,)" in done.stderr


def test_advice_covers_the_searched_kernels_with_their_own_fans():
    from research import advise

    cfg = experiment.load(os.path.join(helpers.EXPERIMENTS, "transformer_deepnet.py"))
    rows = advise.advise(cfg)["layers"]
    assert [r["layer"] for r in rows] == [f"net/blocks/{i}/{p}" for i in (0, 1) for p in ("attention/out", "mlp_out")]
    out = rows[0]  # (2 heads, 8, 16): fan_in 16, fan_out 16, Xavier's 1 / 16 on fan_avg
    assert (out["fan_in"], out["fan_out"], out["std"]) == (16, 16, pytest.approx(0.25))


def test_a_foreign_module_trains_in_one_program_and_resumes_from_its_checkpoint_bit_for_bit(mnist1d, tmp_path):
    """Populations, one compilation and orbax checkpoints, unchanged for a module from outside."""
    from research import checkpoint, members, recipe, train

    model = _model(width=16, depth=3)
    cfg = recipe.default_config()
    cfg.update({"steps": 200, "chunk_steps": 50})
    trainer = train.Trainer(model, cfg, mnist1d)
    population = members.Population.create(models.groups(model), [1.0, 2.0], [0.02, 0.03], [0, 1])
    straight = train.train(trainer, population)
    assert trainer.traces == {"init": 1, "chunk": 1} and np.all(np.isfinite(straight.final["train_loss"]))
    helpers.crash_at_chunk_3(trainer, population, tmp_path)
    reader = checkpoint.Checkpointer(tmp_path)
    resumed = train.train(trainer, population, checkpointer=reader)
    reader.close()  # its last save commits in a background thread
    assert np.array_equal(straight.curves.array("step_loss"), resumed.curves.array("step_loss"))
