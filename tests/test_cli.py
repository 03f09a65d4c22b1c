"""The command line: theory and probe answer, bad input is one sentence and exit 2."""

import json
import subprocess
import sys

import pytest

from research import cli


def test_theory_json_lists_every_theory(capsys):
    assert cli.main(["theory", "--activation", "relu", "--activation", "tanh", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["relu"]["forward"]["alpha"] == pytest.approx(2.0, abs=1e-6)
    assert out["tanh"]["edge_of_chaos"]["alpha"] == pytest.approx(1.0, abs=1e-6)
    assert out["tanh"]["pytorch_gain"]["alpha"] == pytest.approx(25 / 9)


def test_theory_table_marks_rules_that_do_not_apply(capsys):
    assert cli.main(["theory", "--activation", "tanh"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| tanh"))
    assert "2.153" in row and "n/a" in row  # backward-preserving 1/E[phi'^2]; He is for rectifiers


def test_probe_prints_layers_and_fitted_ratio(capsys):
    assert (
        cli.main(
            ["probe", "--activation", "relu", "--depth", "6", "--width", "64", "--alpha", "1", "--seeds", "2", "--json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out["per_layer"]["forward"]) == 6
    assert out["log_ratio_per_layer"]["forward"] == pytest.approx(-0.69, abs=0.2)


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["theory", "--activation", "swish"], "activation must be one of"),
        (["theory", "--sigma-b", "-1"], "sigma_b must be"),
        (["probe", "--depth", "0"], "--depth"),
        (["probe", "--alpha", "-1"], "--alpha"),
        (["probe", "--model", "vit"], "--model"),
        (["probe", "--mode", "sideways", "--depth", "2"], "init.mode"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(argv, field, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and "\n" not in err and err.startswith(f"research {argv[0]}: ")


def test_console_module_runs():
    done = subprocess.run(
        [sys.executable, "-m", "research", "theory", "--activation", "relu"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "| relu" in done.stdout
