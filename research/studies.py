"""What a study is: its identity (the config's hash), its name, the studies one experiment expands
into, and the stored config upgraded to today's schema once, as one typed record per study.

Writers (`research sweep`, workers) create studies here; every reader (status, report, export,
dashboard notes, notebooks, advise) loads `Record`s here and never sees a raw stored dict.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pathlib
import time

import ml_collections
import optuna

from research import bracket, experiment, models, names, objectives, predictions, provenance, ridge, storage, train
from research import data as datalib
from research.errors import ConfigError, require

log = logging.getLogger(__name__)

# Fields that may change without splitting a study: the trial budget and its layout, the other
# objectives a sweep runs, where files go, timings and retry limits; everything else is the
# experiment a study's trials measure, so a change to it starts a new study or stops.
IDENTITY_EXCLUDED = (
    "data.data_dir",
    "train.member_block",
    "search.trials",
    "search.objectives",
    "search.trials_per_batch",
    "search.probe",
    "search.runs_dir",
    "search.checkpoint_every_chunks",
    "search.heartbeat_s",
    "search.stale_after_s",
    "search.max_retries",
    "search.poll_s",
    "search.on_config_change",
)


# --- identity ------------------------------------------------------------------------------
def config_hash(cfg, varying: tuple[str, ...] = ()) -> str:
    """8 hex digits of the resolved config's identity: every field but `IDENTITY_EXCLUDED` (and the
    `varying` ones: studies that differ only there share the hash, as a depth series does)."""
    return stored_hash(_as_dict(cfg), varying)


def changed_keys(old: dict, new: dict) -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for every identity field that differs."""
    a, b = _flat(old), _flat(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if not _excluded(k) and a.get(k) != b.get(k)]


def _as_dict(cfg) -> dict:
    return json.loads(cfg.to_json_best_effort())


def stored_hash(config: dict | None, varying: tuple[str, ...] = ()) -> str | None:
    """`config_hash` of a config as stored (a dict; None: none stored)."""
    if config is None:
        return None
    kept = {k: v for k, v in _flat(config).items() if not _excluded(k) and k not in varying}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _excluded(key: str) -> bool:
    return any(key == field or key.startswith(field + ".") for field in IDENTITY_EXCLUDED)


# --- names ---------------------------------------------------------------------------------
def study_name(cfg) -> str:
    """Studies are named after the experiment, the profile and the objective (and, in a series,
    the value: "-w256" for a width, "-s0.1" for a probe input scale)."""
    base = series_name(cfg)
    if cfg.search.stage:
        return f"{base}-{cfg.search.stage}"
    if not in_series(cfg):
        return base
    if cfg.search.series.field == "width":
        return f"{base}-w{models.width(cfg.model)}"
    return f"{base}-s{cfg.search.probe_input_scale:g}"


def series_name(cfg) -> str:
    """The experiment, profile and objective: a study's name, or a series' common stem."""
    return f"{cfg.name}-{cfg.profile}-{cfg.search.objective}"


def depth_stem(cfg) -> str:
    """What studies of one experiment at several depths share: its name less "_<depth>", and the profile."""
    return f"{cfg.name.removesuffix(f'_{cfg.model.depth}')}-{cfg.profile}"


def in_series(cfg) -> bool:
    """Whether the study is one member of a probe objective's series."""
    return bool(cfg.search.series.levels) and not objectives.get(cfg.search.objective).trained


def series_x(cfg) -> float:
    """Where the study sits on its series' axis, 0 at the limit: 1/width, or the input scale squared
    (the first layer's input variance q1 is proportional to it)."""
    if cfg.search.series.field == "width":
        return 1.0 / models.width(cfg.model)
    return float(cfg.search.probe_input_scale) ** 2


# --- the studies one experiment expands into ------------------------------------------------
def expand(cfg) -> list[ml_collections.ConfigDict]:
    """Every study a sweep of `cfg` runs, in order: one per objective it lists, for a probe
    objective with a series (search.series) one per level, and before a two-stage design its first stage;
    each a validated, locked config."""
    out = []
    for objective in tuple(cfg.search.objectives) or (cfg.search.objective,):
        chosen = probe_design(experiment.derive(cfg, {"search.objective": objective}))
        if in_series(chosen):
            out += series_members(chosen)
        else:
            out += first_stage(chosen)
            out.append(chosen)
    return out


def pilot(cfg) -> ml_collections.ConfigDict:
    """The pilot study of a ridge design (ridge.py): where each alpha's confirmatory cells go."""
    return experiment.derive(cfg, ridge.pilot_changes(cfg))


