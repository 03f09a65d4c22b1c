"""The confirmation report: every study's alpha* against every theory, as tables and figures.

Reads whatever studies a storage holds and writes report.md, report.tex, report.json and,
per study, the objective against alpha (fit, interval, predictions), per-layer variance
at initialisation across depth (after Glorot & Bengio 2010) and, for trained objectives,
the stored training curves (mean and range over seeds) of the trials nearest each
prediction and the empirical optimum. Nothing is trained here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import re
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # no backend forced: headless it is Agg, in a notebook inline
import numpy as np
import optuna
from matplotlib import ticker
from scipy import stats

from research import (
    analysis_cache,
    compare,
    coordination,
    extrapolate,
    models,
    objectives,
    predictions,
    probes,
    provenance,
    search,
    storage,
    theory,
    verdicts,
)
from research.errors import ConfigError


def collect(url: str, cache: analysis_cache.StudyCache | None = None) -> list[dict]:
    """One `record` per study of this project in storage `url`."""
    backend = storage.open_existing(url)
    names = optuna.get_all_study_names(storage=backend)
    studies = (optuna.load_study(study_name=name, storage=backend) for name in names)
    return [record(study, cache) for study in studies if "config" in study.user_attrs]  # else not one of ours


def record(study: optuna.Study, cache: analysis_cache.StudyCache | None = None) -> dict:
    """The study's name, analysis (estimate and verdicts) and complete trials and, with a `cache`,
    its key and the figures drawn for it under that key (if any)."""
    every = study.get_trials(deepcopy=False)
    key = analysis_cache.study_key(study, every) if cache else None
    hit = cache.load(study.study_name, key) if cache else None
    analysis, *also = hit["analyses"] if hit else verdicts.analyse_all(study)
    trials = [t for t in every if t.state.name == "COMPLETE"]
    return {"study": study.study_name, "config": analysis.cfg, "analysis": analysis, "also": also, "trials": trials,
            "code_version": study.user_attrs.get("code_version"), "key": key,
            "cached": hit is not None, "drawn": hit["figures"] if hit else None}  # fmt: skip


def folder(runs_dir: str | os.PathLike) -> pathlib.Path:
    """The report folder of a runs directory: where `research sweep` writes its closing report."""
    return pathlib.Path(runs_dir) / "report"


def prepare(study: optuna.Study, out: str | os.PathLike, *, figures: bool = True, size: str = "double") -> list:
    """A finished study's analyses (returned) and, with `figures`, its own figures, made now and
    cached in report folder `out`, so that the next `write` there only reads them; a sweep calls
    this as each study ends."""
    out = pathlib.Path(out)
    cache = analysis_cache.StudyCache(out / ".cache")
    r = record(study, cache)
    drawn = r["drawn"]
    if figures:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        with plt.rc_context(paper_style(size)):
            paths = _drawn(r, size, out / "figures") or study_figures(r, out / "figures")
        drawn = {"size": size, "names": [p.name for p in paths]}
    _keep(cache, r, drawn)
    return [r["analysis"], *r["also"]]


def _keep(cache: analysis_cache.StudyCache, r: dict, drawn: dict | None) -> None:
    """Store `r`'s analyses and `drawn` figures unless its cache entry already holds exactly these."""
    if not r["cached"] or drawn != r["drawn"]:
        cache.save(r["study"], r["key"], [r["analysis"], *r["also"]], drawn)


SIZES = {"single": 3.5, "double": 7.16}  # figure widths in inches: one and two columns of a paper


def paper_style(size: str = "double") -> dict:
    """matplotlib settings for figures a venue accepts: TrueType (Type 42) fonts in PDF, text kept
    as text in SVG, `size`'s column width, fonts that stay legible at it."""
    if size not in SIZES:
        raise ConfigError(f"report size must be one of {', '.join(SIZES)}; got {size!r}.")
    small = size == "single"
    return {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "init-scale",
            "figure.dpi": 110,
            "figure.figsize": (SIZES[size], SIZES[size] * 0.62), "font.size": 7 if small else 9,
            "axes.titlesize": 7 if small else 9, "legend.fontsize": 5 if small else 7}  # fmt: skip


