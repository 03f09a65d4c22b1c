"""The names the command line offers as choices, in a module that imports nothing heavy, so
`research --help` and `--version` answer without loading JAX. The registries they name
(init.py, experiment.py) import these tuples; model families and activations are open registries
(a package may add one), so the command line checks those names where they are registered. Also
the names of places and processes: safe study names, the user cache, a local process gone."""

import os
import pathlib
import re
import socket

PROFILES = ("quick", "paper")
FAN_MODES = ("fan_in", "fan_out", "fan_avg", "fixed")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform", "orthogonal", "identity")
CONFIG_CHANGES = ("stop", "new")  # search.on_config_change: when a study's config changed

# Study names become file and folder names under the runs folder: a safe alphabet, no path parts.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def is_safe(name: object) -> bool:
    """Whether `name` can name a study, and so a file under the runs folder (no '/', no '..')."""
    return isinstance(name, str) and bool(SAFE_NAME.fullmatch(name)) and ".." not in name


def cache_home() -> pathlib.Path:
    """This tool's folder in the user's cache: $XDG_CACHE_HOME/init-scale (~/.cache by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(root) / "init-scale"


def gone(host: str, pid: str) -> bool:
    """Whether the process `pid` of `host` no longer exists, as far as this machine can tell: only
    for this host (another's processes are never judged gone), and not for a live process of
    another user."""
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
