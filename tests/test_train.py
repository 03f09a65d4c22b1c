"""The population trainer: one compile, members independent, divergence isolated, resumable."""

import json
import math
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import checkpoint, data, members, models, recipe, train
from research.errors import ConfigError
from tests import helpers


def _setup(dataset, **train_overrides):
    model = models.default_config("mlp")
    model.update({"depth": 4, "width": 32})
    cfg = recipe.default_config()
    cfg.update({"steps": 200, "chunk_steps": 50, **train_overrides})
    return model, train.Trainer(model, cfg, dataset)


def _population(model, alpha, lr, seed):
    return members.Population.create(models.groups(model), alpha, lr, seed)


def test_one_compilation_whatever_alpha_lr_and_seed(mnist1d):
    model, trainer = _setup(mnist1d)
    train.train(trainer, _population(model, [1.0, 2.0, 3.0], [0.01, 0.02, 0.05], [0, 1, 2]))
    train.train(trainer, _population(model, [0.3, 5.0, 1.7], [0.1, 0.001, 0.03], [7, 8, 9]))
    assert trainer.traces == {"init": 1, "chunk": 1}


@pytest.mark.parametrize("shared", [True, False])
def test_a_member_equals_the_same_trial_trained_alone(mnist1d, shared):
    model, trainer = _setup(mnist1d, shared_data_order=shared)
    together = train.train(trainer, _population(model, [1.0, 2.5, 1.5], [0.02, 0.01, 0.05], [3, 4, 5]))
    _, solo_trainer = _setup(mnist1d, shared_data_order=shared)
    alone = train.train(solo_trainer, _population(model, 2.5, 0.01, 4))
    np.testing.assert_allclose(
        together.curves.array("step_loss")[1], alone.curves.array("step_loss")[0], rtol=1e-4, atol=1e-5
    )
    for name in members.METRICS:
        np.testing.assert_allclose(together.final[name][1], alone.final[name][0], rtol=1e-4, atol=1e-5)


def test_a_diverging_member_is_frozen_flagged_and_isolated(mnist1d):
    model, trainer = _setup(mnist1d)
    result = train.train(trainer, _population(model, [2.0, 2.0, 400.0], [0.02, 1e4, 0.02], [1, 1, 2]))
    assert result.diverged.tolist() == [False, True, True]
    assert 0 <= result.diverged_step[1] < 200 and result.diverged_step[0] == -1
    # Chance level: the entropy of MNIST-1D's nearly balanced labels, close to ln 10.
    assert result.final["train_loss"][1] == pytest.approx(trainer.diverged_value)
    assert trainer.diverged_value == pytest.approx(math.log(10), rel=0.01)
    assert result.final["val_error"][1] == 1.0
    # Alone in its block (3 members: blocks of one), a diverged member's later steps are skipped.
    assert np.all(np.isnan(result.curves.array("step_loss")[1, result.diverged_step[1] + 1 :]))
    # Isolation, bit for bit: the same population shape with healthy neighbours gives member 0
    # exactly the same curve (a different population size changes XLA's kernels, not the maths).
    healthy = train.train(trainer, _population(model, [2.0, 2.0, 2.0], [0.02, 0.02, 0.02], [1, 1, 2]))
    assert np.array_equal(result.curves.array("step_loss")[0], healthy.curves.array("step_loss")[0])
    assert np.all(np.isfinite(result.final["train_loss"]))


def test_interrupted_and_resumed_equals_uninterrupted_bit_for_bit(mnist1d, tmp_path):
    model, trainer = _setup(mnist1d)
    population = _population(model, [1.0, 2.0], [0.02, 0.03], [0, 1])
    straight = train.train(trainer, population)
    helpers.crash_at_chunk_3(trainer, population, tmp_path)
    ckpt = checkpoint.Checkpointer(tmp_path)
    assert ckpt.manager.latest_step() == 2
    seen = []
    resumed = train.train(trainer, population, checkpointer=ckpt, on_chunk=lambda c, m: seen.append(c))
    assert seen == [3, 4]  # continued from the checkpoint, not from step 0
    assert np.array_equal(straight.curves.array("step_loss"), resumed.curves.array("step_loss"))
    for name in members.METRICS:
        assert np.array_equal(straight.final[name], resumed.final[name])


def _diverging_population(model):
    """Four members: 0 and 2 healthy, 1 and 3 diverging in the first steps (lr 1e4)."""
    return _population(model, [2.0, 2.0, 1.5, 1.5], [0.02, 1e4, 0.03, 1e4], [1, 1, 2, 2])


