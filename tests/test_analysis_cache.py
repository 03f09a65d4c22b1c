"""A report reuses each study's analyses and figures until its trials, settings or the code change."""

import json
import pickle
import re
import threading

import numpy as np
import optuna
import pytest

from research import analysis_cache, experiment, figures, render, report, storage, studies, sweep, verdicts
from research.worker import Worker
from tests import helpers


@pytest.fixture
def probe_study(tmp_path, data_root) -> str:
    overrides = [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}", "search.objective='forward_log_ratio'",
                 "search.trials=6", "search.trials_per_batch=6", "model.depth=4", "model.width=32"]  # fmt: skip
    url = str(tmp_path / "studies.journal")
    Worker(experiment.load(helpers.TINY, "quick", overrides), url, echo=lambda _: None).run()
    return url


def _studies(out) -> list:
    return json.loads((out / "report.json").read_text())["studies"]


@pytest.mark.slow
def test_a_rerun_reuses_unchanged_studies_and_redoes_changed_ones(probe_study, tmp_path, monkeypatch):
    out = tmp_path / "report"
    report.write(probe_study, out)
    first = _studies(out)
    calls = {"analyse": 0, "draw": 0}
    analyse, draw = verdicts.analyse_all, figures.study_figures

    def counted_analyse(study):
        calls["analyse"] += 1
        return analyse(study)

    def counted_draw(r, folder):
        calls["draw"] += 1
        return draw(r, folder)

    monkeypatch.setattr(verdicts, "analyse_all", counted_analyse)
    monkeypatch.setattr(figures, "study_figures", counted_draw)
    report.write(probe_study, out, artifacts=tmp_path / "artifacts")  # publishing to the dashboard
    report.write(probe_study, out)  # (which writes to the study) changes no key
    assert calls == {"analyse": 0, "draw": 0} and _studies(out) == first  # nothing redone, same numbers

    report.write(probe_study, out, size="single")  # another figure size: figures redrawn, analyses kept
    assert calls == {"analyse": 0, "draw": 1}

    (out / "figures" / "tiny-quick-forward_log_ratio-objective.svg").unlink()  # a lost file is redrawn
    report.write(probe_study, out, size="single")
    assert calls == {"analyse": 0, "draw": 2}

    study = optuna.load_study(study_name="tiny-quick-forward_log_ratio", storage=storage.open_storage(probe_study))
    study.set_user_attr("note", "changed")  # anything stored in the study changes its key
    report.write(probe_study, out, size="single")
    assert calls == {"analyse": 1, "draw": 3}

    monkeypatch.setattr(analysis_cache, "code_fingerprint", lambda: "edited code")
    report.write(probe_study, out, size="single")
    assert calls == {"analyse": 2, "draw": 4} and _studies(out) == first


@pytest.mark.slow
def test_a_sweep_leaves_its_analyses_and_figures_for_the_report(tmp_path, data_root, monkeypatch):
    overrides = [f"search.runs_dir={tmp_path}", f"data.data_dir={data_root}", "search.objective='forward_log_ratio'",
                 "search.trials=6", "search.trials_per_batch=6", "model.depth=4", "model.width=32"]  # fmt: skip
    cfg = experiment.load(helpers.TINY, "quick", overrides)
    said = []
    with sweep.closing_in_background() as closing:
        study = sweep.run(cfg, None, 1, echo=said.append, closing=closing)
    assert said[-1].startswith(f"{study.study_name}: 6 finished trials")

    def no_work(*args, **kwargs):
        raise AssertionError("the report analysed or drew a study the sweep had just closed")

    monkeypatch.setattr(verdicts, "analyse_all", no_work)
    monkeypatch.setattr(figures, "study_figures", no_work)
    report.write(str(tmp_path / "studies.journal"), tmp_path / "report")
    assert _studies(tmp_path / "report")[0]["estimate"]["n_trials"] == 6
    drawn = re.findall(r"\(figures/([^)]+[.]png)\)", (tmp_path / "report" / "report.md").read_text())
    assert drawn and all((tmp_path / "report" / "figures" / name).exists() for name in drawn)


def test_closing_work_runs_in_order_and_its_first_error_is_raised_on_leaving():
    done = []

    def fail():
        raise ValueError("bad study")

    with pytest.raises(ValueError, match="bad study"):
        with sweep.closing_in_background() as closing:
            closing(done.append, 1)
            closing(fail)
            closing(done.append, 2)
    assert done == [1, 2]  # an error does not stop the jobs after it


def test_an_interrupted_sweep_drops_closing_work_not_yet_started():
    done, release = [], threading.Event()
    with pytest.raises(KeyboardInterrupt):
        with sweep.closing_in_background() as closing:
            closing(release.wait, 30)  # the running job holds the one thread while the interrupt cancels
            closing(done.append, 1)
            threading.Timer(1.0, release.set).start()  # then lets the shutdown's wait end
            raise KeyboardInterrupt
    assert done == []


def test_an_unreadable_or_stale_entry_is_a_miss(tmp_path):
    cache = analysis_cache.StudyCache(tmp_path)
    cache.save("a/b c", "k1", ["analysis"], None)
    assert cache.load("a/b c", "k1") == {"key": "k1", "analyses": ["analysis"], "figures": None}
    assert cache.load("a/b c", "k2") is None and cache.load("other", "k1") is None
    next(tmp_path.glob("*.npz")).write_bytes(b"not an entry")
    assert cache.load("a/b c", "k1") is None


def test_cached_analyses_come_back_equal_and_their_report_rows_identical(probe_study, tmp_path):
    (record,) = studies.load_all(probe_study)
    analyses = verdicts.analyse_all(record)
    cache = analysis_cache.StudyCache(tmp_path / "cache")
    cache.save(record.name, "k", analyses, {"size": "double", "names": ["x.png"]})
    back = cache.load(record.name, "k")
    assert back["figures"] == {"size": "double", "names": ["x.png"]}
    assert [render.row(record.name, a) for a in back["analyses"]] == [render.row(record.name, a) for a in analyses]
    assert back["analyses"][0].estimate.interval() == analyses[0].estimate.interval()


def test_a_crafted_entry_never_runs_code(tmp_path):
    # Whoever can write the runs folder must not be able to run code in the next `research report`.
    cache = analysis_cache.StudyCache(tmp_path)
    witness = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(witness), "w"))

    np.savez(tmp_path / "s.npz", meta=np.asarray(json.dumps({"dict": {"key": "k"}})),
             a0=np.array([Payload()], dtype=object))  # fmt: skip
    assert cache.load("s", "k") is None and not witness.exists()  # object arrays are refused, not unpickled
    (tmp_path / "s.pkl").write_bytes(pickle.dumps({"key": "k", "analyses": [Payload()], "figures": None}))
    (tmp_path / "s.npz").unlink()
    assert cache.load("s", "k") is None and not witness.exists()  # an old-style pickle is never read
    forged = {"dict": {"key": "k", "analyses": [{"record": "Popen", "fields": {"args": "touch ran"}}]}}
    np.savez(tmp_path / "s.npz", meta=np.asarray(json.dumps(forged)))
    assert cache.load("s", "k") is None and not witness.exists()  # only the analysis records are built
