"""The report's figures: every study's objective against alpha, lr*(alpha), the signal at
initialisation, its stored training curves, the trainability map across depth and the width series.

Each takes a judged study (`judging.Judged`: its record and analyses) or an extrapolated series and
writes PNG, PDF (TrueType fonts) and SVG at the column width `paper_style` sets; nothing is trained.
"""

from __future__ import annotations

import math
import pathlib
import textwrap

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # no backend forced: headless it is Agg, in a notebook inline
import numpy as np
from matplotlib import ticker

from research import estimate, models, objectives, predictions, probes, studies, theory, verdicts
from research.errors import ConfigError

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
            "axes.titlesize": 7 if small else 9, "legend.fontsize": 6 if small else 8,
            "mathtext.fontset": "dejavusans"}  # fmt: skip


def study_figures(r, folder: pathlib.Path) -> list[pathlib.Path]:
    """A study's own figures (`collect`'s record): the objective on every judged objective,
    lr*(alpha), per-layer statistics at initialisation and the stored curves; the PNG paths."""
    paths = [objective_figure(r.name, a, folder) for a in r.analyses]
    if r.analysis.observations.log_lr is not None and r.analysis.estimate.fit_lr.size:
        paths.append(learning_rate_figure(r.name, r.analysis, folder))
    if not models.family(r.cfg.model).recurrent and not studies.in_series(r.cfg):
        paths.append(depth_figure(r, folder))  # a series has its own figure
    if objectives.get(r.cfg.search.objective).trained:
        paths.append(curves_figure(r, folder, r.record.complete))
    return paths


def trainability_figure(stem: str, group: list, folder: pathlib.Path) -> pathlib.Path:
    """Left: the (alpha, depth) map of the training loss at each alpha's best learning rate,
    relative to chance, with the mean-field trainable depth 6 xi(alpha) (Schoenholz et al. 2017).
    Right: the near-optimal band's width (loss within `verdict.regret_tolerance`) against depth."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0))
    chance = group[0].record.chance_loss
    widths = []
    for r in group:
        a = r.analysis
        obs = _best_lr_per_alpha(a.observations) if a.observations.log_lr is not None else a.observations
        depth = r.cfg.model.depth
        ratio = np.exp(np.nanmean(obs.values, axis=1)) / chance
        cells = left.scatter(np.exp(obs.log_alpha), np.full(obs.n_trials, depth), c=np.clip(ratio, 0, 1.2),
                             cmap="viridis", vmin=0, vmax=1.2, marker="s", s=70)  # fmt: skip
        band = a.estimate.near_optimal(verdicts.rule(r.cfg)[1])
        widths.append((depth, math.log(band[1] / band[0]) if band else math.nan))
    fig.colorbar(cells, ax=left, label="training loss / chance (best lr)")
    cfg = group[0].cfg
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
    left.set_xlabel(ALPHA_LABEL)
    left.set_ylabel("depth")
    _legend(left)
    right.plot(depths, [w for _, w in widths], "o-")
    right.set_xscale("log")
    right.xaxis.set_major_locator(ticker.FixedLocator(depths))
    right.xaxis.set_major_formatter(ticker.FormatStrFormatter("%d"))
    right.set_xlabel("depth")
    right.set_ylabel("near-optimal band width, log(alpha_hi / alpha_lo)")
    fig.suptitle(_wrapped(f"{stem}: the trainable region of $\\alpha$ against depth"))
    return _save(fig, folder / f"{stem}-trainability")


def series_figure(e, folder: pathlib.Path) -> pathlib.Path:
    """alpha*(x) with 95% intervals, the weighted fit to x = 0 and every prediction at the limit."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    t = estimate.t_quantile(0.975, e.df)
    alphas, ses = np.asarray(e.alphas), np.asarray(e.ses)
    err = np.stack([alphas * (1 - np.exp(-t * ses)), alphas * np.expm1(t * ses)])
    ax.errorbar(e.x, e.alphas, yerr=err, fmt="o", color="0.2", label=r"$\alpha^*$ with its 95% CI")
    line = np.linspace(0, max(e.x) * 1.05, 50)
    ax.plot(line, e.intercept * np.exp(e.slope * line), color="C0", label=f"fit: intercept {e.intercept:.4g}")
    as_run = next((v.alpha for v in e.verdicts if v.theories == "as run"), None)
    if e.slope_predicted is not None and as_run is not None:  # finite width as a prediction (finite_width.py)
        ax.plot(line, as_run * np.exp(e.slope_predicted * line), color="0.5", ls=":", lw=1.5,
                label=f"as run at each width: b = {e.slope_predicted:.3g}")  # fmt: skip
    for i, (alpha, label) in enumerate(prediction_lines(e.verdicts)):
        ax.axhline(alpha, color=f"C{i + 1}", ls=DASHES[i % len(DASHES)], lw=1.2, label=label)
    ax.set_xlabel(e.axis)
    ax.set_ylabel(r"$\alpha^*$")
    ax.set_title(_wrapped(f"{e.series}: where the optimum goes as {e.axis} grows"))
    _legend(ax)
    return _save(fig, folder / f"{e.series}-series")


