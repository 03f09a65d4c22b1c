"""What optuna-dashboard shows beside Optuna's own plots: each study's objective name, a note with
alpha*, its interval and the verdicts, and the report's figures as study artifacts.

`publish` runs after a report (sweep and `research report`); figures are uploaded only when
their bytes changed, so rerunning a report adds nothing to the artifact store. `serve` puts the
dashboard behind a Host/Origin allow-list (a page of another site, or one that rebinds its DNS
name to this machine, is refused) and keeps it read-only unless write access is asked for.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import socket
import urllib.parse
import warnings
from wsgiref import simple_server

import optuna
import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from research import render, storage

_SHOWN = (".png", ".svg")  # what a browser displays; PDFs stay in the report folder
# Study attributes publishing writes are all named dashboard_* (the report's cache ignores them).
RECORDED = "dashboard_artifacts"  # where the study's figures were published


def artifacts_folder(url: str, runs_dir: str | os.PathLike) -> pathlib.Path:
    """Where figures for the storage `url` are published: artifacts/ in its home (beside a journal
    or SQLite file, else under the runs folder). Each study records it too."""
    return storage.home(url, runs_dir) / "artifacts"


def recorded_folder(backend) -> str | None:
    """The artifact folder the studies in `backend` were published to (None: never published)."""
    for summary in optuna.get_all_study_summaries(storage=backend, include_best_trial=False):
        if isinstance(summary.user_attrs.get(RECORDED), str):
            return summary.user_attrs[RECORDED]
    return None


def artifact_store(path: str | pathlib.Path) -> FileSystemArtifactStore:
    """The file-system artifact store the dashboard serves figures from."""
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(base_path=str(path))


def publish(judged: list, figures: dict[str, list[pathlib.Path]], backend, folder: str | os.PathLike) -> None:
    """For every judged study (`judging.Judged`): objective name, note, and its figures (`figures`:
    each study's PNG paths by name, PDF and SVG beside each), into the artifact store at `folder`.
    Only what changed is written: a rerun of the same report adds nothing to the storage."""
    folder = str(pathlib.Path(folder).resolve())
    store = artifact_store(folder)
    for j in judged:
        study = optuna.load_study(study_name=j.name, storage=backend)
        attrs = study.user_attrs
        if study.metric_names is None:
            with warnings.catch_warnings():  # public, marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([j.cfg.search.objective])
        note = render.note(j.name, j.record.code_version, list(j.analyses))
        if attrs.get("dashboard_note") != (digest := _digest(note.encode())):
            optuna_dashboard.save_note(study, note)
            study.set_user_attr("dashboard_note", digest)
        uploaded = dict(attrs.get("dashboard_figures", {}))
        for path in (p.with_suffix(ext) for p in figures.get(j.name, []) for ext in _SHOWN):
            if uploaded.get(path.name) != (digest := _digest(path.read_bytes())):
                upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
                uploaded[path.name] = digest
        if uploaded != attrs.get("dashboard_figures"):
            study.set_user_attr("dashboard_figures", uploaded)
        if attrs.get(RECORDED) != folder:
            study.set_user_attr(RECORDED, folder)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def guarded(app, allowed_hosts: set[str], writable: bool):
    """The WSGI `app` answering only requests whose Host (and Origin, when sent) names one of
    `allowed_hosts`, and, unless `writable`, only requests that read."""

    def app_guarded(environ, start_response):
        origin = environ.get("HTTP_ORIGIN")
        named = [environ.get("HTTP_HOST", ""), *([urllib.parse.urlsplit(origin).netloc] if origin else [])]
        if any(_hostname(netloc) not in allowed_hosts for netloc in named):
            return _refuse(start_response, "host or origin not allowed (see research dashboard --allow-host)")
        if not writable and environ.get("REQUEST_METHOD", "GET") not in READ_METHODS:
            return _refuse(start_response, "this dashboard is read-only (start it with --writable to edit)")
        return app(environ, start_response)

    return app_guarded


def serve(backend, host: str, port: int, store, *, writable: bool = False, allow_hosts=()) -> None:
    """Serve optuna-dashboard for `backend` on host:port until interrupted, guarded (`guarded`)."""
    allowed = {*LOOPBACK_NAMES, host.lower(), *(h.lower() for h in allow_hosts)}
    app = guarded(optuna_dashboard.wsgi(backend, artifact_store=store), allowed, writable)
    server_class = _IPv6Server if ":" in host else simple_server.WSGIServer
    with simple_server.make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler) as httpd:
        httpd.serve_forever()


def _hostname(netloc: str) -> str:
    """The host of a Host header or URL netloc, lower-case, without port or IPv6 brackets."""
    host = netloc.rsplit("@", 1)[-1].lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _refuse(start_response, why: str):
    start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
    return [why.encode()]


class _IPv6Server(simple_server.WSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass
