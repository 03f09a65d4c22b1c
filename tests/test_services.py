"""Real services: several workers against PostgreSQL, and the dashboard in a browser.

.ci/run installs and starts them (loopback only). Elsewhere a test is skipped only when
its service is truly absent; with RESEARCH_REQUIRE_SERVICES=1 (CI) absence is a failure.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from research import storage
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
def test_dashboard_serves_the_study_to_api_and_browser(tmp_path, data_root):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        helpers.service_absent("Chromium")
    journal = str(tmp_path / "studies.journal")
    study = optuna.create_study(study_name="dashboard-probe-study", storage=storage.open_storage(journal))
    study.optimize(lambda t: (t.suggest_float("alpha", 0.5, 8.0, log=True) - 2.0) ** 2, n_trials=5)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "research", "dashboard", "--storage", journal, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline, listing = time.time() + 60, None
        while time.time() < deadline and listing is None:
            try:
                listing = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=5))
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "dashboard did not answer"
        names = [s["study_name"] for s in listing["study_summaries"]]
        assert names == ["dashboard-probe-study"]
        study_id = listing["study_summaries"][0]["study_id"]
        dom = subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000", "--dump-dom",
                f"{base}/dashboard/studies/{study_id}",
            ],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        assert "dashboard-probe-study" in dom
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dashboard_refuses_a_public_host_without_expose(capsys):
    from research import cli

    assert cli.main(["dashboard", "--host", "0.0.0.0"]) == 2
    assert "--expose" in capsys.readouterr().err
