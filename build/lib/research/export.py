"""`research export`: every trial x seed of every study, and the stored curves in long format, as
CSV, Parquet or JSONL, for analysis outside this tool (pandas, R, a spreadsheet).

Per-seed values live in the trials' user attributes, where `study.trials_dataframe()` leaves
them nested; here each seed is its own row, named by study, config hash and trial.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib

from research import coordination, models, objectives, studies, verdicts
from research.errors import ConfigError

FORMATS = ("csv", "parquet", "jsonl")
# One row per trial x seed x objective the study is judged on (its own, primary, and those read off
# the same stored curves), with the settings a reader groups by and where and how long it ran.
TRIAL_COLUMNS = {
    "study": "string", "config_hash": "string", "objective": "string", "primary": "bool", "trial": "int",
    "state": "string", "alpha": "float", "learning_rate": "float", "seed": "int", "value": "float",
    "diverged": "bool", "trial_value": "float", "model": "string", "activation": "string", "depth": "int",
    "width": "int", "init_mode": "string", "optimizer": "string", "steps": "int", "batch_size": "int",
    "duration_s": "float", "worker": "string", "host": "string", "device": "string",
}  # fmt: skip
CURVE_COLUMNS = {"study": "string", "config_hash": "string", "trial": "int", "seed": "int", "metric": "string",
                 "step": "int", "value": "float"}  # fmt: skip


def rows(url: str) -> tuple[list[dict], list[dict]]:
    """(one row per trial x seed x judged objective, one row per trial x seed x metric x evaluation
    step) of every study in `url` made by this tool; a trial without per-seed values gives one row
    per objective, seed None."""
    trials, curves = [], []
    for record in studies.load_all(url):  # others' studies are skipped
        digest = record.attrs.get("config_hash")
        settings = _settings(record.cfg)
        for t in record.trials:
            trials += _trial_rows(record, t, {"study": record.name, "config_hash": digest, **settings})
            curves += _curve_rows(record.name, digest, t, record.cfg.train.chunk_steps)
    return trials, curves


def _settings(cfg) -> dict:
    """The model and training settings of a study, as columns."""
    model, train = cfg.model, cfg.train
    return {"model": model.name, "activation": model.get("activation"), "depth": model.get("depth"),
            "width": models.width(model), "init_mode": model.init.get("mode", model.init.get("preset")),
            "optimizer": train.optimizer, "steps": train.steps, "batch_size": train.batch_size}  # fmt: skip


def _trial_rows(record, t, base: dict) -> list[dict]:
    seeds = t.user_attrs.get("seeds") or [None]
    diverged = t.user_attrs.get("diverged") or [None] * len(seeds)
    worker = t.user_attrs.get("worker")
    started, ended = t.datetime_start, t.datetime_complete
    base = {**base, "trial": t.number, "state": t.state.name, "alpha": t.params.get("alpha"),
            "learning_rate": t.params.get("learning_rate"), "trial_value": t.value, "worker": worker,
            "host": worker.split(":", 1)[0] if worker else None, "device": t.user_attrs.get("device"),
            "duration_s": (ended - started).total_seconds() if started and ended else None}  # fmt: skip
    out = []
    for name, values in _objective_values(record, t, len(seeds)).items():
        head = {**base, "objective": name, "primary": name == record.cfg.search.objective}
        for seed, value, div in zip(seeds, values, diverged, strict=False):
            out.append({**head, "seed": seed, "value": value, "diverged": div})
    return out


def _objective_values(record, t, n: int) -> dict[str, list]:
    """Each judged objective's per-seed values for trial `t`: the study's own as its workers stored
    them, the others read off the stored curves (where there are some)."""
    cfg = record.cfg
    out = {cfg.search.objective: t.user_attrs.get("seed_values") or [t.value] * n}
    curves = t.user_attrs.get("curves") or {}
    for objective in map(objectives.get, verdicts.judged_objectives(cfg)[1:]):
        if objective.readable(curves):
            values = objective.seed_values(curves, cfg.train.chunk_steps, cfg.verdict.loss_threshold)
            out[objective.name] = [float(v) for v in values]
    return out


def _curve_rows(name: str, digest: str | None, t, chunk_steps: int) -> list[dict]:
    out = []
    seeds = t.user_attrs.get("seeds") or []
    for metric, per_seed in (t.user_attrs.get("curves") or {}).items():
        for seed, curve in zip(seeds, per_seed, strict=False):
            out += [{"study": name, "config_hash": digest, "trial": t.number, "seed": seed, "metric": metric,
                     "step": chunk_steps * (i + 1), "value": v} for i, v in enumerate(curve)]  # fmt: skip
    return out


def write(url: str, out: str | pathlib.Path, fmt: str = "csv") -> dict[pathlib.Path, int]:
    """trials.<fmt> and curves.<fmt> under `out`; returns each file with its number of rows."""
    if fmt not in FORMATS:
        raise ConfigError(f"export --format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    trials, curves = rows(url)  # first: a bad storage stops before anything is written
    out = pathlib.Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"export --out {out} cannot be written: {err.strerror}.") from None
    written = {}
    for stem, table, columns in (("trials", trials, TRIAL_COLUMNS), ("curves", curves, CURVE_COLUMNS)):
        path = out / f"{stem}.{fmt}"
        _WRITERS[fmt](path, [_clean(r, columns) for r in table], columns)
        written[path] = len(table)
    return written


def _clean(row: dict, columns: dict[str, str]) -> dict:
    """The row in its columns' types (NaN and infinities as missing), so that every format reads
    back the same values with the same types."""
    return {c: _typed(row.get(c), kind) for c, kind in columns.items()}


def _typed(value, kind: str):
    value = coordination.jsonable(value)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return {"string": str, "int": int, "float": float, "bool": bool}[kind](value)


def _csv(path: pathlib.Path, table: list[dict], columns: dict[str, str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)


def _jsonl(path: pathlib.Path, table: list[dict], columns: dict[str, str]) -> None:
    with open(path, "w") as f:
        for row in table:
            f.write(json.dumps({c: row[c] for c in columns}, allow_nan=False) + "\n")


def _parquet(path: pathlib.Path, table: list[dict], columns: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    schema = pa.schema([(c, types[kind]) for c, kind in columns.items()])  # typed even when empty or all missing
    pq.write_table(pa.Table.from_pylist(table, schema=schema), path)


_WRITERS = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}
