"""What lets a researcher install and cite the tool: a free distribution name, a license, a citation."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_distribution_is_init_scale_under_apache_2_with_its_license_file_and_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "init-scale"  # "research", the import package's name, is taken on PyPI
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License\n                           Version 2.0")
    extras = project["optional-dependencies"]
    assert {"test", "cuda12", "slurm", "analysis"} <= set(extras)
    assert {e.split(">=")[0] for e in extras["analysis"]} == {"jupyter", "nbconvert", "pandas"}


def test_the_citation_file_names_the_tool_its_version_and_license():
    text = (ROOT / "CITATION.cff").read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for line in ("cff-version: 1.2.0", "type: software", f"version: {version}", "license: Apache-2.0"):
        assert line in text.splitlines(), line
    assert "title: " in text and "authors:" in text
