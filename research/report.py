"""The confirmation report: every study's alpha* against every theory, as tables and figures.

Reads whatever studies a storage holds and writes report.md, report.tex, report.json and,
per study, the objective against alpha (fit, interval, predictions), per-layer variance
at initialisation across depth (after Glorot & Bengio 2010) and, for trained objectives,
the stored training curves (mean and range over seeds) of the trials nearest each
prediction and the empirical optimum. Nothing is trained here.
"""

from __future__ import annotations

import json
import math
import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from research import estimate, models, objectives, predictions, probes, storage, theory  # noqa: E402
from research.errors import ConfigError  # noqa: E402

COLUMNS = theory.THEORIES


def collect(url: str) -> list[dict]:
    """One record per study: its config, theory predictions and the alpha* estimate."""
    backend = storage.open_storage(url)
    records = []
    for name in optuna.get_all_study_names(storage=backend):
        study = optuna.load_study(study_name=name, storage=backend)
        if "config" not in study.user_attrs:
            continue  # not one of ours
        cfg = ml_collections.ConfigDict(study.user_attrs["config"])
        preds = predictions.for_model(cfg.model)  # derived from the config, in the search's units
        obs, est = estimate.for_study(study, cfg, preds)
        trials = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        records.append(
            {"study": name, "config": cfg, "theory": preds, "estimate": est, "observations": obs, "trials": trials}
        )
    return records


def write(url: str, out: str | os.PathLike = "runs/report", *, figures: bool = True) -> pathlib.Path:
    """Write the tables (and figures) for every study in `url` under `out`; returns report.md."""
    out = pathlib.Path(out)
    records = collect(url)  # first: a bad storage stops before anything is written
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        (out / "report.json").touch()
    except OSError as err:
        raise ConfigError(f"report --out {out} cannot be written: {err.strerror}.") from None
    rows = [row(r) for r in records]
    (out / "report.json").write_text(
        json.dumps(
            [{**row, "estimate": r["estimate"].to_json()} for row, r in zip(rows, records, strict=True)], indent=2
        )
    )
    (out / "report.tex").write_text(latex(rows))
    text = markdown(rows)
    if figures:
        for r in records:
            paths = [objective_figure(r, out / "figures")]
            if not models.family(r["config"].model).recurrent:
                paths.append(depth_figure(r, out / "figures"))
            if objectives.get(r["config"].search.objective).trained:
                paths.append(curves_figure(r, out / "figures", r["trials"]))
            text += f"\n![{r['study']}](figures/{paths[0].name})\n"
    (out / "report.md").write_text(text)
    return out / "report.md"


def row(r: dict) -> dict:
    """The table row of one study record."""
    cfg, est = r["config"], r["estimate"]
    supported = [c.theory for c in est.comparisons if c.verdict == "supported"]
    return {
        "experiment": r["study"],
        "model": f"{cfg.model.name} {models.family(cfg.model).describe(cfg.model)}",
        "activation": cfg.model.activation,
        "mode": cfg.model.init.get("mode", "preset"),
        "objective": cfg.search.objective,
        "theory": {k: r["theory"].get(k) for k in COLUMNS},
        "alpha_star": est.alpha,
        "interval": est.interval,
        "status": est.status,
        "relative_error": {c.theory: c.relative_error for c in est.comparisons},
        "verdict": {c.theory: c.verdict for c in est.comparisons},
        "supported": supported,
        "trials": est.n_trials,
    }


def markdown(rows: list[dict]) -> str:
    header = [
        "experiment",
        "model",
        "activation",
        "mode",
        "objective",
        *COLUMNS,
        "alpha* [95% CI]",
        "supported by the data",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["experiment"], row["model"], row["activation"], row["mode"], row["objective"]]
        cells += [_fmt(row["theory"][k]) for k in COLUMNS]
        cells += [_star(row), ", ".join(row["supported"]) or "none"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['experiment']}: {r['status']}" for r in rows if r["status"] != "ok"]
    legend = (
        "\nalpha: Var(W) = alpha / fan. A theory is supported when the bootstrap 95% interval of alpha* covers it.\n"
    )
    return (
        "# Where is the optimal init scale?\n\n"
        + "\n".join(lines)
        + "\n"
        + legend
        + ("\n".join(notes) + "\n" if notes else "")
    )