def write(
    url: str,
    out: str | os.PathLike = "runs/report",
    *,
    figures: bool = True,
    size: str = "double",
    artifacts: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Write the tables (and figures, at column `size`) for every study in `url` under `out`; returns
    report.md. Trains nothing. With `artifacts` (an artifact store folder), each study's note and
    figures are published to optuna-dashboard (dashboard.py)."""
    with plt.rc_context(paper_style(size)):
        path, records = _write(url, pathlib.Path(out), figures, size)
    if artifacts is not None:
        from research import dashboard  # it imports this module

        dashboard.publish(records, storage.open_existing(url), dashboard.artifact_store(artifacts))
    return path


def _write(url: str, out: pathlib.Path, figures: bool, size: str) -> tuple[pathlib.Path, list[dict]]:
    cache = analysis_cache.StudyCache(out / ".cache")  # a rerun redraws only studies that changed
    records = collect(url, cache)  # first: a bad storage stops before anything is written
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        (out / "report.json").touch()
    except OSError as err:
        raise ConfigError(f"report --out {out} cannot be written: {err.strerror}.") from None
    rows = table_rows(records)
    compared = [c for r in records for c in comparisons(r)]
    maps = depth_groups(records)
    series = extrapolate.series([r["analysis"] for r in records])
    extrapolated = [dataclasses.asdict(e) for e in series]
    whole = {"storage": storage.redact(url), "provenance": provenance.record(), "studies": rows,
             "series": extrapolated, "comparisons": compared}  # fmt: skip
    (out / "report.json").write_text(json.dumps(coordination.jsonable(whole), indent=2, allow_nan=False))
    (out / "report.tex").write_text(latex(rows))
    text = provenance_line(url, records) + markdown(rows) + series_markdown(extrapolated)
    text += comparisons_markdown(compared)
    if figures:
        for stem, group in maps.items():
            text += f"\n![{stem}](figures/{trainability_figure(stem, group, out / 'figures').name})\n"
        for e in series:
            text += f"\n![{e.series}](figures/{series_figure(e, out / 'figures').name})\n"
        for r in records:
            paths = _drawn(r, size, out / "figures") or study_figures(r, out / "figures")
            text += "".join(f"\n![{p.stem}](figures/{p.name})\n" for p in paths)
            r["figures"] = paths  # the study's own (PNG; PDF and SVG beside each), for the dashboard
    for r in records:
        _keep(cache, r, {"size": size, "names": [p.name for p in r["figures"]]} if figures else r["drawn"])
    (out / "report.md").write_text(text)
    return out / "report.md", records


def study_figures(r: dict, folder: pathlib.Path) -> list[pathlib.Path]:
    """A study's own figures (`collect`'s record): the objective on every judged objective,
    lr*(alpha), per-layer statistics at initialisation and the stored curves; the PNG paths."""
    paths = [objective_figure(r["study"], a, folder) for a in (r["analysis"], *r["also"])]
    if r["analysis"].lr_slope is not None:
        paths.append(learning_rate_figure(r["study"], r["analysis"], folder))
    if not models.family(r["config"].model).recurrent and not search.in_series(r["config"]):
        paths.append(depth_figure(r, folder))  # a series has its own figure
    if objectives.get(r["config"].search.objective).trained:
        paths.append(curves_figure(r, folder, r["trials"]))
    return paths


def _drawn(r: dict, size: str, folder: pathlib.Path) -> list[pathlib.Path] | None:
    """The figures drawn for this study under its current key at `size`, if all still exist."""
    drawn = r.get("drawn")
    if not drawn or drawn["size"] != size:
        return None
    paths = [folder / name for name in drawn["names"]]
    ok = all(p.with_suffix(ext).exists() for p in paths for ext in (".png", ".pdf", ".svg"))
    return paths if ok else None


def provenance_line(url: str, records: list[dict]) -> str:
    """Which code ran the studies and which wrote this report, from where, and when."""
    versions = sorted({r.get("code_version") or "unknown" for r in records})
    return (
        f"Report written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by {provenance.code_version()}"
        f" from {storage.redact(url)}; the studies were created by {', '.join(versions) or 'no study'}.\n\n"
    )


def table_rows(records: list[dict]) -> list[dict]:
    """One row per study and objective it is judged on (`collect`'s records), its own first."""
    return [row(r["study"], a) for r in records for a in (r["analysis"], *r["also"])]


def row(study: str, a: verdicts.Analysis) -> dict:
    """The JSON record of one study on one objective: what was run, alpha*, one verdict per
    distinct prediction and, with a searched learning rate, lr*(alpha)'s slope."""
    cfg, est = a.cfg, a.estimate
    return {
        "experiment": study,
        "model": f"{cfg.model.name} {models.family(cfg.model).describe(cfg.model)}",
        "activation": cfg.model.activation,
        "mode": cfg.model.init.get("mode", "preset"),
        "objective": a.objective,
        "rope": a.rope,
        "estimate": est.to_json(),
        "verdicts": [dataclasses.asdict(v) for v in a.verdicts],
        "not_applicable": a.not_applicable,
        "lr_slope": a.lr_slope,
        "arms": [list(arm) for arm in cfg.search.get("arms", ())],  # named arms: judged head to head instead
        "trials": a.observations.n_trials,
        "seeds": int(a.observations.values.shape[1]),
        "observations": _observations(a.observations),
        "config": cfg.to_dict(),
    }


def _observations(obs) -> dict:
    """The raw per-trial, per-seed values an estimate came from (values: log loss for trained
    objectives, the signed log-ratio for probes)."""
    return {
        "alpha": np.exp(obs.log_alpha).tolist(),
        "learning_rate": None if obs.log_lr is None else np.exp(obs.log_lr).tolist(),
        "values": obs.values.tolist(),
        "diverged": None if obs.diverged is None else obs.diverged.tolist(),
    }


HEADER = ["study", "objective", "alpha* [95% CI]", "prediction", "alpha", "alpha*/prediction - 1 [95% CI]",
          "verdict", "regret [95% CI]"]  # fmt: skip


def table(rows: list[dict], decimals: int | None = None, with_rows: bool = False) -> list:
    """The cells of the verdict table: one line per distinct prediction of every study; numbers to
    3 significant digits, or to `decimals` places; with `with_rows`, (cells, row) pairs."""
    out = []
    for row in (r for r in rows if not r["arms"]):
        num = _number(decimals)
        first = [row["experiment"], f"{row['objective']} (ROPE ±{row['rope']:.0%})", star(row["estimate"], num)]
        for v in row["verdicts"] or [{"theories": "-", "alpha": None, "relative_error": None, "verdict": "-"}]:
            alpha = fmt(v["alpha"]) if decimals is None else fmt(v["alpha"], num)
            cells = first + [v["theories"], alpha, _error(v), v["verdict"], _regret(v)]
            out.append((cells, row) if with_rows else cells)
            first = ["", "", ""]
    return out


def _number(decimals: int | None):
    return (lambda x: f"{x:.{decimals}f}") if decimals is not None else (lambda x: f"{x:.4g}")


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table(rows)]
    notes = []
    for row in (r for r in rows if not r["arms"]):
        est = row["estimate"]
        said = [est["status"]] if est["status"] != "ok" else []
        said += list(est["warnings"])
        if row["not_applicable"]:
            said.append("n/a here: " + ", ".join(row["not_applicable"]))
        if row["lr_slope"]:
            said.append(verdicts.describe_lr_slope(row["lr_slope"]))
        if said:
            notes.append(f"- {row['experiment']} ({row['objective']}): " + "; ".join(said))
    notes += agreement(rows)
    legend = (
        "\nalpha: Var(W) = alpha * scale / fan. A prediction is *equivalent* when the 90% interval of alpha*"
        " lies inside the study's pre-registered region (ROPE) around it, *different* when it lies wholly"
        " outside, else *inconclusive*; probes are judged first against the theory of the network as run."
        " Regret: relative excess training loss at the prediction (near-optimal below the study's tolerance)."
        " docs/theory.md derives every prediction.\n\n"
    )
    return "# Where is the optimal init scale?\n\n" + "\n".join(lines) + "\n" + legend + "\n".join(notes) + "\n"