def bracket_stage(cfg) -> ml_collections.ConfigDict:
    """The first stage of a probe's bracket design (bracket.py): where its dense alphas go."""
    return experiment.derive(cfg, bracket.stage_changes(cfg))


def first_stage(cfg) -> list[ml_collections.ConfigDict]:
    """The study a two-stage design runs before `cfg`'s own (none for other designs)."""
    if cfg.search.sampler == "ridge":
        return [pilot(cfg)]
    return [bracket_stage(cfg)] if cfg.search.sampler == "bracket" else []


def probe_design(cfg) -> ml_collections.ConfigDict:
    """A probe objective's study on its own design (`search.probe`) when the experiment's design
    is about training (a learning-rate grid or named arms mean nothing at initialisation);
    otherwise, and for trained objectives, `cfg` itself."""
    if objectives.get(cfg.search.objective).trained or not (cfg.search.learning_rate_range or cfg.search.arms):
        return cfg
    p = cfg.search.probe
    return experiment.derive(cfg, {"search.sampler": p.sampler, "search.trials": p.trials,
                                   "search.trials_per_batch": p.trials_per_batch,
                                   "search.alpha_range": tuple(p.alpha_range), "search.learning_rate_range": (),
                                   "search.arms": ()})  # fmt: skip


def series_members(cfg) -> list[ml_collections.ConfigDict]:
    """One study per level of the series, each on a fixed grid design."""
    s = cfg.search.series
    require(s.field != "width" or not cfg.model.get("widths"), "search.series over width needs model.widths empty.")
    design = {"search.sampler": "grid", "search.alpha_range": tuple(s.alpha_range), "search.grid_points": s.points,
              "search.trials": s.points, "search.probe_seeds": s.seeds, "search.trials_per_batch": 1}  # fmt: skip
    field = f"model.{models.family(cfg.model).width_field}" if s.field == "width" else "search.probe_input_scale"
    return [experiment.derive(cfg, {**design, field: v}) for v in s.levels]


def snapshot(cfg, runs_dir: str) -> str:
    """Write the validated config `cfg` where its workers load it from (a JSON file named after the
    study and the config's full hash), so editing the experiment file mid-sweep changes nothing."""
    text = cfg.to_json_best_effort(sort_keys=True, indent=1)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = pathlib.Path(runs_dir) / "configs" / f"{study_name(cfg)}-{digest}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