@pytest.mark.slow
def test_diverged_members_leave_and_the_survivors_train_exactly_as_before(mnist1d):
    model, trainer = _setup(mnist1d, member_block=2)
    compacted = train.train(trainer, _diverging_population(model))
    assert compacted.diverged.tolist() == [False, True, False, True]
    assert trainer.traces["chunk"] == 2  # the population of 4, then of 2 after the first chunk
    # The same survivors beside healthy members, which never leave: the same blocks of two, so
    # the same kernels and, bit for bit, the same curves and final metrics.
    model, reference = _setup(mnist1d, member_block=2)
    healthy = train.train(reference, _population(model, [2.0, 2.0, 1.5, 1.5], [0.02, 0.02, 0.03, 0.03], [1, 1, 2, 2]))
    assert reference.traces["chunk"] == 1
    for name in ("step_loss", *members.METRICS):
        assert np.array_equal(compacted.curves.array(name)[[0, 2]], healthy.curves.array(name)[[0, 2]]), name
    np.testing.assert_array_equal(compacted.layer_variance[[0, 2]], healthy.layer_variance[[0, 2]])
    # The members that left keep reporting what they ended with, every chunk.
    assert np.all(compacted.curves.array("train_loss")[[1, 3]] == np.float32(trainer.diverged_value))
    assert np.all(compacted.curves.array("val_error")[[1, 3]] == 1.0)
    assert np.all(np.isnan(compacted.curves.array("step_loss")[[1, 3], 60:]))
    assert compacted.layer_variance.shape == healthy.layer_variance.shape


