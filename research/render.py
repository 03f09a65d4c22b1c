"""One renderer: a study's analyses as a JSON row, terminal text, Markdown, LaTeX and a dashboard note.

Pure functions of `verdicts.Analysis`, `extrapolate.Extrapolation` and `compare.head_to_head`
records; the sweep's summary, `research status`, the report and the dashboard all print
through here, so a number reads the same wherever it appears.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from research import compare, models, objectives, ridge, verdicts

HEADER = ["study", "objective", "alpha* [95% CI]", "prediction", "alpha", "alpha*/prediction - 1 [95% CI]",
          "verdict", "regret [95% CI]"]  # fmt: skip


# --- the JSON row: the one structured form every other rendering reads -------------------------
def row(study: str, a: verdicts.Analysis) -> dict:
    """The JSON record of one study on one objective: what was run, alpha*, one verdict per
    distinct prediction and, with a searched learning rate, lr*(alpha)'s slope."""
    cfg, est = a.cfg, a.estimate
    return {
        "experiment": study,
        "model": f"{cfg.model.name} {models.family(cfg.model).describe(cfg.model)}",
        "activation": cfg.model.activation,
        "mode": cfg.model.init.get("mode", "preset"),  # an init spec is a preset or a mode
        "objective": a.objective,
        "rope": a.rope,
        "estimate": est.to_json(),
        "verdicts": [dataclasses.asdict(v) for v in a.verdicts],
        "not_applicable": a.not_applicable,
        "lr_slope": a.lr_slope,
        "rule_note": a.rule_note,
        "arms": [list(arm) for arm in cfg.search.arms],  # named arms: judged head to head instead
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


# --- numbers ------------------------------------------------------------------------------------
def fmt(value, num=lambda x: f"{x:.3g}") -> str:
    """A number to 3 significant digits ('-' for none)."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else num(value)


def star(est: dict, num=lambda x: f"{x:.4g}") -> str:
    """alpha* [95% interval] (or why there is none)."""
    if est["alpha"] is None:
        return est["status"]
    lo, hi = est["interval"]
    return f"{num(est['alpha'])} [{num(lo)}, {num(hi)}]"


def relative_error(v: dict) -> str:
    if v["relative_error"] is None:
        return "-"
    lo, hi = v["error_interval"]
    return f"{v['relative_error']:+.1%} [{lo:+.1%}, {hi:+.1%}]"


def regret(v: dict) -> str:
    if v.get("regret") is None:
        return v.get("regret_verdict") or "-"
    lo, hi = v["regret_interval"] or (math.nan, math.nan)
    return f"{v['regret']:.1%} [{lo:.1%}, {hi:.1%}]: {v['regret_verdict']}"


def intercept(e) -> str:
    """A series' intercept with its 95% interval."""
    lo, hi = e.interval(0.95)
    return f"{e.intercept:.4g} [{lo:.4g}, {hi:.4g}]"


# --- terminal text (sweep and `research status`) --------------------------------------------------
def summary(name: str, counts: dict, analyses: list[verdicts.Analysis] | None, seconds: float | None = None) -> str:
    """A study's trial counts, then alpha* and the verdict on every distinct prediction, for each
    objective it is judged on (None: not a study of this project)."""
    took = f" in {seconds / 60:.1f} min" if seconds is not None else ""
    lines = [
        f"{name}: {counts['finished']} finished trials ({counts['complete']} complete, {counts['pruned']} pruned){took}"
    ]
    if analyses is None:
        return "\n".join([*lines, "  not a study of this project: no estimate"])
    for analysis in analyses:
        lines += _judged(analysis)
    return "\n".join(lines)


def _judged(analysis: verdicts.Analysis) -> list[str]:
    compared = compare.head_to_head(analysis)
    if compared is not None:
        return _head_to_head(compared)
    est = analysis.estimate
    status = _status(est.status, est.design)
    if est.alpha is None:
        return [f"  {analysis.objective}: alpha* {status}"]
    lo, hi = est.interval()
    lines = [
        f"  {analysis.objective}: alpha* = {est.alpha:.4g} [{lo:.4g}, {hi:.4g}] ({status}); ROPE ±{analysis.rope:.0%}"
    ]
    for v in analysis.verdicts:
        regret_ = f", regret {v.regret:.1%}: {v.regret_verdict}" if v.regret is not None else ""
        fragile = f" (fragile: {v.fragile})" if v.fragile else ""
        lines.append(f"    {v.theories} {v.alpha:.4g}: {v.verdict}{regret_}{fragile}")
    if analysis.lr_slope:
        lines.append(f"    {lr_slope(analysis.lr_slope)}")
    return lines + [f"    note: {w}" for w in est.warnings]


def _head_to_head(c: dict) -> list[str]:
    """Named arms at their best learning rates and each against the first, paired by seed."""
    lines = [f"  {c['objective']}: " + "; ".join(
        f"{a['label']} (alpha {a['alpha']:.4g}, lr {a['learning_rate']:.2g}) {sum(a['values']) / len(a['values']):.4g}"
        if a["learning_rate"] else f"{a['label']} (alpha {a['alpha']:.4g}) {sum(a['values']) / len(a['values']):.4g}"
        for a in c["arms"])]  # fmt: skip
    for d in c["differences"]:
        lo, hi = d["interval"]
        lines.append(f"    {d['b']} vs {d['a']}: {d['relative']:+.1%} [{lo:+.1%}, {hi:+.1%}] ({c['level']:.0%}):"
                     f" {d['verdict']}")  # fmt: skip
    return lines


def series_summary(e) -> str:
    """A series' intercept at the limit and the verdict on every prediction there."""
    lines = [
        f"{e.series}, extrapolated to {e.axis} -> 0: alpha* = {intercept(e)},"
        f" slope {e.slope:+.3g} ± {2 * e.slope_se:.2g} ({e.slope_sign})" + (f"; {e.note}" if e.note else "")
    ]
    return "\n".join(lines + [f"  {v.theories} {v.alpha:.4g}: {v.verdict}" for v in e.verdicts])


def lr_slope(s: dict) -> str:
    """One line: the measured slope of lr*(alpha), homogeneity's two and the verdicts."""
    lo, hi = s["interval"]
    measured = f"lr*(alpha) slope {s['slope']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    if not s["predicted"]:
        return measured + " (homogeneity predicts none for this network)"
    return (
        measured
        + " vs homogeneity's "
        + ", ".join(f"{name} {p:+.2f}: {s['verdicts'][name]}" for name, p in s["predicted"].items())
    )


# --- Markdown -------------------------------------------------------------------------------------
def table(rows: list[dict], decimals: int | None = None, with_rows: bool = False) -> list:
    """The cells of the verdict table: one line per distinct prediction of every study; numbers to
    3 significant digits, or to `decimals` places; with `with_rows`, (cells, row) pairs."""
    out = []
    for r in (r for r in rows if not r["arms"]):
        num = (lambda x: f"{x:.{decimals}f}") if decimals is not None else (lambda x: f"{x:.4g}")
        first = [r["experiment"], f"{r['objective']} (ROPE ±{r['rope']:.0%})", star(r["estimate"], num)]
        for v in r["verdicts"] or [{"theories": "-", "alpha": None, "relative_error": None, "verdict": "-"}]:
            alpha = fmt(v["alpha"]) if decimals is None else fmt(v["alpha"], num)
            cells = first + [v["theories"], alpha, relative_error(v), v["verdict"], regret(v)]
            out.append((cells, r) if with_rows else cells)
            first = ["", "", ""]
    return out


def markdown(rows: list[dict], multiplicity: str = "") -> str:
    """The verdict table, its legend (with the `multiplicity` control's sentence) and a note per
    study (status, warnings, fragile or FDR-adjusted verdicts, lr*(alpha), agreement)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table(rows)]
    notes = []
    for r in (r for r in rows if not r["arms"]):
        est = r["estimate"]
        said = [_status(est["status"], est.get("design", ""))] if est["status"] != "ok" else []
        said += [r["rule_note"]] if r.get("rule_note") else []
        said += list(est["warnings"])
        if r["not_applicable"]:
            said.append("n/a here: " + ", ".join(r["not_applicable"]))
        if r["lr_slope"]:
            said.append(lr_slope(r["lr_slope"]))
        said += [
            f"{v['theories']} {v['alpha']:.4g}: fragile ({v['fragile']})" for v in r["verdicts"] if v.get("fragile")
        ]
        said += [f"{v['theories']} {v['alpha']:.4g}: fdr ({v['fdr']})" for v in r["verdicts"] if v.get("fdr")]
        said += [f"{v['theories']} {v['alpha']:.4g}: {v['replication']}" for v in r["verdicts"] if v.get("replication")]
        if said:
            notes.append(f"- {r['experiment']} ({r['objective']}): " + "; ".join(said))
    notes += agreement(rows)
    notes += ["", *(line for r in rows if not r["arms"] for line in raw_grid(r))]
    legend = (
        "\nalpha: Var(W) = alpha * scale / fan. A prediction is *equivalent* when the 90% interval of alpha*"
        " lies inside the study's pre-registered region (ROPE) around it, *different* when it lies wholly"
        " outside, else *inconclusive*; probes are judged first against the theory of the network as run."
        " Regret: relative excess training loss at the prediction (near-optimal below the study's tolerance)."
        " A decisive verdict that one of the study's pre-registered analysis variants does not give is"
        f" inconclusive (fragile). {multiplicity} docs/theory.md derives every prediction.\n\n"
    )
    return "# Where is the optimal init scale?\n\n" + "\n".join(lines) + "\n" + legend + "\n".join(notes) + "\n"


def _status(status: str, design: str = "") -> str:
    """A status in words: what a reader may and may not conclude from it."""
    if design == "crossing" and status in ("flat", "edge"):  # a probe's zero (crossing.py)
        return {"flat": "flat: the log-ratio's slope at its zero is not resolved from 0; no zero is located",
                "edge": "edge: the log-ratio does not change sign over the alphas run"}[status]  # fmt: skip
    return {"flat": "flat: no optimum in range at this budget (no alpha is resolved from the best)",
            "untrainable": "untrainable: every alpha at chance level (or none reached the threshold); no verdict",
            "edge": "edge: the least value sits at the end of the alphas run"}.get(status, status)  # fmt: skip


def raw_grid(r: dict) -> list[str]:
    """The data a trained study's profile summarises, per alpha: the cells that trained to the end,
    the best of them by the seeds that did not diverge (geometric mean; for steps to a threshold
    the median, a seed that never reached it counting as more than any), the seeds' spread and how
    many diverged or never reached it (censored, never counted at chance level or twice the steps);
    a ridge design's alphas halving stopped whole are listed as such."""
    obs = r["observations"]
    objective = objectives.get(r["objective"])
    if obs["learning_rate"] is None or not objective.trained:
        return []
    steps = objective.reduce == "steps_to"
    alpha, lr = np.asarray(obs["alpha"]), np.asarray(obs["learning_rate"])
    values, diverged = np.asarray(obs["values"], float), np.asarray(obs["diverged"], bool)
    never = values > math.log(r["config"]["train"]["steps"]) + 1e-6 if steps else np.zeros_like(diverged)
    censored = diverged | never
    what = "median steps" if steps else "geometric mean"
    lines = [f"Raw data, {r['experiment']} ({r['objective']}): per alpha, its best cell among those that trained"
             f" to the end ({what} over its seeds that did not diverge{' or never reached it' if steps else ''})", "",
             f"| alpha | cells | best lr | {r['objective']} | sd of log | censored at best lr | censored, all cells |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    design = r["estimate"]["fit_alpha"] if r["estimate"].get("design") == "ridge" else []
    for a in np.exp(np.unique(np.round(np.log(np.concatenate([alpha, design])), 9))):  # one row per alpha
        mine = np.flatnonzero(np.isclose(alpha, a, rtol=1e-8))
        if not len(mine):
            lines.append(f"| {a:.4g} | 0 | - | stopped by halving | - | - | - |")
            continue
        kept = np.where(censored[mine], np.inf if steps else np.nan, values[mine])
        centre = np.median(kept, axis=1) if steps else ridge.censored_means(values[mine], ~censored[mine])
        ok = np.isfinite(centre) & (np.sum(~censored[mine], axis=1) * 2 > censored.shape[1])
        if not ok.any():
            lines.append(f"| {a:.4g} | {len(mine)} | - | none trained | - | - | {int(censored[mine].sum())} |")
            continue
        i = np.flatnonzero(ok)[np.argmin(centre[ok])]
        seeds = kept[i][np.isfinite(kept[i])]
        lines.append(
            f"| {a:.4g} | {len(mine)} | {lr[mine[i]]:.3g} | {math.exp(centre[i]):.4g} |"
            f" {np.std(seeds, ddof=1):.3f} | {int(censored[mine[i]].sum())} | {int(censored[mine].sum())} |"
        )
    return [*lines, ""]


def agreement(rows: list[dict]) -> list[str]:
    """Per study judged on several objectives: whether their alpha* agree (the 95% intervals share
    a point) and whether every prediction got the same verdict from each."""
    by_study: dict[str, list[dict]] = {}
    for r in rows:
        by_study.setdefault(r["experiment"], []).append(r)
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


def series_markdown(series: list) -> str:
    """Extrapolated series (`extrapolate.Extrapolation`): alpha* at each point, the intercept and its verdicts."""
    if not series:
        return ""
    head = ["series", "x", "alpha*(x)", "intercept [95% CI]", "slope b [±2 se]", "prediction", "alpha",
            "intercept/prediction - 1 [95% CI]", "verdict"]  # fmt: skip
    lines = _section("Extrapolated to the limit theory speaks of: log alpha*(x) = log a + b x", head)
    for e in series:
        points = ", ".join(f"{_level(e.axis, x)}: {a:.4g}" for x, a in zip(e.x, e.alphas, strict=True))
        first = [e.series, e.axis, points, intercept(e), f"{e.slope:+.3g} ± {2 * e.slope_se:.2g}: {e.slope_sign}"]
        for v in (dataclasses.asdict(v) for v in e.verdicts):
            lines.append("| " + " | ".join(first + [v["theories"], fmt(v["alpha"]), relative_error(v), v["verdict"]])
                         + " |")  # fmt: skip
            first = [""] * 5
    notes = "".join(f"\n\n{e.series}: {e.note}." for e in series if e.note)
    return "\n".join(lines) + (
        "\n\nThe intercept is judged with each study's `verdict.series_rope`, the slope against its"
        " finite-width prediction with `verdict.series_slope_rope`." + notes + "\n"
    )


def depth_markdown(series: list) -> str:
    """Depth series (`depth_series.DepthSeries`): alpha* at each depth, its exponent and each rule's verdict."""
    if not series:
        return ""
    head = ["series", "alpha*(L)", "exponent s [95% CI]", "rule", "its exponent", "verdict"]
    lines = _section("How the trained optimum moves with depth: alpha*(L) ~ L^s", head)
    for d in series:
        points = ", ".join(f"L={L}: {fmt(a, lambda v: f'{v:.4g}') if a is not None else st}"
                           for L, a, st in zip(d.depths, d.alphas, d.statuses, strict=True))  # fmt: skip
        ci = d.interval()
        first = [d.series, points, "-" if ci is None else f"{d.exponent:+.3g} [{ci[0]:+.3g}, {ci[1]:+.3g}]"]
        for rule, _, exponent, verdict in d.rules:
            lines.append("| " + " | ".join(first + [rule, f"{exponent:+.3g}", verdict]) + " |")
            first = [""] * 3
    return "\n".join(lines) + (
        "\n\nThe exponent is the weighted least-squares slope of log alpha* on log L over the depths whose"
        " optimum is resolved; each rule's exponent is judged with `verdict.series_slope_rope` as a region"
        " on the exponent (docs/theory.md, section 10).\n"
    )


def _section(title: str, head: list[str]) -> list[str]:
    """A Markdown section's title and its table's header rows."""
    return [f"\n## {title}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def _level(axis: str, x: float) -> str:
    """A series member by the value it ran at: its width, or its input scale."""
    return f"n={round(1 / x)}" if axis == "1/width" else f"s={math.sqrt(x):.3g}"


# --- LaTeX ----------------------------------------------------------------------------------------
# The LaTeX tables: one per kind of claim, each column's head and cell; a caller may choose any.
LATEX_COLUMNS = {
    "prediction": ("prediction", lambda v, num: v["theories"]),
    "alpha": (r"$\alpha$", lambda v, num: fmt(v["alpha"], num)),
    "relative_error": (r"$\alpha^*/\alpha - 1$ [95\% CI]", lambda v, num: relative_error(v)),
    "verdict": ("verdict", lambda v, num: v["verdict"]),
    "regret": (r"regret [95\% CI]", lambda v, num: regret(v)),
}
LATEX_KINDS = {  # kind: (which rows, its columns, its caption)
    "probe": (False, ("prediction", "alpha", "relative_error", "verdict"),
              r"Signal propagation at initialisation: the zero $\alpha^*$ of each probe's log-ratio"),
    "trained": (True, ("prediction", "alpha", "relative_error", "verdict", "regret"),
                r"Trained objectives, the learning rate profiled out: the minimiser $\alpha^*$"),
}  # fmt: skip


def latex(rows: list[dict], decimals: int = 3, studies: list[str] | None = None,
          columns: list[str] | None = None, width: str = r"\textwidth") -> str:  # fmt: skip
    """The verdict tables as LaTeX (booktabs, tabularx): one per kind of claim present, for the
    studies named in `studies` (all by default) with the `columns` chosen of `LATEX_COLUMNS`; a
    study heads its rows; each table is `width` wide (\\textwidth: table*; \\columnwidth: table)."""
    chosen = [r for r in rows if not r["arms"] and (studies is None or r["experiment"] in studies)]
    return "\n".join(
        _latex_table(kind, [r for r in chosen if objectives.get(r["objective"]).trained == trained],
                     [c for c in columns or cols if c in cols], caption, decimals, width)
        for kind, (trained, cols, caption) in LATEX_KINDS.items()
        if any(objectives.get(r["objective"]).trained == trained for r in chosen)
    )  # fmt: skip


_LATEX_NOTE = (r" with its 95\% interval, against each prediction: equivalent when the 90\% interval lies inside"
               r" the pre-registered region of practical equivalence (ROPE), different when wholly outside, else"
               r" inconclusive.")  # fmt: skip
_WRAP = r">{\raggedright\arraybackslash}"  # a cell that wraps, ragged right


def _latex_table(kind: str, rows: list[dict], columns: list[str], caption: str, decimals: int, width: str) -> str:
    num = lambda x: f"{x:.{decimals}f}"  # noqa: E731
    body = []
    for r in rows:
        rope, est = latex_escape(f"{r['rope']:.0%}"), latex_escape(star(r["estimate"], num))
        head = rf"\textbf{{{latex_escape(r['experiment'])}}}: {latex_escape(r['objective'])} (ROPE $\pm${rope}),"
        head += rf" $\alpha^*$ = {est}, {r['trials']} trials $\times$ {r['seeds']} seeds"
        body.append(rf"\multicolumn{{{len(columns)}}}{{@{{}}{_WRAP}p{{{width}}}@{{}}}}{{{head}}} \\")
        body += [" & ".join(latex_escape(LATEX_COLUMNS[c][1](v, num)) for c in columns) + r" \\" for v in r["verdicts"]]
        body.append(r"\addlinespace")
    env = "table*" if width == r"\textwidth" else "table"
    spec = rf"@{{}}{_WRAP}X{'l' * (len(columns) - 1)}@{{}}"
    return "\n".join([
        rf"\begin{{{env}}}[t]", r"\centering", r"\small", rf"\caption{{{caption}{_LATEX_NOTE}}}",
        rf"\label{{tab:init-scale-{kind}}}", rf"\begin{{tabularx}}{{{width}}}{{{spec}}}", r"\toprule",
        " & ".join(LATEX_COLUMNS[c][0] for c in columns) + r" \\", r"\midrule", *body[:-1], r"\bottomrule",
        r"\end{tabularx}", rf"\end{{{env}}}", "",
    ])  # fmt: skip


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "*": r"$^*$",
          "<": r"$<$", ">": r"$>$"}  # fmt: skip


def latex_escape(text: str) -> str:
    """`text` safe inside a LaTeX tabular cell: every character LaTeX treats specially escaped."""
    return "".join(_LATEX.get(c, c) for c in str(text))


# --- the dashboard note ---------------------------------------------------------------------------
def note(study: str, code_version: str, analyses: list[verdicts.Analysis]) -> str:
    """Markdown for the study's note: alpha* with its 95% interval and each prediction's verdict,
    on every objective the study is judged on."""
    lines = [f"## {study}", f"Created by {code_version}.", ""]
    for a in analyses:
        r = row(study, a)
        lines.append(f"**{a.objective}** (ROPE ±{a.rope:.0%}): alpha* = {star(r['estimate'])}")
        for v in r["verdicts"]:
            lines.append(f"- {v['theories']} ({fmt(v['alpha'])}): **{v['verdict']}**")
        lines.append("")
    return "\n".join(lines)
