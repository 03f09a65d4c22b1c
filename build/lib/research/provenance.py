"""Where a result came from: code version, dirty flag, package versions and device, recorded by
every study when it is created and by every report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

from research import __version__

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("jax", "jaxlib", "flax", "optax", "optuna", "orbax-checkpoint", "tensorflow-datasets", "numpy")


def code_version(root: str | os.PathLike = _ROOT) -> str:
    """The package version and, when `root` (this code's checkout) is a git checkout, the commit
    (.dirty with uncommitted changes to tracked files)."""
    commit, dirty = _git(root)
    if commit is None:
        return __version__
    return f"{__version__}+{commit[:10]}{'.dirty' if dirty else ''}"


def record() -> dict:
    """Code version, commit, dirty flag, package versions, Python and the accelerator in use."""
    commit, dirty = _git(_ROOT)
    return {
        "code_version": code_version(),
        "commit": commit,
        "dirty": dirty,
        "packages": {name: _version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "device": device(),
    }


def device() -> str:
    """The default JAX backend's device kind and count, e.g. 'cpu x1' or 'NVIDIA H100 x4'."""
    import jax

    devices = jax.devices()
    return f"{devices[0].device_kind} x{len(devices)}"


def _git(root: str | os.PathLike) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files differ from it), by git itself, so packed refs, worktrees
    and detached heads read right; (None, None) outside a checkout or without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head, bool(status.strip())


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
