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

from research import report

DEFAULT_ARTIFACTS = "runs/artifacts"
_SHOWN = (".png", ".svg")  # what a browser displays; PDFs stay in the report folder


def artifact_store(path: str | pathlib.Path = DEFAULT_ARTIFACTS) -> FileSystemArtifactStore:
    """The file-system artifact store the dashboard serves figures from."""
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(base_path=str(path))


def publish(records: list[dict], backend, store: FileSystemArtifactStore) -> None:
    """For every study of `records` (report.write's): objective name, note, and its figures."""
    for r in records:
        study = optuna.load_study(study_name=r["study"], storage=backend)
        if study.metric_names is None:
            with warnings.catch_warnings():  # public, marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([r["config"].search.objective])
        optuna_dashboard.save_note(study, note(r))
        uploaded = dict(study.user_attrs.get("dashboard_figures", {}))
        for path in (p.with_suffix(ext) for p in r.get("figures", []) for ext in _SHOWN):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            if uploaded.get(path.name) != digest:
                upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
                uploaded[path.name] = digest
        study.set_user_attr("dashboard_figures", uploaded)


def note(r: dict) -> str:
    """Markdown for the study's note: alpha* with its 95% interval and each prediction's verdict,
    on every objective the study is judged on."""
    lines = [f"## {r['study']}", f"Created by {r.get('code_version') or 'unknown'}.", ""]
    for a in (r["analysis"], *r["also"]):
        row = report.row(r["study"], a)
        lines.append(f"**{a.objective}** (ROPE ±{a.rope:.0%}): alpha* = {report.star(row['estimate'])}")
        for v in row["verdicts"]:
            lines.append(f"- {v['theories']} ({report.fmt(v['alpha'])}): **{v['verdict']}**")
        lines.append("")
    return "\n".join(lines)
