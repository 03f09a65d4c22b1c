"""The confirmation report: every study's alpha* against every theory, as tables and figures.

Reads whatever studies a storage holds (studies.py) and writes report.md, report.tex, report.json
(rendered by render.py) and each study's figures (figures.py). Nothing is trained here; a study's
analyses and figures are reused from the report's cache while its trials and the code are unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

import matplotlib.pyplot as plt
import optuna

from research import (
    analysis_cache,
    compare,
    coordination,
    dashboard,
    depth_series,
    extrapolate,
    judging,
    multiplicity,
    objectives,
    provenance,
    render,
    replication,
    storage,
    studies,
)
from research import figures as _figures
from research.errors import ConfigError


def prepare(study: optuna.Study, out: str | os.PathLike, *, figures: bool = True, size: str = "double") -> list:
    """A finished study's analyses (returned) and, with `figures`, its own figures, made now and
    cached in report folder `out`, so that the next `write` there only reads them; a sweep calls
    this as each study ends."""
    out = pathlib.Path(out)
    cache = analysis_cache.StudyCache(out / ".cache")
    j = judging.judge(studies.load(study), cache)
    drawn = j.drawn
    if figures and j.analyses:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        with plt.rc_context(_figures.paper_style(size)):
            paths = _drawn(j, size, out / "figures") or _figures.study_figures(j, out / "figures")
        drawn = {"size": size, "names": [p.name for p in paths]}
    _keep(cache, j, drawn)
    return list(j.analyses)


def _keep(cache: analysis_cache.StudyCache, j: judging.Judged, drawn: dict | None) -> None:
    """Store `j`'s analyses and `drawn` figures unless its cache entry already holds exactly these."""
    if not j.cached or drawn != j.drawn:
        cache.save(j.name, j.key, list(j.analyses), drawn)


def write(
    url: str,
    out: str | os.PathLike = "runs/report",
    *,
    figures: bool = True,
    size: str = "double",
    artifacts: str | os.PathLike | None = None,
    tex: dict | None = None,
) -> pathlib.Path:
    """Write the tables (and figures, at column `size`) for every study in `url` under `out`; returns
    report.md. Trains nothing. With `artifacts` (an artifact store folder), each study's note and
    figures are published to optuna-dashboard (dashboard.py). `tex` chooses report.tex's studies,
    columns and width (`render.latex`'s keywords)."""
    with plt.rc_context(_figures.paper_style(size)):
        path, judged, drawn = _write(url, pathlib.Path(out), figures, size, tex or {})
    if artifacts is not None:
        dashboard.publish(judged, drawn, storage.open_existing(url, writable=True), artifacts)
    return path


def _write(
    url: str, out: pathlib.Path, figures: bool, size: str, tex: dict
) -> tuple[pathlib.Path, list[judging.Judged], dict]:
    cache = analysis_cache.StudyCache(out / ".cache")  # a rerun redraws only studies that changed
    judged = judging.collect(url, cache)  # first: a bad storage stops before anything is written
    judged = [j for j in judged if j.analyses]  # a design's pilot tests nothing
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        (out / "report.json").touch()
    except OSError as err:
        raise ConfigError(f"report --out {out} cannot be written: {err.strerror}.") from None
    rows = table_rows(judged)
    fdr = multiplicity.control(rows)
    replicated = replication.check(rows, studies.stored_hash)
    compared = [c for j in judged for c in comparisons(j)]
    series = extrapolate.series([j.analysis for j in judged])
    depths = depth_series.series([a for j in judged for a in j.analyses])
    whole = {"storage": storage.redact(url), "provenance": provenance.record(), "multiplicity": dataclasses.asdict(fdr),
             "replicated": replicated,
             "studies": rows,
             "series": [dataclasses.asdict(e) for e in series],
             "depth_series": [dataclasses.asdict(d) for d in depths], "comparisons": compared}  # fmt: skip
    (out / "report.json").write_text(json.dumps(coordination.jsonable(whole), indent=2, allow_nan=False))
    (out / "report.tex").write_text(render.latex(rows, **tex))
    text = (
        provenance_line(url, judged)
        + render.markdown(rows, fdr.sentence() + replication.sentence(replicated))
        + render.series_markdown(series)
        + render.depth_markdown(depths)
    )
    text += render.comparisons_markdown(compared)
    drawn: dict[str, list[pathlib.Path]] = {}  # each study's own figures (PNG; PDF and SVG beside each)
    if figures:
        for stem, group in depth_groups(judged).items():
            text += f"\n![{stem}](figures/{_figures.trainability_figure(stem, group, out / 'figures').name})\n"
        for e in series:
            text += f"\n![{e.series}](figures/{_figures.series_figure(e, out / 'figures').name})\n"
        for d in depths:
            text += f"\n![{d.series}](figures/{_figures.depth_series_figure(d, out / 'figures').name})\n"
        for j in judged:
            drawn[j.name] = _drawn(j, size, out / "figures") or _figures.study_figures(j, out / "figures")
            text += "".join(f"\n![{p.stem}](figures/{p.name})\n" for p in drawn[j.name])
    for j in judged:
        _keep(cache, j, {"size": size, "names": [p.name for p in drawn[j.name]]} if figures else j.drawn)
    (out / "report.md").write_text(text)
    return out / "report.md", judged, drawn


def _drawn(j: judging.Judged, size: str, folder: pathlib.Path) -> list[pathlib.Path] | None:
    """The figures drawn for this study under its current key at `size`, if all still exist."""
    if not j.drawn or j.drawn["size"] != size:
        return None
    paths = [folder / name for name in j.drawn["names"]]
    ok = all(p.with_suffix(ext).exists() for p in paths for ext in (".png", ".pdf", ".svg"))
    return paths if ok else None


def provenance_line(url: str, judged: list[judging.Judged]) -> str:
    """Which code ran the studies and which wrote this report, from where, and when."""
    versions = sorted({j.record.code_version for j in judged})
    used = sorted({d for j in judged for d in j.record.attrs.get("devices") or []})
    return (
        f"Report written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by {provenance.code_version()}"
        f" from {storage.redact(url)}; the studies were created by {', '.join(versions) or 'no study'}"
        f" and trained on {', '.join(used) or 'devices not recorded'}.\n\n"
    )


def table_rows(judged: list[judging.Judged]) -> list[dict]:
    """One row per study and objective it is judged on, its own first."""
    return [render.row(j.name, a) for j in judged for a in j.analyses]


def comparisons(j: judging.Judged) -> list[dict]:
    """Named arms head to head (compare.py), on each objective the study is judged on."""
    return [{"experiment": j.name, **c} for c in map(compare.head_to_head, j.analyses) if c is not None]


def depth_groups(judged: list[judging.Judged]) -> dict[str, list[judging.Judged]]:
    """Trained MLP studies of one experiment at three or more depths, everything else equal (the
    same config but for its name and model.depth), keyed by the first's name less its depth,
    shallowest first."""
    groups: dict[str, list[judging.Judged]] = {}
    for j in judged:
        if j.cfg.model.name == "mlp" and objectives.get(j.cfg.search.objective).trained:
            groups.setdefault(studies.config_hash(j.cfg, varying=("name", "model.depth")), []).append(j)
    out = {}
    for group in (sorted(g, key=lambda j: j.cfg.model.depth) for g in groups.values() if len(g) >= 3):
        out[studies.depth_stem(group[0].cfg)] = group
    return out
