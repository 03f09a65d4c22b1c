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

from research import coordination, studies
from research.errors import ConfigError

FORMATS = ("csv", "parquet", "jsonl")
TRIAL_COLUMNS = ("study", "config_hash", "objective", "trial", "state", "alpha", "learning_rate", "seed",
                 "value", "diverged", "worker", "trial_value")  # fmt: skip
CURVE_COLUMNS = ("study", "config_hash", "trial", "seed", "metric", "step", "value")


def rows(url: str) -> tuple[list[dict], list[dict]]:
    """(one row per trial x seed, one row per trial x seed x metric x evaluation step) of every
    study in `url` made by this tool; a trial without per-seed values gives one row, seed None."""
    trials, curves = [], []
    for record in studies.load_all(url):  # others' studies are skipped
        digest = record.attrs.get("config_hash")
        for t in record.trials:
            trials += _trial_rows(record.name, digest, record.cfg.search.objective, t)
            curves += _curve_rows(record.name, digest, t, record.cfg.train.chunk_steps)
    return trials, curves


def _trial_rows(name: str, digest: str | None, objective: str | None, t) -> list[dict]:
    seeds = t.user_attrs.get("seeds") or [None]
    values = t.user_attrs.get("seed_values") or [t.value] * len(seeds)
    diverged = t.user_attrs.get("diverged") or [None] * len(seeds)
    base = {"study": name, "config_hash": digest, "objective": objective, "trial": t.number, "state": t.state.name,
            "alpha": t.params.get("alpha"), "learning_rate": t.params.get("learning_rate"),
            "worker": t.user_attrs.get("worker"), "trial_value": t.value}  # fmt: skip
    return [
        {**base, "seed": seed, "value": value, "diverged": div}
        for seed, value, div in zip(seeds, values, diverged, strict=False)
    ]


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
        _WRITERS[fmt](path, [_clean(r) for r in table], columns)
        written[path] = len(table)
    return written


def _clean(row: dict) -> dict:
    """NaN and infinities as missing values (None), so every format reads them back the same way."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else coordination.jsonable(v) for k, v in row.items()
    }


def _csv(path: pathlib.Path, table: list[dict], columns: tuple[str, ...]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)


def _jsonl(path: pathlib.Path, table: list[dict], columns: tuple[str, ...]) -> None:
    with open(path, "w") as f:
        for row in table:
            f.write(json.dumps({c: row[c] for c in columns}, allow_nan=False) + "\n")


def _parquet(path: pathlib.Path, table: list[dict], columns: tuple[str, ...]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(table, schema=_schema(pa, columns)), path)


def _schema(pa, columns: tuple[str, ...]):
    """Explicit column types, so an empty export or an all-missing column still has them."""
    types = {"study": pa.string(), "config_hash": pa.string(), "objective": pa.string(), "trial": pa.int64(),
             "state": pa.string(), "alpha": pa.float64(), "learning_rate": pa.float64(), "seed": pa.int64(),
             "value": pa.float64(), "diverged": pa.bool_(), "worker": pa.string(), "trial_value": pa.float64(),
             "metric": pa.string(), "step": pa.int64()}  # fmt: skip
    return pa.schema([(c, types[c]) for c in columns])


_WRITERS = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}
