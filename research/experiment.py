"""Experiment configs: Python files whose `get_config(profile)` returns a ConfigDict.

Loaded by path (as Flax's and big_vision's configs are), overridden with dotted keys
(`search.trials=40`), then locked so a typo cannot add a field.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import ml_collections

from research import data, models, search, train
from research.errors import ConfigError

PROFILES = ("quick", "paper")


def base_config(name: str, model: str = "mlp", dataset: str = "mnist1d") -> ml_collections.ConfigDict:
    """Every section at its defaults; experiment files change what they study."""
    cfg = ml_collections.ConfigDict()
    cfg.name = name
    cfg.profile = "quick"
    cfg.model = models.default_config(model)
    cfg.data = data.default_config(dataset)
    cfg.train = train.default_config()
    cfg.search = search.default_config()
    return cfg


def load(path: str, profile: str = "quick", overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """The config in file `path` (or `path:profile`) for `profile`, with `overrides` applied."""
    path, _, suffix = str(path).partition(":")
    profile = suffix or profile
    if profile not in PROFILES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}.")
    file = pathlib.Path(path)
    if not file.is_file():
        raise ConfigError(f"experiment config {path!r} does not exist; see experiments/ for the suite.")
    spec = importlib.util.spec_from_file_location(f"_experiment_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"experiment config {path!r} defines no get_config(profile).")
    cfg = module.get_config(profile)
    cfg.profile = profile
    apply_overrides(cfg, overrides)
    validate(cfg)
    cfg.lock()
    return cfg


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
            raise ConfigError(f"override {key!r} must be of type {expected}; got {raw!r}.") from None


def validate(cfg) -> None:
    """Check every section at once, before anything runs."""
    models.validate(cfg.model)
    train.validate(cfg.train)
    search.validate(cfg.search)
    data.validate(cfg.data)


def study_name(cfg) -> str:
    """Studies are named after the experiment and profile."""
    return f"{cfg.name}-{cfg.profile}"