def depth_series_figure(d, folder: pathlib.Path) -> pathlib.Path:
    """alpha*(L) with 95% intervals on log-log axes, the fitted power law and every rule's line."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    depths = np.asarray(d.depths, float)
    for i, (rule, alpha, exponent, verdict) in enumerate(d.rules):
        ax.plot(depths, alpha * (depths / depths[0]) ** exponent, color=f"C{i + 1}", ls=DASHES[i % len(DASHES)],
                lw=1.2, label=f"{rule}: L^{exponent:+.2g} ({verdict})")  # fmt: skip
    shown = [(L, a, ci) for L, a, ci in zip(d.depths, d.alphas, d.intervals, strict=True) if a is not None]
    if shown:
        L, a, ci = (np.asarray(v, float) for v in zip(*shown, strict=True))
        ax.errorbar(L, a, yerr=np.abs(ci.T - a), fmt="o", color="0.2", capsize=3,
                    label=r"$\alpha^*$ with 95% interval (resolved depths)")  # fmt: skip
    if d.exponent is not None:
        ax.plot(depths, np.exp(d.intercept) * depths**d.exponent, color="C0", label=f"fit: L^{d.exponent:+.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel(r"$\alpha^*$")
    ax.set_title(_wrapped(f"{d.series}: where the optimum goes as depth grows"))
    _legend(ax)
    stem, objective = d.series.removesuffix(")").split(" (")
    return _save(fig, folder / f"{stem}-{objective}-depth-series")


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
    ridge = est.design == "ridge"
    ax.scatter(x[healthy], obs.values[healthy], s=12, alpha=0.6, color="0.3", label="trials (each seed)")
    if not healthy.all():
        said = "diverged (censored; drawn at chance level)" if ridge else "diverged (chance level)"
        ax.scatter(x[~healthy], obs.values[~healthy], marker="x", color="red", label=said)
    if est.fit_alpha.size:
        said = "profile: the best learning rate's fit at each alpha" if ridge else "local quadratic fit"
        ax.plot(est.fit_alpha, est.fit_value, color="C0", lw=2, marker="o" if ridge else None, ms=3, label=said)
    if est.alpha is not None:
        ax.axvspan(*est.interval(), color="C0", alpha=0.15, label=rf"$\alpha^*$ = {est.alpha:.3g}, 95% CI")
    if est.divergence_edge:
        ax.axvline(est.divergence_edge[0], color="red", lw=1, label=f"divergence edge {est.divergence_edge[0]:.3g}")
    for i, (alpha, label) in enumerate(prediction_lines(a.verdicts)):
        ax.axvline(alpha, color=f"C{i + 1}", ls=DASHES[i % len(DASHES)], lw=1.2, label=label)
    _alpha_axis(ax)
    ax.set_xlabel(ALPHA_LABEL)
    trained = objectives.get(a.objective).trained
    ax.set_ylabel(f"log {_said(a.objective)}" if trained else f"{_said(a.objective)} (signed log-ratio)")
    ax.set_title(_claim(a))
    _legend(ax)
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
    said = f"slope {slope['slope']:+.2f}" if slope else "censored over too much of the range for a slope"
    ax.plot(est.fit_alpha, est.fit_lr, color="k", lw=2, marker="o", ms=3, label=rf"$\eta^*(\alpha)$: {said}")
    known = np.isfinite(est.fit_lr)
    for (name, predicted), dash in zip((slope or {}).get("predicted", {}).items(), DASHES[1:], strict=False):
        if est.alpha is None or known.sum() < 2:
            break
        at = float(np.interp(math.log(est.alpha), np.log(est.fit_alpha[known]), np.log(est.fit_lr[known])))
        line = math.exp(at) * (est.fit_alpha / est.alpha) ** predicted
        ax.plot(est.fit_alpha, line, color="k", ls=dash, lw=1, label=f"homogeneity, {name}: slope {predicted:+.2f}")
    _alpha_axis(ax)
    ax.set_yscale("log")
    ax.set_ylim(est.lr_range[0] / 1.5, est.lr_range[1] * 1.5)
    ax.set_xlabel(ALPHA_LABEL)
    ax.set_ylabel(r"learning rate $\eta$")
    ax.set_title(_wrapped(f"{_model(a.cfg)}: the best learning rate $\\eta^*(\\alpha)$, profiled out"))
    _legend(ax)
    return _save(fig, folder / f"{study}-learning-rate")


def depth_figure(r, folder: pathlib.Path, alphas=(0.5, 1.0, 2.0, 4.0)) -> pathlib.Path:
    """Per-layer forward and backward variance at initialisation for several alphas."""
    cfg = r.cfg.model
    star = r.analysis.estimate.alpha
    arms = [float(alpha) for _, alpha in r.cfg.search.arms]
    picks = sorted(set(arms)) if arms else sorted({*alphas, *([round(star, 3)] if star else [])})
    x = probes.gaussian_inputs(cfg, jax.random.key(0), 128)
    stats = probes.grid(cfg, jnp.asarray(picks, jnp.float32), jnp.arange(2), x)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, ax in zip(("forward", "backward"), axes, strict=True):
        values = np.median(np.asarray(getattr(stats, name)), axis=1)
        for alpha, curve in zip(picks, values, strict=True):
            ax.plot(np.arange(1, len(curve) + 1), curve, label=rf"$\alpha$ = {alpha:g}")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("layer")
        ax.set_title({"forward": r"activations $E[h^2]$", "backward": r"gradients $E[g^2]$"}[name])
    _legend(axes[0])
    fig.suptitle(_wrapped(f"{_model(r.cfg)}: the signal at initialisation, layer by layer"))
    return _save(fig, folder / f"{r.name}-depth")


def curves_figure(r, folder: pathlib.Path, trials: list) -> pathlib.Path:
    """Stored training curves of the trials nearest each prediction and alpha*: mean over seeds
    with their range as a band (the report trains nothing; the curves are the study's own)."""
    a = r.analysis
    arms = r.cfg.search.arms
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
    chunk_steps = r.cfg.train.chunk_steps
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
    ax.set_title(_wrapped(f"{_model(r.cfg)}: training curves near each prediction (seed mean, range)"))
    if drawn:
        _legend(ax)
    return _save(fig, folder / f"{r.name}-curves")


ALPHA_LABEL = r"$\alpha$, in Var($W$) = $\alpha\,c\,/\,\mathrm{fan}$"
DASHES = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))  # predictions stay apart even where colours fail


