"""What optuna-dashboard shows beside Optuna's own plots: each study's objective name, a note with
alpha*, its interval and the verdicts, and the report's figures as study artifacts.

`publish` runs after a report (sweep and `research report`); figures are uploaded only when
their bytes changed, so rerunning a report adds nothing to the artifact store.
"""

from __future__ import annotations

import hashlib
import pathlib
import warnings

import optuna
import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from research import render

DEFAULT_ARTIFACTS = "runs/artifacts"
_SHOWN = (".png", ".svg")  # what a browser displays; PDFs stay in the report folder


def artifact_store(path: str | pathlib.Path = DEFAULT_ARTIFACTS) -> FileSystemArtifactStore:
    """The file-system artifact store the dashboard serves figures from."""
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(base_path=str(path))


def publish(judged: list, figures: dict[str, list[pathlib.Path]], backend, store: FileSystemArtifactStore) -> None:
    """For every judged study (`report.Judged`): objective name, note, and its figures (`figures`:
    each study's PNG paths by name, PDF and SVG beside each)."""
    for j in judged:
        study = optuna.load_study(study_name=j.name, storage=backend)
        if study.metric_names is None:
            with warnings.catch_warnings():  # public, marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([j.cfg.search.objective])
        optuna_dashboard.save_note(study, render.note(j.name, j.record.code_version, list(j.analyses)))
        uploaded = dict(study.user_attrs.get("dashboard_figures", {}))
        for path in (p.with_suffix(ext) for p in figures.get(j.name, []) for ext in _SHOWN):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            if uploaded.get(path.name) != digest:
                upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
                uploaded[path.name] = digest
        study.set_user_attr("dashboard_figures", uploaded)