def agreement(rows: list[dict]) -> list[str]:
    """Per study judged on several objectives: whether their alpha* agree (the 95% intervals share
    a point) and whether every prediction got the same verdict from each."""
    by_study: dict[str, list[dict]] = {}
    for row in rows:
        by_study.setdefault(row["experiment"], []).append(row)
    out = []
    for study, group in by_study.items():
        located = [r for r in group if r["estimate"]["interval"]]
        if len(group) < 2 or len(located) < 2:
            continue
        lo = max(r["estimate"]["interval"][0] for r in located)
        hi = min(r["estimate"]["interval"][1] for r in located)
        verdict_sets = {tuple(v["verdict"] for v in r["verdicts"]) for r in group}
        out.append(
            f"- {study}: across {len(group)} objectives alpha* "
            + ("agree (intervals overlap)" if lo <= hi else "disagree (no alpha inside every interval)")
            + ("; every prediction gets the same verdict" if len(verdict_sets) == 1 else "; the verdicts differ")
        )
    return out


def comparisons(r: dict) -> list[dict]:
    """Named arms head to head (compare.py), on each objective the study is judged on."""
    cfg = r["config"]
    named = [(str(label), float(alpha)) for label, alpha in cfg.search.get("arms", ())]
    if not named:
        return []
    out = []
    for a in (r["analysis"], *r["also"]):
        _, tolerance, level = verdicts.rule(cfg, a.objective)
        found = compare.arms(a.observations, named)
        out.append({
            "experiment": r["study"], "objective": a.objective, "level": level, "tolerance": tolerance,
            "arms": [dataclasses.asdict(arm) for arm in found],
            "differences": [dataclasses.asdict(d) for d in compare.differences(found, tolerance, level)],
        })  # fmt: skip
    return out


