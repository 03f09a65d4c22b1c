"""Provenance: the commit is read by git itself (packed refs included) and a dirty tree says so."""

import os
import subprocess

import pytest

from research import provenance
from tests import helpers

ROOT = os.path.dirname(helpers.TESTS)


def test_code_version_reads_packed_refs_and_flags_a_dirty_tree(tmp_path):
    if subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", ROOT, str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "pack-refs", "--all"], check=True)  # no loose ref file left
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert not (clone / ".git" / "refs" / "heads" / "main").exists()
    assert provenance.code_version(clone).strip().endswith(f"+{head.strip()[:10]}")
    with open(clone / "README.md", "a") as f:
        f.write("\nan uncommitted change\n")
    assert provenance.code_version(clone).strip().endswith(f"+{head.strip()[:10]}.dirty")
