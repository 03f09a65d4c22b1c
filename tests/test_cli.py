"""The command line: theory and probe answer, bad input is one sentence and exit 2."""

import json
import re
import subprocess
import sys

import pytest

from research import cli, commands


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
        (["probe", "--mode", "sideways", "--depth", "2"], "--mode: invalid choice: 'sideways' (choose from"),
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


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["probe", "--model", "vit"],
            "research probe: --model must be one of cnn, mlp, resmlp, rnn; got 'vit'.",
        ),
        (["sweep", "--config", "x.py", "--profile", "huge"], "argument --profile: invalid choice: 'huge'"),
        (["report", "--size", "poster"], "argument --size: invalid choice: 'poster' (choose from"),
        (["export", "--format", "xlsx"], "argument --format: invalid choice: 'xlsx'"),
    ],
)
def test_choices_are_one_sentence_and_exit_2(argv, said, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and "\n" not in err


def test_version_and_descriptions(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("research 0.") and "jax " in out and "optuna " in out
    assert cli.main(["--help"]) == 0
    listing = capsys.readouterr().out.split("  COMMAND\n", 1)[1].split("\n\n")[0]  # "  name  its help" lines
    helps = dict(re.findall(r"^    (\w+)\s+(.+?)(?=\n    \w|\Z)", listing, re.S | re.M))
    assert sorted(helps) == sorted(commands.COMMANDS)  # every command is listed with its help
    for command, text in helps.items():  # and its own --help opens with that help, capitalised
        assert cli.main([command, "--help"]) == 0
        description = " ".join(capsys.readouterr().out.split("\n\n")[1].split())  # usage, blank, description
        summary = " ".join(text.split())
        assert description.startswith(summary[0].upper() + summary[1:]), command


def test_config_dotted_flags_become_overrides():
    argv = ["sweep", "--config", "e.py", "--config.train.learning_rate=0.1", "--config.search.trials", "40"]
    assert cli.config_flags(argv) == ["sweep", "--config", "e.py", "--set", "train.learning_rate=0.1",
                                      "--set", "search.trials=40"]  # fmt: skip


@pytest.mark.parametrize("command", ["status", "report", "dashboard", "export"])
def test_read_only_commands_never_create_storage(command, tmp_path, capsys):
    missing = tmp_path / "typo" / "studies.journal"
    assert cli.main([command, "--storage", str(missing)]) == 2
    assert "no storage at" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    db = tmp_path / "new.db"
    assert cli.main([command, "--storage", f"sqlite:///{db}"]) == 2
    assert "no storage at" in capsys.readouterr().err and not db.exists()


def test_read_only_commands_honour_the_storage_variables(tmp_path, monkeypatch, capsys):
    import optuna

    url = str(tmp_path / "s.journal")
    from research import storage

    optuna.create_study(study_name="plain", storage=storage.open_storage(url))
    for var in ("OPTUNA_STORAGE", "RESEARCH_STORAGE"):
        monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
        monkeypatch.delenv("RESEARCH_STORAGE", raising=False)
        monkeypatch.setenv(var, url)
        assert cli.main(["status", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["storage"] == url and [s["study"] for s in out["studies"]] == ["plain"]


def test_json_is_strict_where_values_are_infinite(capsys):
    assert cli.main(["advise", "--config", "experiments/he_relu_mlp.py", "--storage", "/nonexistent.journal",
                     "--json"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON token {name}"))


@pytest.mark.slow
def test_sweep_json_is_the_report_as_strict_json_and_progress_goes_to_stderr(tmp_path, data_root, capsys):
    from tests import helpers

    overrides = helpers.overrides(tmp_path, data_root, "search.trials=3", "search.poll_s=0.2")
    argv = ["sweep", "--config", helpers.TINY, "--json", *[a for o in overrides for a in ("--set", o)]]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out, parse_constant=lambda name: pytest.fail(f"non-strict JSON token {name}"))
    assert [s["experiment"] for s in out["studies"]][0] == "tiny-quick-train_loss"
    assert out["studies"][0]["trials"] == 3 and out["provenance"]["packages"]["optuna"]
    assert "tiny-quick-train_loss: 3 trials" in captured.err  # the human progress, kept off stdout
