"""`research export`: one row per trial x seed, curves in long format, the same in every format."""

import csv
import json

import optuna
import pyarrow.parquet as pq
import pytest
from optuna.distributions import FloatDistribution

from research import cli, export, storage


def _study(url: str) -> None:
    study = optuna.create_study(study_name="e-quick-train_loss", storage=storage.open_storage(url))
    for key, value in {"config": {"train": {"chunk_steps": 100}}, "config_hash": "abcd1234",
                       "objective": "train_loss"}.items():  # fmt: skip
        study.set_user_attr(key, value)
    space = {"alpha": FloatDistribution(0.25, 16, log=True), "learning_rate": FloatDistribution(1e-3, 1, log=True)}
    for alpha, diverged in ((1.0, [False, False, True]), (2.0, [False, False, False])):
        attrs = {"seeds": [0, 1, 2], "seed_values": [0.5 * alpha, 0.6 * alpha, float("nan")], "diverged": diverged,
                 "worker": "host:1:ab", "curves": {"train_loss": [[2.0, 1.0], [2.1, 1.1], [2.2, 1.2]]}}  # fmt: skip
        study.add_trial(optuna.trial.create_trial(params={"alpha": alpha, "learning_rate": 0.01}, distributions=space,
                                                  value=alpha, user_attrs=attrs))  # fmt: skip
    optuna.create_study(study_name="not-ours", storage=storage.open_storage(url))


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_every_trial_and_seed_is_a_row_in_every_format(fmt, tmp_path, capsys):
    url = str(tmp_path / "s.journal")
    _study(url)
    assert cli.main(["export", "--storage", url, "--out", str(tmp_path / "x"), "--format", fmt]) == 0
    assert f"trials.{fmt}: 6 rows" in capsys.readouterr().out
    trials, curves = (_read(tmp_path / "x" / f"{stem}.{fmt}", fmt) for stem in ("trials", "curves"))
    assert len(trials) == 6 and len(curves) == 12
    first = trials[0]
    assert first["study"] == "e-quick-train_loss" and first["config_hash"] == "abcd1234"
    assert float(first["alpha"]) == 1.0 and float(first["learning_rate"]) == 0.01 and int(first["seed"]) == 0
    assert float(trials[4]["value"]) == pytest.approx(1.2) and first["worker"] == "host:1:ab"
    assert trials[2]["value"] in (None, "") and str(trials[2]["diverged"]) == "True"  # NaN: missing, not "nan"
    assert [int(c["step"]) for c in curves[:2]] == [100, 200] and float(curves[1]["value"]) == 1.0


def _read(path, fmt) -> list[dict]:
    if fmt == "csv":
        with open(path) as f:
            return list(csv.DictReader(f))
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return pq.read_table(path).to_pylist()


def test_every_judged_objective_and_the_run_settings_are_columns_of_one_type_in_every_format(tmp_path):
    import pyarrow.csv
    import pyarrow.json

    url = str(tmp_path / "s.journal")
    study = optuna.create_study(study_name="e-quick-train_loss", storage=storage.open_storage(url))
    study.set_user_attr(
        "config", {"model": {"activation": "tanh", "depth": 4, "width": 32}, "train": {"chunk_steps": 100}}
    )
    study.set_user_attr("config_hash", "abcd1234")
    curves = {"train_loss": [[2.0, 1.0], [2.2, 1.2]], "val_loss": [[2.5, 2.6], [2.4, 2.3]],
              "val_error": [[0.5, 0.6], [0.4, 0.3]]}  # fmt: skip
    attrs = {"seeds": [0, 1], "seed_values": [1.0, 1.2], "diverged": [False, True], "worker": "node7:42:ab",
             "device": "NVIDIA H100 x1", "curves": curves}  # fmt: skip
    space = {"alpha": FloatDistribution(0.25, 16, log=True)}
    study.add_trial(optuna.trial.create_trial(params={"alpha": 2.0}, distributions=space, value=1.1, user_attrs=attrs))
    tables = {}
    for fmt, read in (("csv", pyarrow.csv.read_csv), ("jsonl", pyarrow.json.read_json), ("parquet", pq.read_table)):
        export.write(url, tmp_path / fmt, fmt)
        tables[fmt] = read(tmp_path / fmt / f"trials.{fmt}")
    rows = tables["parquet"].to_pylist()
    by = {(r["objective"], r["seed"]): r for r in rows}
    assert sorted({r["objective"] for r in rows}) == ["train_loss", "val_error_early_stopped", "val_loss_early_stopped"]
    assert by[("val_loss_early_stopped", 0)]["value"] == 2.5 and by[("val_error_early_stopped", 1)]["value"] == 0.3
    assert by[("train_loss", 1)]["primary"] and not by[("val_loss_early_stopped", 1)]["primary"]
    first = by[("train_loss", 0)]
    assert (first["model"], first["activation"], first["depth"], first["width"]) == ("mlp", "tanh", 4, 32)
    assert (first["host"], first["device"], first["optimizer"]) == ("node7", "NVIDIA H100 x1", "momentum")
    assert first["duration_s"] >= 0
    for fmt in ("csv", "jsonl"):  # the same type for every column with a value, whatever the format
        seen = {f.name: f.type for f in tables[fmt].schema if tables[fmt].column(f.name).null_count < len(rows)}
        assert seen == {name: tables["parquet"].schema.field(name).type for name in seen}, fmt
        assert tables[fmt].to_pylist() == rows, fmt
