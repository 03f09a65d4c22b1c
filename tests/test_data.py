"""Datasets: offline builders, normalisation, views, clear errors, batch plans."""

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from research import data
from research.errors import ConfigError


def _cfg(name, tmp_path, **overrides):
    cfg = data.default_config(name)
    cfg.data_dir = str(tmp_path)
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.mark.parametrize(
    ("name", "view", "shape", "sizes"),
    [
        ("mnist1d", "flat", (40,), (3600, 400, 1000)),
        ("mnist1d", "sequence", (40, 1), (3600, 400, 1000)),
        ("mnist1d", "image", (40, 1), (3600, 400, 1000)),
        ("digits", "flat", (64,), (1294, 144, 359)),
        ("digits", "image", (8, 8, 1), (1294, 144, 359)),
        ("digits", "sequence", (8, 8), (1294, 144, 359)),
        ("teacher", "flat", (20,), (3600, 400, 1000)),
    ],
)
def test_offline_builders_shapes_dtypes_labels_and_splits(name, view, shape, sizes, data_dir):
    ds = data.load(_cfg(name, data_dir, view=view))
    assert ds.input_shape == shape
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == sizes
    assert ds.x_train.dtype == np.float32 and np.issubdtype(ds.y_train.dtype, np.integer)
    assert ds.task == "classification" and ds.num_outputs == 10
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert int(y.min()) >= 0 and int(y.max()) <= 9
    assert len(np.unique(np.asarray(ds.y_train))) == 10


def test_teacher_regression_has_float_targets(tmp_path):
    cfg = _cfg("teacher", tmp_path)
    cfg.params.task, cfg.params.num_samples, cfg.params.noise = "regression", 1000, 0.0
    ds = data.load(cfg)
    assert ds.task == "regression" and ds.y_train.dtype == np.float32 and ds.num_outputs == 1
    assert float(np.std(np.asarray(ds.y_train))) > 0.05  # the teacher's function is not constant


def test_same_seed_same_arrays_other_seed_other_arrays(tmp_path):
    a = data.load(_cfg("mnist1d", tmp_path / "a"))
    b = data.load(_cfg("mnist1d", tmp_path / "b"))
    assert np.array_equal(np.asarray(a.x_train), np.asarray(b.x_train))
    other = _cfg("mnist1d", tmp_path / "a")
    other.params.seed = 7
    c = data.load(other)
    assert not np.array_equal(np.asarray(a.x_train), np.asarray(c.x_train))


def test_second_load_reads_files_without_rebuilding(tmp_path, monkeypatch):
    data.load(_cfg("digits", tmp_path))

    def forbidden(self):
        raise AssertionError("rebuilt a prepared dataset")

    monkeypatch.setattr(data.Digits, "_arrays", forbidden)
    assert len(data.load(_cfg("digits", tmp_path)).x_train) == 1294


def test_normalisation_uses_training_statistics_only(data_dir):
    ds = data.load(_cfg("digits", data_dir, normalization="feature"))
    train = np.asarray(ds.x_train)
    # Train features are exactly standardised (constant pixels only centred) ...
    assert np.allclose(train.mean(axis=0), 0.0, atol=1e-5)
    stds = train.std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-4) | (stds < 1e-6))
    # ... and validation/test reuse those numbers, so they are not exactly standardised.
    assert np.abs(np.asarray(ds.x_test).mean(axis=0)).max() > 1e-3
    raw = data.load(_cfg("digits", data_dir, normalization="none"))
    assert np.allclose(np.asarray(raw.x_train).mean(axis=0), ds.mean.reshape(-1), atol=1e-4)


def test_unknown_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="neither an offline builder nor a TFDS dataset"):
        data.load(_cfg("no_such_dataset_xyz", tmp_path))


def test_unprepared_standard_dataset_says_how_to_prepare(tmp_path):
    with pytest.raises(ConfigError, match=r"not prepared in .*tfds build mnist"):
        data.load(_cfg("mnist", tmp_path))


class InitScaleToyPrepared(tfds.core.GeneratorBasedBuilder):
    """A registered TFDS builder standing in for a dataset prepared on a cluster."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {
            "image": tfds.features.Tensor(shape=(4, 4, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=3),
        }
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features), supervised_keys=("image", "label")
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(60), "test": self._generate_examples(12)}

    def _generate_examples(self, n):
        rng = np.random.default_rng(n)
        for i in range(n):
            yield i, {"image": rng.integers(0, 255, (4, 4, 1), dtype=np.uint8), "label": i % 3}


def test_standard_dataset_by_name_from_a_prepared_directory(tmp_path, monkeypatch):
    InitScaleToyPrepared(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    cfg = data.default_config("init_scale_toy_prepared")
    ds = data.load(cfg)
    assert ds.input_shape == (16,) and len(ds.x_train) == 54 and len(ds.x_test) == 12 and ds.num_outputs == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("view", "cube", "data.view must be one of"),
        ("normalization", "zca", "data.normalization must be one of"),
        ("validation_fraction", 1.5, "data.validation_fraction"),
    ],
)
def test_bad_data_settings_name_the_field(field, value, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        data.load(_cfg("mnist1d", tmp_path, **{field: value}))


def test_unknown_builder_parameter(tmp_path):
    cfg = _cfg("mnist1d", tmp_path)
    cfg.params.size = 3
    with pytest.raises(ConfigError, match="unknown fields \\['size'\\]"):
        data.load(cfg)


def test_batch_plan_covers_every_step_with_epoch_permutations():
    plan = np.asarray(data.batch_plan(jax.random.key(0), 100, 32, 10))
    assert plan.shape == (10, 32) and plan.dtype == np.int32
    assert plan.min() >= 0 and plan.max() < 100
    flat = plan.reshape(-1)
    for epoch in range(3):  # 320 draws: three full epochs, each a permutation of 0..99
        assert sorted(flat[epoch * 100 : (epoch + 1) * 100]) == list(range(100))


def test_batch_plans_differ_per_member_and_repeat_per_key():
    keys = jax.random.split(jax.random.key(1), 3)
    plans = np.asarray(data.batch_plans(keys, 50, 8, 4))
    assert plans.shape == (3, 4, 8)
    assert not np.array_equal(plans[0], plans[1])
    assert np.array_equal(plans[2], np.asarray(data.batch_plan(keys[2], 50, 8, 4)))


def test_a_users_own_builder_is_read_by_name_from_its_data_directory(tmp_path):
    """A builder outside the package (tests/fixtures/my_dataset.py), prepared once into a folder, is then a
    dataset like any other: `data.name` its name, `data.data_dir` that folder."""
    from tests.fixtures.my_dataset import MyParity

    MyParity(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    cfg = data.default_config("my_parity")
    cfg.data_dir = str(tmp_path)
    data.check_available(cfg)
    ds = data.load(cfg)
    assert ds.num_outputs == 2 and ds.input_shape == (8,) and len(ds.x_train) + len(ds.x_val) == 800
    y = np.asarray(ds.y_test)
    assert len(y) == 200 and 0.3 < y.mean() < 0.7
