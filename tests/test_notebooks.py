"""The analysis notebooks run headless against a tiny study and draw their figures."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from research import experiment
from research.worker import Worker
from tests import helpers

ANALYSIS = pathlib.Path(__file__).resolve().parent.parent / "analysis"


@pytest.fixture(scope="module")
def tiny_storage(tmp_path_factory, data_root):
    root = tmp_path_factory.mktemp("notebook_study")
    overrides = [f"search.runs_dir={root}", f"data.data_dir={data_root}", "search.objective='forward_log_ratio'",
                 "search.trials=10", "search.trials_per_batch=5", "model.depth=8", "model.width=64"]  # fmt: skip
    url = str(root / "studies.journal")
    Worker(experiment.load(helpers.TINY, "quick", overrides), url, echo=lambda _: None).run()
    return url, root


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.name for p in ANALYSIS.glob("*.ipynb")))
def test_notebook_executes_against_a_tiny_study(name, tiny_storage, monkeypatch):
    url, root = tiny_storage
    out = root / name.removesuffix(".ipynb")
    monkeypatch.setenv("RESEARCH_STORAGE", url)
    monkeypatch.setenv("RESEARCH_REPORT_OUT", str(out))
    monkeypatch.setenv("RESEARCH_STUDIES", "tiny-")  # the notebooks' study filter, pointed at the tiny study
    notebook = nbformat.read(ANALYSIS / name, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ANALYSIS)}}
    ).execute()
    text = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
        for c in notebook.cells
        for o in c.get("outputs", [])
    )
    assert "1 studies in" in text and "tiny-quick-forward_log_ratio" in text and "no study in" not in text
    shown = sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))
    assert shown >= 1  # figures display inline, not only on disk
    assert any((out / "figures").glob("*.png")) and any((out / "figures").glob("*.pdf"))