# --- creating and finding studies ------------------------------------------------------------
def create(cfg, url: str, claim_wait_s: float = 30.0) -> optuna.Study:
    """Create or load the experiment's study (`study_name`, or with search.on_config_change='new'
    its -c<hash> sibling when the config changed). The process whose create_study succeeds records
    config, hash, theory and provenance; any other waits for that record and checks it, so two runs
    starting together with different configs never share a study."""
    backend = storage.open_storage(url)
    digest = config_hash(cfg)
    name = resolve_name(cfg, backend)
    try:
        study = optuna.create_study(study_name=name, storage=backend, direction="minimize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=backend)
        stored = _recorded_config(study, claim_wait_s)
        if stored is not None:
            return study if stored_hash(stored) == digest else create(cfg, url, claim_wait_s)  # now resolves elsewhere
    _record_creation(study, cfg, digest)  # created here, or its creator died before recording
    return study


def _recorded_config(study: optuna.Study, wait_s: float) -> dict | None:
    """The config the study's creator records right after creating it (None: none within `wait_s`)."""
    deadline = time.monotonic() + wait_s
    while (stored := study.user_attrs.get("config")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return stored


def _record_creation(study: optuna.Study, cfg, digest: str) -> None:
    study.set_user_attr("config", _as_dict(cfg))
    study.set_user_attr("config_hash", digest)
    study.set_user_attr("theory", predictions.for_model(cfg.model))  # idealised, in search units
    study.set_user_attr("code_version", provenance.code_version())
    study.set_user_attr("provenance", provenance.record())


def resolve_name(cfg, backend: optuna.storages.BaseStorage) -> str:
    """The name of the study that holds `cfg`'s trials: `study_name(cfg)` unless a study of that
    name was made with another config; then per search.on_config_change, stop naming the changed
    keys, or its sibling `<name>-c<hash>`."""
    name, digest = study_name(cfg), config_hash(cfg)
    stored = stored_config(backend, name)
    if stored is None or stored_hash(stored) == digest:
        return name
    if cfg.search.on_config_change == "new":
        return f"{name}-c{digest}"
    changed = changed_keys(stored, _as_dict(cfg))
    shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed[:6]) + ("; ..." if len(changed) > 6 else "")
    raise ConfigError(
        f"study {name} was made with another config ({shown}); run with --on-config-change new to start a"
        " new study beside it, or restore the config to continue that one."
    )


def find(cfg, backend: optuna.storages.BaseStorage) -> optuna.Study | None:
    """The existing study that holds `cfg`'s trials (same name and config hash), or None."""
    existing = set(optuna.get_all_study_names(storage=backend))
    digest = config_hash(cfg)
    for name in (study_name(cfg), f"{study_name(cfg)}-c{digest}"):
        study = optuna.load_study(study_name=name, storage=backend) if name in existing else None
        if study is not None and stored_hash(study.user_attrs.get("config")) == digest:
            return study
    return None


def stored_config(backend: optuna.storages.BaseStorage, name: str) -> dict | None:
    """The config the study `name` was made with (None: no such study, or not yet recorded)."""
    if name not in optuna.get_all_study_names(storage=backend):
        return None
    return optuna.load_study(study_name=name, storage=backend).user_attrs.get("config")


# --- reading: one typed record per study -------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Record:
    """A study as every reader sees it: its name, its config in today's schema, every trial and
    what its creator and workers recorded beside them."""

    name: str
    cfg: ml_collections.ConfigDict
    trials: tuple  # every trial (optuna.trial.FrozenTrial), in number order
    attrs: dict  # the study's user attributes as stored

    @property
    def complete(self) -> list:
        return [t for t in self.trials if t.state == optuna.trial.TrialState.COMPLETE]

    @property
    def input_moment(self) -> list | None:
        """Each probe input's mean square per position, [examples, *positions], as a probe study's
        worker recorded it (a study from before recorded the batch's mean: one example)."""
        if "probe_input_moments" in self.attrs:
            return self.attrs["probe_input_moments"]
        old = self.attrs.get("probe_input_moment")
        return None if old is None else [old]

    @property
    def code_version(self) -> str:
        return self.attrs.get("code_version") or "unknown"

    @property
    def chance_loss(self) -> float:
        """The training loss of the best constant prediction (what a diverged member reports), as
        the study's workers recorded it; for studies older than that record, from the dataset."""
        if "chance_loss" in self.attrs:
            return float(self.attrs["chance_loss"])
        return train.chance_loss(self.cfg.train.loss, datalib.load(self.cfg.data))


def load(study: optuna.Study) -> Record | None:
    """The study as a `Record`, or None when it is not one of this project's: a name outside the
    safe alphabet, no recorded config and hash, or a `config` attribute that is someone else's."""
    stored, attrs = study.user_attrs.get("config"), study.user_attrs
    if not names.is_safe(study.study_name) or not isinstance(stored, dict) or "config_hash" not in attrs:
        return None
    try:
        cfg = upgrade(stored)
    except (ConfigError, TypeError, ValueError, KeyError, AttributeError):  # a foreign dict named config
        return None
    return Record(study.study_name, cfg, tuple(study.get_trials(deepcopy=False)), dict(attrs))


def load_all(url: str) -> list[Record]:
    """Every study of this project in the existing storage `url`; others' studies are skipped,
    with one warning naming them."""
    backend = storage.open_existing(url)
    records, foreign = [], []
    for name in optuna.get_all_study_names(storage=backend):
        record = load(optuna.load_study(study_name=name, storage=backend))
        if record is None:
            foreign.append(name)
        else:
            records.append(record)
    if foreign:
        log.warning("skipped %d studies that are not this project's: %s", len(foreign), ", ".join(map(repr, foreign)))
    return records


def upgrade(stored: dict) -> ml_collections.ConfigDict:
    """A stored config in today's schema: every field today's defaults have and the study lacks is
    added at its default (stored values and their order stay), then locked against typos."""
    model, data = stored.get("model", {}).get("name", "mlp"), stored.get("data", {}).get("name", "mnist1d")
    cfg = experiment.from_json(_merged(stored, _defaults(model, data)))
    cfg.lock()
    return cfg


@functools.cache
def _defaults_json(model: str, data: str) -> str:
    return experiment.base_config("", model, data).to_json_best_effort()


def _defaults(model: str, data: str) -> dict:
    try:
        return json.loads(_defaults_json(model, data))
    except ConfigError:  # a family or dataset no longer registered: the stored fields alone
        return {}


def _merged(stored: dict, defaults: dict) -> dict:
    out = dict(stored)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict) and key not in _INIT_SPECS:
            out[key] = _merged(out[key], value)
    return out


# An init spec is either a preset or scale/mode/distribution (init.from_config): as stored, whole.
_INIT_SPECS = ("init", "readout_init", "recurrent_init")
