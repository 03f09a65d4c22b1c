"""Experiment configs: Python files whose `get_config(profile)` returns a ConfigDict.

Loaded by path (as Flax's and big_vision's configs are), overridden with dotted keys
(`search.trials=40`), then locked so a typo cannot add a field.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import pathlib
from collections.abc import Mapping

import ml_collections

from research import data, models, names, objectives, recipe, ridge, search, verdicts
from research.errors import ConfigError
from research.names import PROFILES


def base_config(name: str, model: str = "mlp", dataset: str = "mnist1d") -> ml_collections.ConfigDict:
    """Every section at its defaults; experiment files change what they study."""
    cfg = ml_collections.ConfigDict()
    cfg.name = name
    cfg.profile = "quick"
    cfg.model = models.default_config(model)
    cfg.data = data.default_config(dataset)
    cfg.train = recipe.default_config()
    cfg.search = search.default_config()
    cfg.verdict = verdicts.default_config()  # the decision rule, stored with every study before it runs
    return cfg


def load(path: str, profile: str = "quick", overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """The config in file `path` for `profile`, with `overrides` applied, validated and locked.

    `path` may carry arguments for `get_config` after a colon, as in big_vision:
    "experiments/zoo.py:activation=gelu,depth=30" calls get_config(profile, activation="gelu", depth=30).
    """
    path, _, suffix = str(path).partition(":")
    options = _options(suffix)
    if profile not in PROFILES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}.")
    if path.endswith(".json"):  # a config a sweep validated and snapshotted for its workers
        cfg = _snapshot(pathlib.Path(path))
    else:
        cfg = _run_get_config(pathlib.Path(path), profile, options)
    cfg.profile = profile
    apply_overrides(cfg, overrides)
    validate(cfg)
    cfg.lock()
    return cfg


def _snapshot(file: pathlib.Path) -> ml_collections.ConfigDict:
    """A config written by `studies.snapshot` (JSON: data, never code)."""
    try:
        stored = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"config snapshot {str(file)!r} cannot be read: {err}.") from None
    if not isinstance(stored, dict):
        raise ConfigError(f"config snapshot {str(file)!r} must hold a JSON object of config sections.")
    return from_json(stored)


def from_json(value: dict) -> ml_collections.ConfigDict:
    """A config from its JSON form, JSON's lists back as the tuples configs hold."""
    return ml_collections.ConfigDict(_tuples(value))


def _tuples(value):
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _run_get_config(file: pathlib.Path, profile: str, options: dict) -> ml_collections.ConfigDict:
    """Execute the experiment file (it is Python code) and call its get_config; any failure of
    that code is one sentence naming the file."""
    if file.is_dir():
        raise ConfigError(f"experiment config {str(file)!r} is a directory; give a .py file from experiments/.")
    if not file.is_file():
        raise ConfigError(f"experiment config {str(file)!r} does not exist; see experiments/ for the suite.")
    spec = importlib.util.spec_from_file_location(f"_experiment_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ConfigError(
            f"experiment config {str(file)!r} has a syntax error at line {err.lineno}: {err.msg}."
        ) from None
    except Exception as err:  # the file is user code: whatever it raises, say where
        raise ConfigError(f"experiment config {str(file)!r} failed to load: {err.__class__.__name__}: {err}.") from None
    if not hasattr(module, "get_config"):
        raise ConfigError(f"experiment config {str(file)!r} defines no get_config(profile).")
    try:
        cfg = module.get_config(profile, **options)
    except ConfigError:  # its own one sentence on a bad argument
        raise
    except TypeError as err:
        raise ConfigError(f"experiment config {str(file)!r} does not take {sorted(options)}: {err}.") from None
    except Exception as err:
        raise ConfigError(
            f"experiment config {str(file)!r}: get_config raised {err.__class__.__name__}: {err}."
        ) from None
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(
            f"experiment config {str(file)!r}: get_config must return an ml_collections.ConfigDict;"
            f" it returned {type(cfg).__name__}."
        )
    return cfg


def derive(cfg: ml_collections.ConfigDict, changes: Mapping[str, object]) -> ml_collections.ConfigDict:
    """A validated, locked copy of a loaded config with `changes` (dotted key -> value) made; the
    config itself stays as it is."""
    new = ml_collections.ConfigDict(cfg.to_dict())
    for key, value in changes.items():
        _set(new, key, value, repr(value))
    validate(new)
    new.lock()
    return new


