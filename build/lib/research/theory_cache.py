"""The theory table, kept on disk: `research theory` and `research advise` answer in about a second.

Every number in it is a pure function of the activation and sigma_b, but computing one compiles
hundreds of small JAX programs (quadratures, derivatives) that take seconds each time a process
starts. Entries are keyed by the activation's code, sigma_b and the code and library versions the
numbers come from, so an edit to the theory, an activation or a library recomputes them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import pathlib

from research import activations, names, theory
from research.theory import Prediction

_SOURCES = [pathlib.Path(theory.__file__), pathlib.Path(activations.__file__)]
_LIBRARIES = ("jax", "numpy", "scipy")


def predictions(label: str, sigma_b: float) -> tuple[list[Prediction], float]:
    """theory.predict for the activation `label` at `sigma_b`, and the depth scale at its forward
    rule, from the cache where an entry exists (computed and kept there otherwise)."""
    key = _key(label, sigma_b)
    path = names.cache_home() / "theory" / f"{key}.json" if key else None
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text())
            return [Prediction(**p) for p in stored["predictions"]], float(stored["xi"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: recompute and replace it
    preds = theory.predict(label, sigma_b)
    xi = theory.depth_scale(label, next(p.alpha for p in preds if p.theory == "forward"), sigma_b)
    if path is not None:
        _write(path, {"predictions": [vars(p) for p in preds], "xi": xi})
    return preds, xi


def _key(label: str, sigma_b: float) -> str | None:
    """The entry's name, or None for an activation whose code cannot be read (not cached)."""
    activations.get(label)  # a bad name or parameter is refused here, as theory.predict would
    code = _function_code(activations.entry(label.partition(":")[0]).make)
    if code is None:
        return None
    return hashlib.sha256(f"{_versions()}|{label}|{sigma_b!r}|".encode() + code).hexdigest()[:24]


def _function_code(fn) -> bytes | None:
    """A fingerprint of the Python function that makes an activation (an `Entry.make`): its bytecode,
    the names and constants it uses, its defaults and closed-over values; None for other callables."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    cells = [c.cell_contents for c in fn.__closure__ or ()]
    used = (code.co_names, _stable(code.co_consts), fn.__defaults__, [c for c in cells if not callable(c)])
    return code.co_code + repr(used).encode()


def _stable(consts: tuple) -> tuple:
    """Constants as text that is the same in every process (a nested function's code object
    prints its memory address: its bytecode and names stand for it)."""
    return tuple((c.co_code, c.co_names, _stable(c.co_consts)) if hasattr(c, "co_code") else c for c in consts)


@functools.cache
def _versions() -> str:
    h = hashlib.sha256()
    for path in _SOURCES:
        h.update(path.read_bytes())
    h.update("".join(f"{n}={importlib.metadata.version(n)}" for n in _LIBRARIES).encode())
    return h.hexdigest()


def _write(path: pathlib.Path, entry: dict) -> None:
    """Keep `entry` at `path` (atomically); a cache that cannot be written is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry))
        tmp.replace(path)
    except OSError:
        pass
