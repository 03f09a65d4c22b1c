"""Datasets through tensorflow-datasets' random-access data sources, prepared offline.

MNIST-1D, scikit-learn's digits and a random teacher network are built here with no
network (array_record files, no TensorFlow); standard TFDS datasets are read from a
prepared data directory. Arrays are normalised with training statistics and put on the
device once; `batch_plan` gives a whole run's batch indices for `lax.scan`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os
import pathlib
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research import names
from research.errors import ConfigError, choice, integer, number, require

Array = jax.Array
VIEWS = ("flat", "image", "sequence")
NORMALIZATIONS = ("global", "feature", "none")
# Builder parameters of the offline datasets, with their defaults.
OFFLINE = {
    "mnist1d": {"num_samples": 5000, "seed": 42},
    "digits": {"test_fraction": 0.2, "seed": 0},
    "teacher": {
        "task": "classification",
        "num_samples": 5000,
        "input_dim": 20,
        "depth": 2,
        "width": 64,
        "num_classes": 10,
        "noise": 0.1,
        "seed": 0,
    },
    "sequences": {"num_samples": 5000, "length": 12, "vocab": 8, "seed": 0},
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Device-resident splits of one dataset in one view, normalised with train statistics."""

    name: str
    task: str  # "classification" or "regression"
    num_outputs: int  # classes, or regression targets
    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array
    x_test: Array
    y_test: Array
    mean: np.ndarray  # the normalisation, from the training split only
    std: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def default_config(name: str = "mnist1d") -> ml_collections.ConfigDict:
    """Data settings: dataset name, view, validation carve-out and builder parameters."""
    cfg = ml_collections.ConfigDict()
    cfg.name = name
    cfg.data_dir = ""  # empty: $TFDS_DATA_DIR, else the user's cache
    cfg.view = "flat"
    cfg.normalization = "global"
    cfg.validation_fraction = 0.1
    cfg.split_seed = 0
    cfg.params = ml_collections.ConfigDict(dict(OFFLINE.get(name, {})))
    return cfg


def default_data_dir() -> pathlib.Path:
    """$TFDS_DATA_DIR, else $XDG_CACHE_HOME/init-scale/tensorflow_datasets (~/.cache by default)."""
    if os.environ.get("TFDS_DATA_DIR"):
        return pathlib.Path(os.environ["TFDS_DATA_DIR"])
    return names.cache_home() / "tensorflow_datasets"


def load(cfg) -> Dataset:
    """The dataset `cfg` names, prepared if it is an offline one, on the device."""
    validate(cfg)
    data_dir = pathlib.Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        field = "data.data_dir" if cfg.data_dir else "$TFDS_DATA_DIR"
        raise ConfigError(f"{field} must be a folder for the datasets; {str(data_dir)!r} is a file.")
    builder = (
        prepare(cfg.name, dict(cfg.params), data_dir) if cfg.name in OFFLINE else _prepared_builder(cfg.name, data_dir)
    )
    train, test = _read(builder, "train"), _read(builder, "test")
    task = "regression" if train[1].dtype.kind == "f" else "classification"
    num_outputs = int(train[1].shape[-1]) if task == "regression" and train[1].ndim > 1 else 1
    if task == "classification":
        num_outputs = builder.info.features["label"].num_classes
    (x_train, y_train), (x_val, y_val) = _carve_validation(*train, cfg.validation_fraction, cfg.split_seed)
    mean, std = _statistics(x_train, cfg.normalization)
    view = lambda x: jnp.asarray(_view((x - mean) / std, cfg.view))  # noqa: E731
    return Dataset(
        cfg.name, task, num_outputs, view(x_train), jnp.asarray(y_train), view(x_val), jnp.asarray(y_val),
        view(test[0]), jnp.asarray(test[1]), mean, std,
    )  # fmt: skip


def check_available(cfg) -> None:
    """Stop with one sentence unless the dataset can be loaded: an offline builder, or a TFDS
    dataset already prepared in the data directory. Cheap: nothing is read or built."""
    validate(cfg)
    if cfg.name not in OFFLINE:
        _prepared_builder(cfg.name, pathlib.Path(cfg.data_dir) if cfg.data_dir else default_data_dir())