def comparisons_markdown(compared: list[dict]) -> str:
    """Each arm at its best learning rate, and each arm against the first, paired by seed."""
    if not compared:
        return ""
    head = ["study", "objective", "arm", "alpha", "best lr", "mean [seed range]", "diverged",
            "vs first arm [CI]", "verdict"]  # fmt: skip
    lines = _section("Named inits head to head (each at its best learning rate; differences paired by seed)", head)
    for c in compared:
        against = {d["b"]: d for d in c["differences"]}
        first = [c["experiment"], c["objective"]]
        for arm in c["arms"]:
            v = np.asarray(arm["values"], float)
            d = against.get(arm["label"])
            vs = f"{d['relative']:+.1%} [{d['interval'][0]:+.1%}, {d['interval'][1]:+.1%}]" if d else "-"
            lines.append("| " + " | ".join(first + [
                arm["label"], f"{arm['alpha']:.4g}", fmt(arm["learning_rate"]),
                f"{np.nanmean(v):.4g} [{np.nanmin(v):.4g}, {np.nanmax(v):.4g}]", f"{arm['diverged']:.0%}",
                vs, d["verdict"] if d else "-"]) + " |")  # fmt: skip
            first = ["", ""]
    level = compared[0]["level"]
    return "\n".join(lines) + (
        f"\n\nDifferences: exp(mean over seeds of log(arm / first arm)) - 1 with its {level:.0%} interval"
        " (t on seeds - 1 df), *equivalent* inside ±`verdict.regret_tolerance`, *different* outside.\n"
    )


_DEPTH_NAME = re.compile(r"(.+)_(\d+)$")


