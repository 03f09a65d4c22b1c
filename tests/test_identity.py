"""A study's identity is its resolved config: a changed config never joins a study made with another."""

import threading
import time

import jax
import optuna
import pytest

from research import experiment, storage, studies
from research.errors import ConfigError
from tests import helpers


def _cfg(tmp_path, data_root, *extra):
    return experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *extra))


def test_the_hash_ignores_budget_paths_and_timings_but_not_the_experiment(tmp_path, data_root):
    base = studies.config_hash(_cfg(tmp_path, data_root))
    same = _cfg(tmp_path / "elsewhere", data_root, "search.trials=99", "search.heartbeat_s=1.0",
                "search.trials_per_batch=2", "search.on_config_change='new'")  # fmt: skip
    assert studies.config_hash(same) == base and len(base) == 8
    for changed in ("train.learning_rate=0.1", "model.depth=4", "search.seeds=5", "verdict.level=0.95"):
        assert studies.config_hash(_cfg(tmp_path, data_root, changed)) != base, changed


def test_a_changed_config_stops_naming_the_changed_keys(tmp_path, data_root):
    url = str(tmp_path / "s.journal")
    first = studies.create(_cfg(tmp_path, data_root), url)
    more = studies.create(_cfg(tmp_path, data_root, "search.trials=40"), url)  # a bigger budget joins it
    assert more.study_name == first.study_name == "tiny-quick-train_loss"
    with pytest.raises(ConfigError) as err:
        studies.create(_cfg(tmp_path, data_root, "train.learning_rate=0.1", "model.depth=4"), url)
    message = str(err.value)
    assert "tiny-quick-train_loss" in message and "--on-config-change new" in message
    assert "train.learning_rate: 0.01 -> 0.1" in message and "model.depth: 3 -> 4" in message
    assert optuna.get_all_study_names(storage.open_storage(url)) == ["tiny-quick-train_loss"]  # nothing made


def test_on_config_change_new_starts_a_sibling_that_later_runs_find(tmp_path, data_root):
    url = str(tmp_path / "s.journal")
    studies.create(_cfg(tmp_path, data_root), url)
    changed = _cfg(tmp_path, data_root, "train.learning_rate=0.1", "search.on_config_change='new'")
    sibling = studies.create(changed, url)
    assert sibling.study_name == f"tiny-quick-train_loss-c{studies.config_hash(changed)}"
    assert sibling.user_attrs["config"]["train"]["learning_rate"] == 0.1
    assert studies.create(changed, url).study_name == sibling.study_name  # found again, not a third
    backend = storage.open_storage(url)
    assert studies.find(changed, backend).study_name == sibling.study_name
    assert studies.find(_cfg(tmp_path, data_root), backend).study_name == "tiny-quick-train_loss"
    assert studies.find(_cfg(tmp_path, data_root, "model.depth=5"), backend) is None


def test_a_study_records_its_hash_and_provenance(tmp_path, data_root):
    cfg = _cfg(tmp_path, data_root)
    study = studies.create(cfg, str(tmp_path / "s.journal"))
    record = study.user_attrs["provenance"]
    assert study.user_attrs["config_hash"] == studies.config_hash(cfg)
    assert record["packages"]["jax"] and record["packages"]["optuna"].startswith("5.")
    devices = jax.devices()
    assert record["device"] == f"{devices[0].device_kind} x{len(devices)}"  # what this process computes on
    assert isinstance(record["dirty"], bool) and len(record["commit"]) == 40  # the tests run in a checkout


def test_a_config_snapshot_loads_back_as_the_same_config(tmp_path):
    # What a sweep hands its workers: the validated config as JSON, read back with its tuples.
    cfg = experiment.load(f"{helpers.EXPERIMENTS}/xavier_tanh_mlp.py", "quick", [f"search.runs_dir={tmp_path}"])
    path = studies.snapshot(cfg, str(tmp_path))
    assert studies.snapshot(cfg, str(tmp_path)) == path  # one file per config, written once
    back = experiment.load(path)
    assert back.to_dict() == cfg.to_dict() and studies.config_hash(back) == studies.config_hash(cfg)
    assert isinstance(back.search.learning_rate_range, tuple) and back.search.learning_rate_range


@pytest.mark.parametrize(("text", "said"), [("{not json", "cannot be read"), ("[1, 2]", "must hold a JSON object")])
def test_a_bad_config_snapshot_is_one_sentence(tmp_path, text, said):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=said):
        experiment.load(str(path))


@pytest.mark.parametrize("change", ["stop", "new"])
def test_two_runs_with_other_configs_starting_together_never_share_a_study(tmp_path, data_root, monkeypatch, change):
    url = str(tmp_path / "s.journal")
    first = _cfg(tmp_path, data_root, f"search.on_config_change='{change}'")
    second = _cfg(tmp_path, data_root, "model.depth=4", f"search.on_config_change='{change}'")
    record = studies._record_creation

    def slow_record(study, cfg, digest):  # the creator is slow to write its config: the race's window
        time.sleep(0.5)
        record(study, cfg, digest)

    monkeypatch.setattr(studies, "_record_creation", slow_record)
    made = {}

    def start(name, cfg, delay):
        time.sleep(delay)
        try:
            made[name] = studies.create(cfg, url).study_name
        except ConfigError as err:
            made[name] = err

    runs = [threading.Thread(target=start, args=a) for a in (("first", first, 0.0), ("second", second, 0.1))]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    backend = storage.open_storage(url)
    assert made["first"] == "tiny-quick-train_loss"
    assert studies.stored_config(backend, "tiny-quick-train_loss")["model"]["depth"] == 3
    if change == "stop":
        assert isinstance(made["second"], ConfigError) and "model.depth: 3 -> 4" in str(made["second"])
    else:
        assert made["second"] == f"tiny-quick-train_loss-c{studies.config_hash(second)}"
        assert studies.stored_config(backend, made["second"])["model"]["depth"] == 4