def prepare(name: str, params: dict, data_dir: str | os.PathLike):
    """Build an offline dataset into `data_dir` once; later calls reuse the files."""
    if name not in OFFLINE:
        raise choice("data.name (offline builders)", name, tuple(OFFLINE))
    unknown = set(params) - set(OFFLINE[name])
    if unknown:
        raise ConfigError(
            f"data.params has unknown fields {sorted(unknown)} for {name}; accepted: {sorted(OFFLINE[name])}."
        )
    os.makedirs(data_dir, exist_ok=True)
    # Workers starting together must not build the same files at once: one builds, the rest wait.
    with open(os.path.join(data_dir, f".{name}.lock"), "w") as lock, _quiet_tfds():
        fcntl.flock(lock, fcntl.LOCK_EX)
        builder = _BUILDERS[name]({**OFFLINE[name], **params}, data_dir=os.fspath(data_dir))
        if not builder.is_prepared():
            builder.download_and_prepare()
    return builder


def batch_plan(key: Array, num_examples: int, batch_size: int, steps: int) -> Array:
    """Indices [steps, batch_size] for a whole run: epoch after epoch of fresh permutations."""
    epochs = math.ceil(steps * batch_size / num_examples)
    perms = jax.vmap(lambda k: jax.random.permutation(k, num_examples))(jax.random.split(key, epochs))
    return perms.reshape(-1)[: steps * batch_size].reshape(steps, batch_size).astype(jnp.int32)


def batch_plans(keys: Array, num_examples: int, batch_size: int, steps: int) -> Array:
    """One plan per key: [members, steps, batch_size] (per-member data order)."""
    return jax.vmap(lambda k: batch_plan(k, num_examples, batch_size, steps))(keys)


# --- builders ------------------------------------------------------------------------------

import tensorflow_datasets as tfds  # noqa: E402  (kept below the light API for fast imports)


class _OfflineBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A dataset generated here; its parameters name the config, so each variant is kept."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, params: dict, **kwargs):
        self.params = params
        config = tfds.core.BuilderConfig(name=_config_name(params), description=f"{self.name} {params}")
        super().__init__(config=config, file_format="array_record", **kwargs)

    def _arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def _x_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _label_feature(self):
        return tfds.features.ClassLabel(num_classes=10)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"x": tfds.features.Tensor(shape=self._x_shape(), dtype=np.float32), "label": self._label_feature()}
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features), supervised_keys=("x", "label")
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(*xy) for split, xy in self._arrays().items()}

    def _generate_examples(self, x: np.ndarray, y: np.ndarray) -> Iterator[tuple[int, dict]]:
        for i in range(len(x)):
            yield i, {"x": x[i].astype(np.float32), "label": y[i]}


class Mnist1d(_OfflineBuilder, skip_registration=True):
    """MNIST-1D (Greydanus 2020): 40-sample 1-D signals of 10 digit templates, generated."""

    name = "mnist1d"

    def _x_shape(self):
        return (40,)

    def _arrays(self):
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed = int(self.params["num_samples"]), int(self.params["seed"])
        d = make_dataset(args)
        return {"train": (d["x"], d["y"].astype(np.int64)), "test": (d["x_test"], d["y_test"].astype(np.int64))}


class Digits(_OfflineBuilder, skip_registration=True):
    """scikit-learn's 8x8 handwritten digits (1797 images shipped with the package)."""

    name = "digits"

    def _x_shape(self):
        return (8, 8)

    def _arrays(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        order = np.random.default_rng(int(self.params["seed"])).permutation(len(digits.target))
        n_test = int(round(len(order) * float(self.params["test_fraction"])))
        x, y = digits.images[order].astype(np.float32), digits.target[order].astype(np.int64)
        return {"train": (x[n_test:], y[n_test:]), "test": (x[:n_test], y[:n_test])}


class Teacher(_OfflineBuilder, skip_registration=True):
    """A random tanh teacher network on Gaussian inputs: a task with known ground truth."""

    name = "teacher"

    def _x_shape(self):
        return (int(self.params["input_dim"]),)

    def _label_feature(self):
        if self.params["task"] == "regression":
            return tfds.features.Tensor(shape=(), dtype=np.float32)
        return tfds.features.ClassLabel(num_classes=int(self.params["num_classes"]))

    def _arrays(self):
        p = self.params
        rng = np.random.default_rng(int(p["seed"]))
        n, regression = int(p["num_samples"]), p["task"] == "regression"
        x = rng.normal(size=(n, int(p["input_dim"])))
        h = x
        for width in [int(p["width"])] * int(p["depth"]):
            h = np.tanh(h @ rng.normal(0.0, 1.0 / math.sqrt(h.shape[1]), (h.shape[1], width)))
        outputs = 1 if regression else int(p["num_classes"])
        f = h @ rng.normal(0.0, 1.0 / math.sqrt(h.shape[1]), (h.shape[1], outputs))
        noisy = f + float(p["noise"]) * rng.normal(size=f.shape)
        y = noisy[:, 0].astype(np.float32) if regression else noisy.argmax(axis=1).astype(np.int64)
        n_test = n // 5
        return {"train": (x[n_test:], y[n_test:]), "test": (x[:n_test], y[:n_test])}


class Sequences(_OfflineBuilder, skip_registration=True):
    """Token sequences whose label is the most frequent token (ties: the smallest): a task for the
    Transformer that needs every position, generated offline. Read it with data.normalization 'none'."""

    name = "sequences"

    def _x_shape(self):
        return (int(self.params["length"]),)

    def _label_feature(self):
        return tfds.features.ClassLabel(num_classes=int(self.params["vocab"]))

    def _arrays(self):
        p = self.params
        vocab, n = int(p["vocab"]), int(p["num_samples"])
        x = np.random.default_rng(int(p["seed"])).integers(0, vocab, (n, int(p["length"])))
        y = np.apply_along_axis(lambda row: np.bincount(row, minlength=vocab).argmax(), 1, x).astype(np.int64)
        n_test = n // 5
        return {"train": (x[n_test:], y[n_test:]), "test": (x[:n_test], y[:n_test])}


_BUILDERS = {"mnist1d": Mnist1d, "digits": Digits, "teacher": Teacher, "sequences": Sequences}


@contextlib.contextmanager
def _quiet_tfds():
    """Builders take under a second: hide tfds' progress bars and absl chatter meanwhile."""
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    tfds.display_progress_bar(False)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)
        tfds.display_progress_bar(True)