def depth_groups(records: list[dict]) -> dict[str, list[dict]]:
    """Trained MLP studies of one experiment at three or more depths ("trainability_depth_20"),
    keyed by the experiment's stem, shallowest first."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        cfg = r["config"]
        match = _DEPTH_NAME.fullmatch(cfg.name)
        if match and cfg.model.name == "mlp" and objectives.get(cfg.search.objective).trained:
            groups.setdefault(f"{match[1]}-{cfg.profile}", []).append(r)
    return {k: sorted(g, key=lambda r: r["config"].model.depth) for k, g in groups.items() if len(g) >= 3}


def trainability_figure(stem: str, group: list[dict], folder: pathlib.Path) -> pathlib.Path:
    """Left: the (alpha, depth) map of the training loss at each alpha's best learning rate,
    relative to chance, with the mean-field trainable depth 6 xi(alpha) (Schoenholz et al. 2017).
    Right: the near-optimal band's width (loss within `verdict.regret_tolerance`) against depth."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0))
    chance = math.log(group[0]["config"].model.num_outputs)
    widths = []
    for r in group:
        a = r["analysis"]
        obs = _best_lr_per_alpha(a.observations) if a.observations.log_lr is not None else a.observations
        depth = r["config"].model.depth
        ratio = np.exp(np.nanmean(obs.values, axis=1)) / chance
        cells = left.scatter(np.exp(obs.log_alpha), np.full(obs.n_trials, depth), c=np.clip(ratio, 0, 1.2),
                             cmap="viridis", vmin=0, vmax=1.2, marker="s", s=70)  # fmt: skip
        band = a.estimate.near_optimal(verdicts.rule(r["config"])[1])
        widths.append((depth, math.log(band[1] / band[0]) if band else math.nan))
    fig.colorbar(cells, ax=left, label="training loss / chance (best lr)")
    cfg = group[0]["config"]
    unit = predictions.per_unit_s(cfg.model)
    line = np.geomspace(*cfg.search.alpha_range, 200)
    xi = np.array([theory.depth_scale(cfg.model.activation, a * unit, float(cfg.model.sigma_b)) for a in line])
    left.plot(line, np.minimum(6 * xi, 1e3), color="red", lw=1.5, label="6 xi(alpha), mean field")
    _alpha_axis(left)
    left.set_yscale("log")
    depths = [d for d, _ in widths]
    left.set_ylim(min(depths) / 1.5, max(depths) * 1.5)
    left.yaxis.set_major_locator(ticker.FixedLocator(depths))
    left.yaxis.set_major_formatter(ticker.FormatStrFormatter("%d"))
    left.set_xlabel("alpha")
    left.set_ylabel("depth")
    left.legend(fontsize=7)
    right.plot(depths, [w for _, w in widths], "o-")
    right.set_xscale("log")
    right.xaxis.set_major_locator(ticker.FixedLocator(depths))
    right.xaxis.set_major_formatter(ticker.FormatStrFormatter("%d"))
    right.set_xlabel("depth")
    right.set_ylabel("near-optimal band width, log(alpha_hi / alpha_lo)")
    fig.suptitle(f"{stem}: trainability against depth", fontsize=10)
    return _save(fig, folder / f"{stem}-trainability")


def series_markdown(series: list[dict]) -> str:
    """Extrapolated series: alpha* at each point, the intercept and its verdicts."""
    if not series:
        return ""
    head = ["series", "x", "alpha*(x)", "intercept [95% CI]", "slope b [±2 se]", "prediction", "alpha",
            "intercept/prediction - 1 [95% CI]", "verdict"]  # fmt: skip
    lines = _section("Extrapolated to the limit theory speaks of: log alpha*(x) = log a + b x", head)
    for e in series:
        points = ", ".join(f"{_level(e['axis'], x)}: {a:.4g}" for x, a in zip(e["x"], e["alphas"], strict=True))
        t = stats.t.ppf(0.975, e["df"])
        lo, hi = (e["intercept"] * math.exp(k * t * e["se"]) for k in (-1, 1))
        first = [e["series"], e["axis"], points, f"{e['intercept']:.4g} [{lo:.4g}, {hi:.4g}]",
                 f"{e['slope']:+.3g} ± {2 * e['slope_se']:.2g}: {e['slope_sign']}"]  # fmt: skip
        for v in e["verdicts"]:
            lines.append("| " + " | ".join(first + [v["theories"], fmt(v["alpha"]), _error(v), v["verdict"]]) + " |")
            first = [""] * 5
    return "\n".join(lines) + "\n\nThe intercept is judged with each study's `verdict.series_rope`.\n"


