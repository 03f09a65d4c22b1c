"""Reuse a study's analyses and figures while its stored trials and the analysing code are unchanged.

Analysing a trained study (a resampled profile per objective) and drawing its figures (the
per-layer statistics at initialisation run the network) take tens of seconds; a report over a
finished suite would redo all of it on every call. Each study's key hashes the analysing code
(this package's sources and the numeric libraries' versions), the figure settings and everything
the study stores (its attributes and every trial), so a new trial, a changed rule or an edited
module invalidates it, and nothing else does.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import pathlib
import re
import zipfile

import ml_collections
import numpy as np

from research import estimate, verdicts

_SOURCES = pathlib.Path(__file__).parent
_LIBRARIES = ("numpy", "scipy", "matplotlib", "optuna", "jax")
_BOOKKEEPING = "dashboard_"  # the prefix of the study attributes publishing writes (dashboard.py) and no analysis reads


@functools.cache
def code_fingerprint() -> str:
    """A hash of this package's sources and the versions of the libraries its numbers come from."""
    h = hashlib.sha256()
    for path in sorted(_SOURCES.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in _LIBRARIES:
        h.update(f"{name}={importlib.metadata.version(name)}".encode())
    return h.hexdigest()


def study_key(name: str, attrs: dict, trials, settings: str = "") -> str:
    """The key of one study's analyses: code, `settings`, the study's name and attributes (less the
    reports' own bookkeeping) and every trial (number, state, parameters, values, attributes)."""
    h = hashlib.sha256((code_fingerprint() + settings + name).encode())
    h.update(_dumps({k: v for k, v in attrs.items() if not k.startswith(_BOOKKEEPING)}))
    for t in trials:
        h.update(_dumps([t.number, t.state.name, t.params, t.values, t.user_attrs]))
    return h.hexdigest()


def _dumps(value) -> bytes:
    return json.dumps(value, sort_keys=True, default=repr).encode()


class StudyCache:
    """One entry per study under `folder`: its key, analyses and figure file names, as an NPZ file of
    plain arrays and one JSON document (read with allow_pickle=False). Nothing read back can run
    code: the JSON names only the analysis records listed in `_RECORDS`, and anything else is a miss."""

    def __init__(self, folder: str | pathlib.Path):
        self.folder = pathlib.Path(folder)

    def _path(self, study: str) -> pathlib.Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", study) + ".npz")

    def load(self, study: str, key: str) -> dict | None:
        """{'key', 'analyses', 'figures'} stored under `key`, or None (absent, stale or unreadable)."""
        try:
            with np.load(self._path(study), allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            entry = _decode(json.loads(str(arrays.pop(_META))), arrays)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def save(self, study: str, key: str, analyses: list, figures: dict | None) -> None:
        """Store (atomically: a crash leaves the old entry or none) `analyses` and `figures` under `key`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        meta = json.dumps(_encode({"key": key, "analyses": analyses, "figures": figures}, arrays))
        path = self._path(study)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{_META: np.asarray(meta)}, **arrays)
        tmp.replace(path)


_META = "meta"  # the JSON document's name among the entry's arrays (array names are a0, a1, ...)


# The analysis records an entry may hold, by name: the only types decoding builds.
_RECORDS = {t.__name__: t for t in (verdicts.Analysis, verdicts.Verdict, estimate.Observations, estimate.Estimate)}


def _encode(value, arrays: dict):
    """`value` as JSON-able data; its arrays go to `arrays` (by name) and stay exact."""
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"array": name}
    if isinstance(value, ml_collections.ConfigDict):
        return {"config": _encode(value.to_dict(), arrays)}
    if dataclasses.is_dataclass(value):
        fields = {f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value)}
        return {"record": type(value).__name__, "fields": fields}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"dict": {k: _encode(v, arrays) for k, v in value.items()}}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value, arrays: dict):
    """The inverse of `_encode`; a record name outside `_RECORDS` raises KeyError."""
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    kind, inner = next(iter(value.items()))
    if kind == "array":
        return arrays[inner]
    if kind == "config":
        cfg = ml_collections.ConfigDict(_decode(inner, arrays))
        cfg.lock()
        return cfg
    if kind == "record":
        return _RECORDS[inner](**{k: _decode(v, arrays) for k, v in value["fields"].items()})
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in inner)
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in inner.items()}
    raise KeyError(kind)