def _model(cfg) -> str:
    """The network in words, e.g. '20 x 128 relu mlp'."""
    return f"{models.family(cfg.model).describe(cfg.model)} {cfg.model.activation} {cfg.model.name}"


def _said(objective: str) -> str:
    return objective.replace("_", " ")


def _claim(a: verdicts.Analysis) -> str:
    """The objective figure's title as a claim: the network, the objective, alpha* and the first
    prediction's verdict."""
    est, first = a.estimate, (a.verdicts[0] if a.verdicts else None)
    found = rf"$\alpha^*$ = {est.alpha:.3g}" if est.alpha is not None else rf"no $\alpha^*$ ({est.status})"
    judged = f"; {first.theories} ({first.alpha:.3g}): {first.verdict}" if first is not None else ""
    return _wrapped(f"{_model(a.cfg)}, {_said(a.objective)}: {found}{judged}")


def _wrapped(title: str) -> str:
    """A title broken into lines that fit the column the style is for."""
    width = 48 if plt.rcParams["figure.figsize"][0] < 5 else 90
    return "\n".join(textwrap.wrap(title, width, break_long_words=False, break_on_hyphens=False))


def _legend(ax) -> None:
    """A legend legible at the column width: long labels wrapped; in one column, below the axes
    (where it hides no data), in two, inside where it fits best."""
    single = plt.rcParams["figure.figsize"][0] < 5
    handles, labels = ax.get_legend_handles_labels()
    labels = ["\n".join(textwrap.wrap(t, 46 if single else 80, break_long_words=False)) for t in labels]
    if single:
        below = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
        below.set_in_layout(False)  # the axes keep their size; saving with a tight box takes the legend in
    else:
        ax.legend(handles, labels, loc="best")


def _alpha_axis(ax) -> None:
    """A log alpha axis labelled with plain numbers (0.25, 0.5, 1, 2, ...; over less than two octaves
    also 0.75, 1.5, 3, ...), not powers of ten."""
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ax.xaxis.set_major_locator(ticker.LogLocator(base=2.0, subs=(1.0, 1.5) if hi / lo < 4 else (1.0,)))
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
    box = {"bbox_inches": "tight", "bbox_extra_artists": [a.get_legend() for a in fig.axes if a.get_legend()]}
    fig.savefig(stem.with_suffix(".png"), dpi=200, **box)  # a legend below the axes included
    fig.savefig(stem.with_suffix(".pdf"), **box)
    fig.savefig(stem.with_suffix(".svg"), metadata={"Date": None}, **box)  # same data, same bytes
    plt.close(fig)
    return stem.with_suffix(".png")