def _section(title: str, head: list[str]) -> list[str]:
    """A Markdown section's title and its table's header rows."""
    return [f"\n## {title}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def series_figure(e, folder: pathlib.Path) -> pathlib.Path:
    """alpha*(x) with 95% intervals, the weighted fit to x = 0 and every prediction at the limit."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    t = stats.t.ppf(0.975, e.df)
    alphas, ses = np.asarray(e.alphas), np.asarray(e.ses)
    err = np.stack([alphas * (1 - np.exp(-t * ses)), alphas * np.expm1(t * ses)])
    ax.errorbar(e.x, e.alphas, yerr=err, fmt="o", color="0.2", label="alpha*(x), 95% CI")
    line = np.linspace(0, max(e.x) * 1.05, 50)
    ax.plot(line, e.intercept * np.exp(e.slope * line), color="C0", label=f"fit: intercept {e.intercept:.4g}")
    for i, v in enumerate(e.verdicts):
        ax.axhline(v.alpha, color=f"C{i + 1}", ls="--", lw=1, label=f"{v.theories} {v.alpha:.4g}: {v.verdict}")
    ax.set_xlabel(e.axis)
    ax.set_ylabel("alpha*")
    ax.set_title(e.series, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, folder / f"{e.series}-series")


def latex(rows: list[dict], decimals: int = 3) -> str:
    """The verdict table as a LaTeX `table` (booktabs): caption, label, every special character
    escaped, numbers at `decimals` places, and each study's trials x seeds."""
    head = [*HEADER[:3], "trials x seeds", *HEADER[3:]]
    body = []
    for cells, r in table(rows, decimals=decimals, with_rows=True):
        size = f"{r['trials']} x {r['seeds']}" if cells[0] else ""
        body.append(" & ".join(latex_escape(c) for c in [*cells[:3], size, *cells[3:]]) + r" \\")
    caption = ("Empirical optimum alpha* of Var(W) = alpha * scale / fan with its 95\\% interval, against each"
               " prediction: equivalent when the 90\\% interval lies inside the pre-registered region of practical"
               " equivalence (ROPE), different when wholly outside, else inconclusive.")  # fmt: skip
    return "\n".join([r"\begin{table*}[t]", r"\centering", r"\small", f"\\caption{{{caption}}}",
                      r"\label{tab:init-scale}", r"\begin{tabular}{lllrlrlll}", r"\toprule",
                      " & ".join(latex_escape(h) for h in head) + r" \\", r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}", r"\end{table*}", ""])  # fmt: skip


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "*": r"$^*$",
          "<": r"$<$", ">": r"$>$"}  # fmt: skip


def latex_escape(text: str) -> str:
    """`text` safe inside a LaTeX tabular cell: every character LaTeX treats specially escaped."""
    return "".join(_LATEX.get(c, c) for c in str(text))


def objective_figure(study: str, a: verdicts.Analysis, folder: pathlib.Path) -> pathlib.Path:
    """Per-seed objective against alpha (log loss, or a probe's signed log-ratio), the fit, the 95%
    interval of alpha*, every distinct prediction and the divergence edge. With a searched
    learning rate the fit is the minimum over lr and the points are each alpha's best lr."""
    est, obs = a.estimate, a.observations
    if obs.log_lr is not None:
        obs = _best_lr_per_alpha(obs)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = np.repeat(np.exp(obs.log_alpha)[:, None], obs.values.shape[1], axis=1)
    healthy = ~obs.diverged if obs.diverged is not None else np.ones_like(obs.values, bool)
    ax.scatter(x[healthy], obs.values[healthy], s=12, alpha=0.6, color="0.3", label="trials (each seed)")
    if not healthy.all():
        ax.scatter(x[~healthy], obs.values[~healthy], marker="x", color="red", label="diverged (chance level)")
    if est.fit_alpha.size:
        ax.plot(est.fit_alpha, est.fit_value, color="C0", lw=2, label="local quadratic fit")
    if est.alpha is not None:
        ax.axvspan(*est.interval(), color="C0", alpha=0.15, label=f"alpha* = {est.alpha:.3g}, 95% CI")
    if est.divergence_edge:
        ax.axvline(est.divergence_edge[0], color="red", lw=1, label=f"divergence edge {est.divergence_edge[0]:.3g}")
    for i, (alpha, label) in enumerate(prediction_lines(a.verdicts)):
        ax.axvline(alpha, color=f"C{i + 1}", ls="--", lw=1, label=label)
    _alpha_axis(ax)
    ax.set_xlabel("alpha (Var(W) = alpha * scale / fan)")
    trained = objectives.get(a.objective).trained
    ax.set_ylabel(f"log {a.objective}" if trained else f"{a.objective} (signed)")
    ax.set_title(f"{study}, {a.objective}: {est.status}", fontsize=10)
    ax.legend(fontsize=6, loc="best")
    suffix = "" if a.objective == a.cfg.search.objective else f"-{a.objective}"
    return _save(fig, folder / f"{study}-objective{suffix}")


def prediction_lines(verdicts_: list) -> list[tuple[float, str]]:
    """One (alpha, legend label) per distinct alpha: predictions that coincide (the network as run
    at exactly He's 2) share one line and one label instead of hiding each other."""
    lines: dict[float, list[str]] = {}
    for v in verdicts_:
        lines.setdefault(round(v.alpha, 6), []).append(f"{v.theories}: {v.verdict}")
    return [(alpha, f"{alpha:.3g} ({'; '.join(labels)})") for alpha, labels in lines.items()]


def _best_lr_per_alpha(obs):
    """Each alpha's trials reduced to the learning rate with the lowest seed mean (for drawing)."""
    keep = []
    for la in np.unique(obs.log_alpha):
        rows = np.flatnonzero(obs.log_alpha == la)
        means = np.nanmean(np.where(np.isfinite(obs.values[rows]), obs.values[rows], np.inf), axis=1)
        keep.append(rows[int(np.argmin(means))])
    return obs.take(np.asarray(keep), np.arange(obs.values.shape[1]))


def learning_rate_figure(study: str, a: verdicts.Analysis, folder: pathlib.Path) -> pathlib.Path:
    """The (alpha, lr) grid's seed-mean objective as a map, lr*(alpha) from the fit, and the slope
    homogeneity predicts drawn through lr* at alpha*."""
    obs, est, slope = a.observations, a.estimate, a.lr_slope
    mean = np.nanmean(obs.values, axis=1)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    points = ax.scatter(np.exp(obs.log_alpha), np.exp(obs.log_lr), c=mean, cmap="viridis", s=60, marker="s")
    fig.colorbar(points, ax=ax, label=f"log {a.objective}, seed mean")
    diverged = obs.diverged.mean(axis=1) > 0.5 if obs.diverged is not None else np.zeros(len(mean), bool)
    ax.scatter(np.exp(obs.log_alpha[diverged]), np.exp(obs.log_lr[diverged]), marker="x", color="red",
               label="most seeds diverged")  # fmt: skip
    ax.plot(est.fit_alpha, est.fit_lr, color="k", lw=2, label=f"lr*(alpha): slope {slope['slope']:+.2f}")
    if slope["predicted"] is not None and est.alpha is not None:
        at = float(np.interp(math.log(est.alpha), np.log(est.fit_alpha), np.log(est.fit_lr)))
        line = math.exp(at) * (est.fit_alpha / est.alpha) ** slope["predicted"]
        ax.plot(est.fit_alpha, line, "k--", lw=1, label=f"homogeneity: slope {slope['predicted']:+.2f}")
    _alpha_axis(ax)
    ax.set_yscale("log")
    ax.set_ylim(est.lr_range[0] / 1.5, est.lr_range[1] * 1.5)
    ax.set_xlabel("alpha (Var(W) = alpha * scale / fan)")
    ax.set_ylabel("learning rate")
    ax.set_title(f"{study}: the learning rate profiled out", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, folder / f"{study}-learning-rate")


def depth_figure(r: dict, folder: pathlib.Path, alphas=(0.5, 1.0, 2.0, 4.0)) -> pathlib.Path:
    """Per-layer forward and backward variance at initialisation for several alphas."""
    cfg = r["config"].model
    star = r["analysis"].estimate.alpha
    arms = [float(alpha) for _, alpha in r["config"].search.get("arms", ())]
    picks = sorted(set(arms)) if arms else sorted({*alphas, *([round(star, 3)] if star else [])})
    x = probes.gaussian_inputs(cfg, jax.random.key(0), 128)
    stats = probes.grid(cfg, jnp.asarray(picks, jnp.float32), jnp.arange(2), x)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, ax in zip(("forward", "backward"), axes, strict=True):
        values = np.median(np.asarray(getattr(stats, name)), axis=1)
        for alpha, curve in zip(picks, values, strict=True):
            ax.plot(np.arange(1, len(curve) + 1), curve, label=f"alpha {alpha:g}")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("layer")
        ax.set_title({"forward": "activation variance E[h^2]", "backward": "gradient variance E[g^2]"}[name])
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{r['study']}: signal at initialisation")
    return _save(fig, folder / f"{r['study']}-depth")


def curves_figure(r: dict, folder: pathlib.Path, trials: list) -> pathlib.Path:
    """Stored training curves of the trials nearest each prediction and alpha*: mean over seeds
    with their range as a band (the report trains nothing; the curves are the study's own)."""
    a = r["analysis"]
    arms = r["config"].search.get("arms", ())
    if arms:
        targets = {str(label): float(alpha) for label, alpha in arms}
    else:
        targets = {f"{v.theories} {v.alpha:.3g}": v.alpha for v in a.verdicts}
        if a.estimate.alpha:
            targets[f"alpha* {a.estimate.alpha:.3g}"] = a.estimate.alpha
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    drawn: dict[int, tuple] = {}  # trial number -> (trial, the labels it stands for)
    for label, alpha in sorted(targets.items(), key=lambda kv: kv[1]):
        trial = _nearest(trials, alpha)
        if trial is not None and "curves" in trial.user_attrs:
            drawn.setdefault(trial.number, (trial, []))[1].append(label)
    chunk_steps = r["config"].train.chunk_steps
    for i, (trial, labels) in enumerate(drawn.values()):
        curves = np.asarray(trial.user_attrs["curves"]["train_loss"], float)  # [seeds, chunks]
        steps = chunk_steps * np.arange(1, curves.shape[1] + 1)
        lr = f", lr {trial.params['learning_rate']:.2g}" if "learning_rate" in trial.params else ""
        label = f"{', '.join(labels)} (trial alpha {trial.params['alpha']:.3g}{lr}, {len(curves)} seeds)"
        ax.plot(steps, np.nanmean(curves, axis=0), color=f"C{i}", lw=1.5, label=label)
        ax.fill_between(steps, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color=f"C{i}", alpha=0.15)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (evaluation set)")
    ax.set_yscale("log")
    ax.set_title(f"{r['study']}: seed mean and range", fontsize=10)
    if drawn:
        ax.legend(fontsize=7)
    return _save(fig, folder / f"{r['study']}-curves")


def _alpha_axis(ax) -> None:
    """A log alpha axis labelled with plain numbers (0.25, 0.5, 1, 2, ...), not powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=2.0))
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _nearest(trials: list, alpha: float):
    """The complete trial whose alpha is nearest `alpha` in log scale, at its best learning rate
    when several ran that alpha (None for no trials)."""
    return min(trials, key=lambda t: (round(abs(math.log(t.params["alpha"] / alpha)), 9), t.value), default=None)


def _save(fig, stem: pathlib.Path) -> pathlib.Path:
    """PNG, PDF and SVG of `fig` at the style's column width (its aspect kept); returns the PNG."""
    width, height = fig.get_size_inches()
    column = plt.rcParams["figure.figsize"][0]
    fig.set_size_inches(column, height * column / width)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=200)
    fig.savefig(stem.with_suffix(".pdf"))
    fig.savefig(stem.with_suffix(".svg"), metadata={"Date": None})  # same data, same bytes
    plt.close(fig)
    return stem.with_suffix(".png")


def star(est: dict, num=lambda x: f"{x:.4g}") -> str:
    """alpha* [95% interval] (or why there is none)."""
    if est["alpha"] is None:
        return est["status"]
    lo, hi = est["interval"]
    return f"{num(est['alpha'])} [{num(lo)}, {num(hi)}]"


def _level(axis: str, x: float) -> str:
    """A series member by the value it ran at: its width, or its input scale."""
    return f"n={round(1 / x)}" if axis == "1/width" else f"s={math.sqrt(x):.3g}"


def _error(v: dict) -> str:
    if v["relative_error"] is None:
        return "-"
    lo, hi = v["error_interval"]
    return f"{v['relative_error']:+.1%} [{lo:+.1%}, {hi:+.1%}]"


def _regret(v: dict) -> str:
    if v.get("regret") is None:
        return v.get("regret_verdict") or "-"
    lo, hi = v["regret_interval"] or (math.nan, math.nan)
    return f"{v['regret']:.1%} [{lo:.1%}, {hi:.1%}]: {v['regret_verdict']}"


def fmt(value, num=lambda x: f"{x:.3g}") -> str:
    """A number to 3 significant digits ('-' for none)."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else num(value)
