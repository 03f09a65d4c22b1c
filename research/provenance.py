"""Where a result came from: the code version a study records when it is created."""

from __future__ import annotations

import os

from research import __version__


def code_version() -> str:
    """The package version and, inside a git checkout, the commit."""
    head = os.path.join(os.path.dirname(os.path.dirname(__file__)), ".git", "HEAD")
    try:
        ref = open(head).read().strip()
        if ref.startswith("ref: "):
            ref = open(os.path.join(os.path.dirname(head), ref[5:])).read().strip()
        return f"{__version__}+{ref[:10]}"
    except OSError:
        return __version__
