"""Reuse a study's analyses and figures while its stored trials and the analysing code are unchanged.

Analysing a trained study (a resampled profile per objective) and drawing its figures (the
per-layer statistics at initialisation run the network) take tens of seconds; a report over a
finished suite would redo all of it on every call. Each study's key hashes the analysing code
(this package's sources and the numeric libraries' versions), the figure settings and everything
the study stores (its attributes and every trial), so a new trial, a changed rule or an edited
module invalidates it, and nothing else does.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import pathlib
import pickle
import re

_SOURCES = pathlib.Path(__file__).parent
_LIBRARIES = ("numpy", "scipy", "matplotlib", "optuna", "jax")
_BOOKKEEPING = ("dashboard_figures",)  # study attributes that reports write and no analysis reads


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
    h.update(_dumps({k: v for k, v in attrs.items() if k not in _BOOKKEEPING}))
    for t in trials:
        h.update(_dumps([t.number, t.state.name, t.params, t.values, t.user_attrs]))
    return h.hexdigest()


def _dumps(value) -> bytes:
    return json.dumps(value, sort_keys=True, default=repr).encode()


class StudyCache:
    """One pickle per study under `folder`: its key, analyses and figure file names. The folder is
    the report's own output (only its writer reads it back), so unpickling trusts no one else."""

    def __init__(self, folder: str | pathlib.Path):
        self.folder = pathlib.Path(folder)

    def _path(self, study: str) -> pathlib.Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", study) + ".pkl")

    def load(self, study: str, key: str) -> dict | None:
        """{'analyses', 'figures'} stored under `key`, or None (absent, stale or unreadable)."""
        try:
            entry = pickle.loads(self._path(study).read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def save(self, study: str, key: str, analyses: list, figures: list[str] | None) -> None:
        """Store (atomically: a crash leaves the old entry or none) `analyses` and `figures` under `key`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(study)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps({"key": key, "analyses": analyses, "figures": figures}))
        tmp.replace(path)
