"""Real services: several workers against PostgreSQL, and the dashboard in a browser.

.ci/run installs and starts them (loopback only). Elsewhere a test is skipped only when
its service is truly absent; with RESEARCH_REQUIRE_SERVICES=1 (CI) absence is a failure.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from research import experiment, report, storage
from research.worker import Worker
from tests import helpers


@pytest.mark.slow
@pytest.mark.service
def test_three_workers_on_postgresql_finish_exactly_the_budget(postgres, tmp_path, data_root):
    overrides = helpers.overrides(tmp_path, data_root, "search.trials=13")
    workers = [helpers.worker(postgres, overrides, i) for i in range(3)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert all("postgres:postgres" not in out for out in outputs)  # no password in logs
    study = optuna.load_study(study_name="tiny-quick-train_loss", storage=storage.open_storage(postgres))
    helpers.assert_exactly_once(study, 13)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.service
def test_dashboard_shows_each_study_with_its_note_and_figures_in_a_browser(tmp_path, data_root):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        helpers.service_absent("Chromium")
    journal, artifacts = str(tmp_path / "studies.journal"), tmp_path / "artifacts"
    overrides = helpers.overrides(tmp_path, data_root, "search.objective='forward_log_ratio'", "search.trials=8",
                                  "search.trials_per_batch=8", "model.depth=6", "model.width=32")  # fmt: skip
    Worker(experiment.load(helpers.TINY, "quick", overrides), journal, echo=lambda _: None).run()
    report.write(journal, tmp_path / "report", artifacts=artifacts)
    report.write(journal, tmp_path / "report", artifacts=artifacts)  # a rerun uploads nothing new
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "research", "dashboard", "--storage", journal, "--port", str(port),
         "--artifacts", str(artifacts)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        listing = _answer(f"{base}/api/studies")
        assert [s["study_name"] for s in listing["study_summaries"]] == ["tiny-quick-forward_log_ratio"]
        study_id = listing["study_summaries"][0]["study_id"]
        detail = _answer(f"{base}/api/studies/{study_id}?after=0")
        assert detail["objective_names"] == ["forward_log_ratio"]
        assert "alpha* =" in detail["note"]["body"] and "**forward_log_ratio**" in detail["note"]["body"]
        names = sorted(a["filename"] for a in detail["artifacts"])
        assert names == [
            "tiny-quick-forward_log_ratio-depth.png",
            "tiny-quick-forward_log_ratio-depth.svg",
            "tiny-quick-forward_log_ratio-objective.png",
            "tiny-quick-forward_log_ratio-objective.svg",
        ]
        png = next(a for a in detail["artifacts"] if a["filename"].endswith("objective.png"))
        with urllib.request.urlopen(f"{base}/artifacts/{study_id}/{png['artifact_id']}", timeout=10) as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        page = _dom(chromium, tmp_path, f"{base}/dashboard/studies/{study_id}")
        assert "tiny-quick-forward_log_ratio" in page and "tiny-quick-forward_log_ratio-objective.png" in page
        page = _dom(chromium, tmp_path, f"{base}/dashboard/studies/{study_id}/note")  # the note, rendered
        assert "alpha* =" in page and "as run" in page
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answer(url: str, wait_s: float = 60.0) -> dict:
    """The dashboard API's JSON at `url`, once the server answers."""
    deadline = time.time() + wait_s
    while True:
        try:
            return json.load(urllib.request.urlopen(url, timeout=5))
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def _dom(chromium: str, tmp_path, url: str) -> str:
    """The page at `url` as the real browser renders it (headless Chromium, scripts run)."""
    return subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


def test_dashboard_refuses_a_public_host_without_expose(capsys):
    from research import cli

    assert cli.main(["dashboard", "--host", "0.0.0.0"]) == 2
    assert "--expose" in capsys.readouterr().err


FRESH_OPEN = "import sys; from research import storage; storage.open_storage(sys.argv[1])"


@pytest.mark.slow
@pytest.mark.service
def test_six_workers_opening_a_fresh_postgresql_database_together_all_start(postgres):
    import uuid

    import sqlalchemy

    name = f"research_fresh_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        for _ in range(3):  # each round: six processes create Optuna's schema at once
            url = f"{postgres.rsplit('/', 1)[0]}/{name}"
            starting = [subprocess.Popen([sys.executable, "-c", FRESH_OPEN, url], stderr=subprocess.PIPE, text=True)
                        for _ in range(6)]  # fmt: skip
            errors = [p.communicate(timeout=120)[1] for p in starting]
            assert [p.returncode for p in starting] == [0] * 6, [e[-500:] for e in errors]
            with admin.connect() as db:  # empty it again for the next round
                db.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
                db.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    finally:
        with admin.connect() as db:
            db.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


SECRET = "Xq9@zz/sEcReT"


@pytest.mark.slow
@pytest.mark.service
@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_a_password_bearing_url_leaves_no_trace_in_any_output_or_file(postgres, tmp_path, data_root, form):
    import urllib.parse

    import sqlalchemy

    admin = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sqlalchemy.text("DROP ROLE IF EXISTS secretive"))
        db.execute(sqlalchemy.text(f"CREATE ROLE secretive LOGIN SUPERUSER PASSWORD '{SECRET}'"))
    admin.dispose()
    host_db = postgres.rsplit("@", 1)[1]
    quoted = urllib.parse.quote(SECRET, safe="")
    url = (f"postgresql://secretive:{quoted}@{host_db}" if form == "userinfo"
           else f"postgresql://secretive@{host_db}?sslmode=disable&password={quoted}")  # fmt: skip
    env = {**os.environ, "RESEARCH_STORAGE": url}
    extra = ["search.objective='forward_log_ratio'", "search.trials=3", "search.probe_seeds=2", "search.probe_batch=16"]
    sets = [a for o in helpers.overrides(tmp_path, data_root, *extra) for a in ("--set", o)]
    outputs = []
    for argv in (["sweep", "--config", helpers.TINY, *sets],
                 ["status"], ["status", "--json"], ["export", "--out", str(tmp_path / "export")]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "research", *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout + done.stderr)
    study = optuna.load_study(study_name="tiny-quick-forward_log_ratio", storage=storage.open_storage(url))
    outputs.append(json.dumps(study.user_attrs) + json.dumps([t.user_attrs for t in study.trials]))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "report.json" for p in files) and any(p.suffix == ".log" for p in files)
    for secret in (SECRET, quoted, "sEcReT"):
        assert not [o for o in outputs if secret in o]
        assert not [p for p in files if secret.encode() in p.read_bytes()]