def _config_name(params: dict) -> str:
    return "_".join(f"{k}-{params[k]}" for k in sorted(params)).replace(".", "p")


def _prepared_builder(name: str, data_dir: pathlib.Path):
    """A standard TFDS dataset that must already be prepared (never downloaded here)."""
    how = (
        f"prepare it where TensorFlow and the network are available with "
        f"`tfds build {name} --file_format=array_record --data_dir DIR`, then set TFDS_DATA_DIR=DIR "
        f"or data.data_dir (offline builders: {', '.join(OFFLINE)})"
    )
    try:
        builder = tfds.builder(name, data_dir=os.fspath(data_dir))
    except tfds.core.registered.DatasetNotFoundError:
        raise ConfigError(f"data.name {name!r} is neither an offline builder nor a TFDS dataset; {how}.") from None
    if not builder.is_prepared():
        raise ConfigError(f"dataset {name!r} is not prepared in {data_dir}; {how}.")
    return builder


def _read(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        source = builder.as_data_source(split)
    except (NotImplementedError, RuntimeError) as err:
        raise ConfigError(
            f"dataset {builder.name!r} split {split!r} cannot be read at random ({err.__class__.__name__}); "
            "prepare it with --file_format=array_record."
        ) from None
    keys = builder.info.supervised_keys or ("image", "label")
    items = source.__getitems__(list(range(len(source))))
    x = np.stack([item[keys[0]] for item in items]).astype(np.float32)
    y = np.asarray([item[keys[1]] for item in items])
    return x, y


def _carve_validation(x, y, fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * fraction))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def _statistics(x: np.ndarray, normalization: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training inputs: scalars ("global"), per feature, or identity."""
    if normalization == "none":
        return np.float32(0.0), np.float32(1.0)
    axis = 0 if normalization == "feature" else None
    std = x.std(axis=axis)
    return x.mean(axis=axis), np.where(std > 1e-6, std, 1.0)  # constant features are centred only


def _view(x: np.ndarray, view: str) -> np.ndarray:
    """flat: [N, D]; image: [N, *spatial, C]; sequence: [N, T, F] (rows as steps)."""
    if view == "flat":
        return x.reshape(len(x), -1)
    if view == "image":
        return x[..., None] if x.ndim in (2, 3) else x
    return x[..., None] if x.ndim == 2 else x.reshape(len(x), x.shape[1], -1)


def validate(cfg) -> None:
    """Stop with one clear sentence on the first bad data setting."""
    require(
        isinstance(cfg.get("name"), str) and cfg.name, f"data.name must be a dataset name; got {cfg.get('name')!r}."
    )
    if cfg.view not in VIEWS:
        raise choice("data.view", cfg.view, VIEWS)
    if cfg.normalization not in NORMALIZATIONS:
        raise choice("data.normalization", cfg.normalization, NORMALIZATIONS)
    number(cfg.validation_fraction, "data.validation_fraction", "a number in [0, 1)", lambda v: 0 <= v < 1)
    integer(cfg.split_seed, "data.split_seed", minimum=0)
    if cfg.name == "teacher":
        task = cfg.params.get("task", "classification")
        if task not in ("classification", "regression"):
            raise choice("data.params.task", task, ("classification", "regression"))