def latex(rows: list[dict]) -> str:
    cols = "l" * 5 + "r" * len(COLUMNS) + "ll"
    head = [
        "experiment",
        "model",
        "activation",
        "mode",
        "objective",
        *[c.replace("_", r"\_") for c in COLUMNS],
        r"$\alpha^*$ [95\% CI]",
        "supported",
    ]
    body = []
    for row in rows:
        cells = [row["experiment"], row["model"], row["activation"], row["mode"], row["objective"]]
        cells += [_fmt(row["theory"][k]) for k in COLUMNS] + [_star(row), ", ".join(row["supported"]) or "none"]
        body.append(" & ".join(c.replace("_", r"\_") for c in cells) + r" \\")
    return "\n".join(
        [
            rf"\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            " & ".join(head) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            "",
        ]
    )


def objective_figure(r: dict, folder: pathlib.Path) -> pathlib.Path:
    """Per-seed objective against alpha, the fit, the 95% interval and every prediction."""
    est, obs = r["estimate"], r["observations"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.scatter(np.exp(obs.log_alpha), obs.value, s=12, alpha=0.6, color="0.3", label="trials (each seed)")
    if obs.diverged_alpha.size:
        top = np.nanmax(obs.value) if obs.value.size else 1.0
        ax.scatter(
            obs.diverged_alpha, np.full(obs.diverged_alpha.shape, top), marker="x", color="red", label="diverged"
        )
    if est.fit_alpha.size:
        ax.plot(est.fit_alpha, est.fit_value, color="C0", lw=2, label="local quadratic fit")
    if est.interval:
        ax.axvspan(*est.interval, color="C0", alpha=0.15, label=f"alpha* = {est.alpha:.3g}, 95% CI")
    for i, (name, value) in enumerate(sorted((k, v) for k, v in r["theory"].items() if v)):
        ax.axvline(value, color=f"C{i + 1}", ls="--", lw=1, label=f"{name} {value:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("alpha (Var(W) = alpha / fan)")
    ax.set_ylabel(r["config"].search.objective)
    ax.set_title(f"{r['study']}: {est.status}")
    ax.legend(fontsize=7, loc="best")
    return _save(fig, folder / f"{r['study']}-objective")


def depth_figure(r: dict, folder: pathlib.Path, alphas=(0.5, 1.0, 2.0, 4.0)) -> pathlib.Path:
    """Per-layer forward and backward variance at initialisation for several alphas."""
    cfg = r["config"].model
    picks = sorted({*alphas, *([round(r["estimate"].alpha, 3)] if r["estimate"].alpha else [])})
    x = probes.gaussian_inputs(cfg, jax.random.key(0), 128)
    stats = probes.grid(cfg, jnp.asarray(picks, jnp.float32), jnp.arange(2), x)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, ax in zip(("forward", "backward"), axes, strict=True):
        values = np.median(np.asarray(getattr(stats, name)), axis=1)
        for alpha, curve in zip(picks, values, strict=True):
            ax.plot(np.arange(1, len(curve) + 1), curve, label=f"alpha {alpha:g}")
        ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_title({"forward": "activation variance E[h^2]", "backward": "gradient variance E[g^2]"}[name])
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{r['study']}: signal at initialisation")
    return _save(fig, folder / f"{r['study']}-depth")


def curves_figure(r: dict, folder: pathlib.Path, trials: list) -> pathlib.Path:
    """Stored training curves of the trials nearest each prediction and alpha*: mean over seeds
    with their range as a band (the report trains nothing; the curves are the study's own)."""
    targets = {f"{name} {alpha:.3g}": alpha for name, alpha in r["theory"].items() if alpha}
    if r["estimate"].alpha:
        targets[f"alpha* {r['estimate'].alpha:.3g}"] = r["estimate"].alpha
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
        label = f"{', '.join(labels)} (trial alpha {trial.params['alpha']:.3g}, {len(curves)} seeds)"
        ax.plot(steps, np.nanmean(curves, axis=0), color=f"C{i}", lw=1.5, label=label)
        ax.fill_between(steps, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color=f"C{i}", alpha=0.15)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (evaluation set)")
    ax.set_yscale("log")
    ax.set_title(f"{r['study']}: seed mean and range", fontsize=10)
    if drawn:
        ax.legend(fontsize=7)
    return _save(fig, folder / f"{r['study']}-curves")


def _nearest(trials: list, alpha: float):
    """The complete trial whose alpha is nearest `alpha` in log scale (None for no trials)."""
    return min(trials, key=lambda t: abs(math.log(t.params["alpha"] / alpha)), default=None)


def _save(fig, stem: pathlib.Path) -> pathlib.Path:
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    fig.savefig(stem.with_suffix(".pdf"))
    plt.close(fig)
    return stem.with_suffix(".png")


def _star(row: dict) -> str:
    if row["alpha_star"] is None:
        return row["status"]
    lo, hi = row["interval"]
    return f"{row['alpha_star']:.3g} [{lo:.3g}, {hi:.3g}]"


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"