def _options(suffix: str) -> dict:
    options = {}
    for item in filter(None, suffix.split(",")):
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"experiment arguments must look like path.py:key=value,key=value; got {item!r}.")
        try:
            options[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            options[key] = raw
    return options


def apply_overrides(cfg: ml_collections.ConfigDict, overrides) -> None:
    """Set dotted keys from "a.b=value" strings; values are Python literals or bare strings."""
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        if not sep or not key:
            raise ConfigError(f"override must look like section.field=value; got {item!r}.")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        _set(cfg, key, value, raw)


def _set(cfg: ml_collections.ConfigDict, key: str, value, shown: str) -> None:
    """Set the existing dotted field `key` to `value` (`shown`: how the user wrote it)."""
    parent, _, leaf = key.rpartition(".")
    node = cfg
    for part in parent.split(".") if parent else []:
        if part not in node:
            raise ConfigError(f"override {key!r} names no config field (no section {part!r}).")
        node = node[part]
    if leaf not in node:
        raise ConfigError(
            f"override {key!r} names no config field; {parent or 'the config'} has {sorted(node.keys())}."
        )
    try:
        node[leaf] = value
    except TypeError:
        expected = type(node[leaf]).__name__
        raise ConfigError(f"override {key!r} must be of type {expected}; got {shown!r}.") from None


def validate(cfg) -> None:
    """Check every section at once, before anything runs."""
    if not names.is_safe(cfg.name):
        raise ConfigError(
            f"name must be letters, digits, '.', '_' or '-' (it names studies and their files); got {cfg.name!r}."
        )
    models.validate(cfg.model)
    recipe.validate(cfg.train)
    search.validate(cfg.search)
    data.validate(cfg.data)
    verdicts.validate(cfg.verdict)
    for field, listed in (("search.objectives", (cfg.search.objective, *cfg.search.objectives)),
                          ("verdict.objectives", cfg.verdict.objectives)):  # fmt: skip
        for name in listed:
            objectives.check_budget(objectives.get(name), cfg.train.steps, cfg.train.chunk_steps, field)


def mnist1d_mlp(name: str, activation: str, mode: str, depth: int = 20, width: int = 128) -> ml_collections.ConfigDict:
    """The quick workhorse: a deep MLP on MNIST-1D, SGD momentum 0.9, lr 0.01, 1000 steps of 128."""
    cfg = base_config(name, model="mlp", dataset="mnist1d")
    cfg.model.update({"activation": activation, "depth": depth, "width": width})
    cfg.model.init.mode = mode
    cfg.train.update({"optimizer": "momentum", "learning_rate": 0.01, "steps": 1000, "chunk_steps": 100})
    cfg.search.update({"trials": 24, "trials_per_batch": 8, "seeds": 3})
    return cfg


def lr_profiled(
    cfg: ml_collections.ConfigDict,
    alpha_range: tuple[float, float],
    lr_range: tuple[float, float],
    alphas: int,
    lrs: int,
    seeds: int,
) -> None:
    """A fixed (alpha x learning rate) grid, geometric in both, run as one population: alpha* is
    read off the minimum over lr at each alpha (estimate.py), so an optimum found at the
    stability edge of one learning rate cannot pass for a property of the init. The lr range
    should reach past the largest stable lr of the alphas that matter."""
    cfg.search.update(
        {"sampler": "grid", "alpha_range": tuple(alpha_range), "learning_rate_range": tuple(lr_range),
         "grid_points": alphas, "lr_points": lrs, "trials": alphas * lrs, "trials_per_batch": alphas * lrs,
         "seeds": seeds}
    )  # fmt: skip


def ridge_profiled(cfg: ml_collections.ConfigDict, alphas: tuple[float, ...], seeds: int = 8, **ridge_settings) -> None:
    """The two-stage ridge design (ridge.py): a pilot over the coarse `alphas` finds the ridge
    lr*(alpha) and roughly where alpha* is, then a window of fine alphas x `search.ridge.lrs` rates
    around the ridge x `seeds` seeds, each seed with its own batch order, run as one population that
    keeps each alpha's best cells past the rung."""
    cfg.search.ridge.update({"alphas": tuple(alphas), **ridge_settings})
    cells = cfg.search.ridge.window * cfg.search.ridge.lrs
    alpha_range, lr_range = ridge.envelope(cfg.search.ridge)
    cfg.search.update(
        {"sampler": "ridge", "alpha_range": alpha_range, "learning_rate_range": lr_range, "trials": cells,
         "trials_per_batch": cells, "seeds": seeds}
    )  # fmt: skip
    cfg.train.shared_data_order = False


def compared_arms(
    cfg: ml_collections.ConfigDict, arms: tuple, lr_range: tuple[float, float], lrs: int, seeds: int
) -> None:
    """Named alphas ((label, alpha), ...) head to head, each on a grid of `lrs` learning rates,
    all with the same seeds, as one population (compare.py reads it)."""
    alphas = [a for _, a in arms]
    cfg.search.update(
        {"sampler": "grid", "arms": tuple(arms), "alpha_range": (min(alphas), max(alphas)),
         "learning_rate_range": tuple(lr_range), "lr_points": lrs, "trials": len(arms) * lrs,
         "trials_per_batch": len(arms) * lrs, "seeds": seeds}
    )  # fmt: skip


def paper_scale(cfg: ml_collections.ConfigDict) -> None:
    """The cluster profile: more data, longer training, more trials and seeds."""
    cfg.data.params.num_samples = 20000
    cfg.train.update({"steps": 3 * cfg.train.steps, "chunk_steps": 3 * cfg.train.chunk_steps})
    cfg.search.update({"trials": 200, "trials_per_batch": 16, "seeds": 5})