@pytest.mark.slow
def test_retired_members_leave_and_recompiles_stay_bounded(mnist1d):
    model, trainer = _setup(mnist1d, member_block=2, steps=250)  # 5 chunks
    population = _population(model, np.linspace(1.0, 3.0, 16), 0.02, np.arange(16))
    retired: set[int] = set()

    def retire_half(chunk, metrics):  # a pruner that stops half of the rest each chunk
        alive = sorted(set(range(16)) - retired)
        retired.update(alive[len(alive) // 2 :])

    result = train.train(trainer, population, on_chunk=retire_half, retired=lambda: retired)
    assert len(trainer.devices) == 1
    assert trainer.traces["chunk"] == 1 + math.log2(16)  # one compile per size: 16, 8, 4, 2, 1
    assert result.curves.array("train_loss").shape == (16, 5)
    assert np.all(np.isfinite(result.final["train_loss"][:1]))  # member 0 is never retired
    assert np.all(np.isnan(result.final["train_loss"][8:]))  # retired after the first chunk


@pytest.mark.slow
def test_a_resume_after_members_left_equals_uninterrupted_bit_for_bit(mnist1d, tmp_path):
    model, trainer = _setup(mnist1d, member_block=2)
    population = _diverging_population(model)
    straight = train.train(trainer, population)
    helpers.crash_at_chunk_3(trainer, population, tmp_path)
    restored = checkpoint.Checkpointer(tmp_path).restore(trainer, population)
    assert restored.step == 100 and restored.roster.slots.tolist() == [0, 2] and len(restored.state.seed) == 2
    # A retry of members 3 (left) and 2 (training) continues from the same checkpoint.
    retry = members.Population.create(models.groups(model), [1.5, 1.5], [1e4, 0.03], [2, 2])
    picked = checkpoint.resume_members(str(tmp_path), trainer, [3, 2], retry)
    assert picked.roster.slots.tolist() == [1] and picked.roster.diverged.tolist() == [True, False]
    again = train.train(trainer, retry, initial=picked)
    assert again.diverged.tolist() == [True, False]
    # Member 2 now trains alone (a block of one: other kernels, float32 rounding apart).
    np.testing.assert_allclose(again.curves.array("step_loss")[1], straight.curves.array("step_loss")[2], rtol=1e-5)
    np.testing.assert_array_equal(again.curves.array("train_loss")[0], straight.curves.array("train_loss")[3])
    resumed = train.train(trainer, population, checkpointer=checkpoint.Checkpointer(tmp_path))
    for name in ("step_loss", *members.METRICS):
        np.testing.assert_array_equal(straight.curves.array(name), resumed.curves.array(name))
    assert resumed.diverged.tolist() == straight.diverged.tolist()


def test_a_half_written_latest_checkpoint_falls_back_to_the_previous(mnist1d, tmp_path):
    model, trainer = _setup(mnist1d)
    population = _population(model, [1.0, 2.0], 0.02, [0, 1])
    train.train(trainer, population, checkpointer=checkpoint.Checkpointer(tmp_path, keep=2))
    latest = max(int(p) for p in os.listdir(tmp_path) if p.isdigit())
    for root, _, files in os.walk(tmp_path / str(latest)):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(max(0, os.path.getsize(os.path.join(root, name)) // 3))
    restored = checkpoint.Checkpointer(tmp_path).restore(trainer, population)
    assert restored is not None and restored.step == (latest - 1) * trainer.cfg.chunk_steps


def test_on_chunk_stop_ends_training_at_that_chunk(mnist1d):
    model, trainer = _setup(mnist1d)  # 4 chunks of 50 steps
    population = _population(model, [1.0, 2.0], 0.02, [0, 1])
    seen = []

    def stop_after_two(chunk, metrics):
        seen.append(chunk)
        return train.STOP if chunk == 2 else None

    stopped = train.train(trainer, population, on_chunk=stop_after_two)
    full = train.train(trainer, population)
    assert seen == [1, 2] and stopped.stopped and not full.stopped
    assert stopped.curves.array("train_loss").shape == (2, 2) and full.curves.array("train_loss").shape == (2, 4)
    np.testing.assert_array_equal(stopped.curves.array("train_loss"), full.curves.array("train_loss")[:, :2])


FAMILIES = {  # (model family and shape, dataset and view): each family and cell, on a task it learns fast
    "mlp": ({"name": "mlp", "depth": 3, "width": 32}, ("mnist1d", "flat")),
    "cnn-1d": ({"name": "cnn", "depth": 3, "channels": 8, "input_shape": (40, 1)}, ("mnist1d", "image")),
    "cnn-2d": ({"name": "cnn", "depth": 3, "channels": 8, "input_shape": (8, 8, 1)}, ("digits", "image")),
    "rnn-vanilla": ({"name": "rnn", "hidden": 32, "input_dim": 8}, ("digits", "sequence")),
    "rnn-lstm": ({"name": "rnn", "cell": "lstm", "hidden": 32, "input_dim": 8}, ("digits", "sequence")),
    "rnn-gru": ({"name": "rnn", "cell": "gru", "hidden": 32, "input_dim": 8}, ("digits", "sequence")),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_model_family_trains_one_chunk_and_its_loss_falls(family, data_root):
    fields, (dataset_name, view) = FAMILIES[family]
    model = models.default_config(fields["name"])
    model.update(fields)
    data_cfg = data.default_config(dataset_name)
    data_cfg.update({"view": view, "data_dir": str(data_root)})
    dataset = data.load(data_cfg)
    cfg = recipe.default_config()
    cfg.update({"optimizer": "adam", "learning_rate": 1e-2, "steps": 100, "chunk_steps": 100})
    trainer = train.Trainer(model, cfg, dataset)
    population = members.Population.create(models.groups(model), 1.0, 1e-2, [0, 1])
    result = train.train(trainer, population)
    before, after = result.curves.array("step_loss")[:, :5].mean(axis=1), result.final["train_loss"]
    assert np.all(after < 0.95 * before), (before, after)  # the first steps' loss against the last evaluation


def test_a_tiny_population_learns_mnist1d(mnist1d):
    model, trainer = _setup(mnist1d, steps=400, chunk_steps=100)
    result = train.train(trainer, _population(model, [2.0, 2.0], [0.02, 0.05], [0, 1]))
    losses = result.curves.array("step_loss")
    assert np.all(losses[:, -50:].mean(axis=1) < 0.75 * losses[:, :10].mean(axis=1))
    assert np.all(result.final["val_error"] < 0.7)  # chance is 0.9


@pytest.mark.parametrize("optimizer", recipe.OPTIMIZERS)
def test_every_optimizer_lowers_the_loss(mnist1d, optimizer):
    lr = 0.02 if optimizer in ("sgd", "momentum") else 0.002
    model, trainer = _setup(mnist1d, optimizer=optimizer, steps=100, chunk_steps=100)
    losses = train.train(trainer, _population(model, 2.0, lr, 0)).curves.array("step_loss")[0]
    assert losses[-20:].mean() < 0.9 * losses[:5].mean()


SHARDED_MODELS = {  # (data view, model settings): every family, the recurrent cells included
    "mlp": ("flat", "mlp", {"depth": 3, "width": 32}),
    "mlp_gelu": ("flat", "mlp", {"depth": 3, "width": 32, "activation": "gelu"}),  # erf inside shard_map
    "cnn": ("image", "cnn", {"depth": 2, "channels": 8}),
    "rnn": ("sequence", "rnn", {"hidden": 16, "input_dim": 1}),
    "lstm": ("sequence", "rnn", {"hidden": 16, "input_dim": 1, "cell": "lstm"}),
    "gru": ("sequence", "rnn", {"hidden": 16, "input_dim": 1, "cell": "gru"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SHARDED_MODELS))
def test_sharded_population_equals_unsharded(kind, tmp_path, data_root):
    view, family, settings = SHARDED_MODELS[kind]
    script = textwrap.dedent(f"""
        import json, jax, numpy as np
        from research import data, members, models, recipe, train
        assert len(jax.devices()) == 4
        cfg = data.default_config("mnist1d"); cfg.data_dir = {str(data_root)!r}; cfg.view = {view!r}
        ds = data.load(cfg)
        model = models.default_config({family!r}); model.update({settings!r})
        tcfg = recipe.default_config(); tcfg.update({{"steps": 100, "chunk_steps": 50}})
        pop = members.Population.create(models.groups(model), [1.0, 2.0, 3.0], [0.01, 0.02, 0.03], [0, 1, 2])
        sharded = train.Trainer(model, tcfg, ds)
        state = sharded.start(pop)
        devices = {{d.id for d in state.params["readout"]["kernel"].sharding.device_set}}
        a = train.train(sharded, pop)
        b = train.train(train.Trainer(model, tcfg, ds, devices=jax.devices()[:1]), pop)
        six = members.Population.create(models.groups(model), np.linspace(1.0, 3.0, 6), 0.02, np.arange(6))
        padded = len(sharded.start(six).seed)  # 2 per device (a block of 2 on each)
        c = train.train(sharded, six)
        d = train.train(train.Trainer(model, tcfg, ds, devices=jax.devices()[:1]), six)
        losses = {{k: r.final["train_loss"].tolist() for k, r in zip("abcd", (a, b, c, d))}}
        print(json.dumps({{"devices": len(devices), "padded": padded, **losses}}))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4  # 3 members padded to 4, one per device
    assert out["padded"] == 8
    np.testing.assert_allclose(out["a"], out["b"], rtol=1e-5)
    np.testing.assert_allclose(out["c"], out["d"], rtol=1e-5)


def test_member_blocks_change_the_schedule_not_the_results(mnist1d):
    finals = {}
    for block in (1, 2, 4):
        model, trainer = _setup(mnist1d, member_block=block, steps=100)
        population = _population(model, [1.0, 2.0, 3.0, 1.5], [0.02, 0.03, 0.01, 0.02], [0, 1, 2, 3])
        assert trainer._block(4) == block and trainer._block(3) == (3 if block == 4 else 1)  # divisors: no padding
        assert len(trainer.start(population).seed) == 4
        finals[block] = train.train(trainer, population).curves.array("step_loss")
    # Other block shapes pick other kernels: the same maths up to float32 rounding, which
    # training then amplifies (measured: 2e-7 over the first 50 steps, up to 6e-4 by step 100).
    for block in (2, 4):
        np.testing.assert_allclose(finals[1][:, :50], finals[block][:, :50], rtol=1e-5)
        np.testing.assert_allclose(finals[1], finals[block], rtol=2e-3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("optimizer", "lion", "train.optimizer must be one of"),
        ("loss", "hinge", "train.loss must be one of"),
        ("steps", 0, "train.steps must be an integer from 1 to"),
        ("chunk_steps", 30, "multiple of train.chunk_steps"),
        ("momentum", 1.5, "train.momentum"),
        ("member_block", -1, "train.member_block must be an integer from 0 to"),
    ],
)
def test_bad_training_settings_name_the_field(mnist1d, field, value, message):
    with pytest.raises(ConfigError, match=message):
        _setup(mnist1d, **{field: value})


def test_bad_population_values_name_the_field():
    with pytest.raises(ConfigError, match=r"alpha\[hidden\] must be positive"):
        members.Population.create(("hidden",), [1.0, -2.0], 0.01, [0, 1])
    with pytest.raises(ConfigError, match="learning_rate must be positive"):
        members.Population.create(("hidden",), 1.0, float("nan"), 0)


def test_the_memory_check_counts_a_blocks_activations(mnist1d, monkeypatch):
    model, trainer = _setup(mnist1d)  # depth 4, width 32; evaluation on 1024 examples
    # The estimate of one member's activations must track what XLA allocates for the backward pass of
    # the same network on the same 1024 examples (within 2x either way), not restate a formula.
    graph, params = models.graphdef(model), models.init_state(model, jax.random.key(0), 1.0)
    x = jnp.asarray(mnist1d.x_train[:1024])
    backward = jax.jit(jax.grad(lambda p: jnp.sum(models.apply(graph, p, x)[0] ** 2)))
    allocated = backward.lower(params).compile().memory_analysis().temp_size_in_bytes
    assert 0.5 <= allocated / trainer._step_bytes <= 2.0, (allocated, trainer._step_bytes)
    data_bytes = sum(a.nbytes for a in trainer.arrays)  # training data and the evaluation subsets
    state_only = 2 * trainer._member_bytes + data_bytes
    monkeypatch.setattr(train.devices, "memory_limit", lambda device: state_only + 2 * trainer._step_bytes)
    trainer.start(_population(model, 2.0, 0.02, [0, 1]))  # two members in one block of two: fits
    monkeypatch.setattr(train.devices, "memory_limit", lambda device: state_only + trainer._step_bytes)
    with pytest.raises(ConfigError, match="a population of 2 needs"):
        trainer.start(_population(model, 2.0, 0.02, [0, 1]))


def test_a_checkpoint_after_every_member_left_holds_the_record_alone(mnist1d, tmp_path):
    model, trainer = _setup(mnist1d)
    population = _population(model, [2.0, 2.0], 1e4, [0, 1])  # both diverge in the first steps
    writer = checkpoint.Checkpointer(tmp_path, every_chunks=1)
    train.train(trainer, population, checkpointer=writer)
    writer.close()  # waits for the last (asynchronous) write
    restored = checkpoint.Checkpointer(tmp_path).restore(trainer, population)
    assert restored.state is None and restored.step == 200 and restored.roster.slots.tolist() == []
    assert restored.roster.diverged.tolist() == [True, True]
    assert restored.roster.layer_variance.shape == (2, 4)


def test_members_that_leave_are_packed_evenly_over_the_devices_the_spare_rows_frozen(tmp_path, data_root):
    script = textwrap.dedent(f"""
        import json, jax, numpy as np
        from research import data, members, models, recipe, train
        cfg = data.default_config("mnist1d"); cfg.data_dir = {str(data_root)!r}
        ds = data.load(cfg)
        model = models.default_config("mlp"); model.update({{"depth": 3, "width": 16}})
        tcfg = recipe.default_config(); tcfg.update({{"steps": 40, "chunk_steps": 20}})
        trainer = train.Trainer(model, tcfg, ds)
        five = members.Population.create(models.groups(model), np.linspace(1, 3, 5), 0.02, np.arange(5))
        fresh = trainer.begin(five)
        six = members.Population.create(models.groups(model), np.linspace(1, 3, 6), 0.02, np.arange(6))
        progress = trainer.begin(six)
        trainer.advance(progress)
        trainer.compact(progress, {{0, 1, 2}})
        packed = progress.roster.slots.tolist()
        frozen = np.asarray(progress.state.diverged).tolist()
        last = trainer.advance(progress)["train_loss"]
        whole = train.train(trainer, six).final["train_loss"]
        fresh_frozen = np.asarray(fresh.state.diverged).tolist()
        print(json.dumps({{"fresh": fresh.roster.slots.tolist(), "fresh_frozen": fresh_frozen,
                          "packed": packed, "frozen": frozen, "last": last.tolist(), "whole": whole.tolist(),
                          "traces": dict(trainer.traces)}}))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # 5 members in 6 rows: 2 and 3 per device, the first device's spare row at its end, frozen
    assert out["fresh"] == [0, 1, -1, 2, 3, 4] and out["fresh_frozen"] == [False, False, True, False, False, False]
    # 3 of 6 leave: the other 3 fit 2 rows per device (a power of two), one spare row, frozen
    assert out["packed"] == [3, -1, 4, 5] and out["frozen"] == [False, True, False, False]
    assert all(math.isnan(v) for v in out["last"][:3])  # those that left report nothing more
    np.testing.assert_allclose(out["last"][3:], out["whole"][3:], rtol=1e-5)  # the rest train on unchanged
    assert out["traces"] == {"init": 1, "chunk": 2}  # one compile per compiled size
