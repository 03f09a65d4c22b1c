"""Rules with one owner: the lr*(alpha) slope's verdict, agreement across objectives, the probe's
default alpha from theory."""

import json
import types

import numpy as np
import pytest

from research import cli, experiment, models, predictions, render, verdicts


def _estimate(slope: float, half: float):
    """An estimate whose lr*(alpha) slope is `slope` with a symmetric interval of `half` at any level."""
    return types.SimpleNamespace(lr_slope=lambda level: (slope, slope - half, slope + half))


@pytest.mark.parametrize(
    ("slope", "half", "relative", "edge"),
    [(-9.0, 0.5, "equivalent", "different"), (-19.0, 1.0, "different", "equivalent"),
     (-3.0, 0.5, "different", "different"), (-12.0, 6.0, "inconclusive", "inconclusive")],
)  # fmt: skip
def test_the_lr_slope_is_judged_three_ways_against_both_readings_of_homogeneity(slope, half, relative, edge):
    cfg = experiment.mnist1d_mlp("x", "relu", "fan_in", depth=20)  # -(20 - 2) / 2 = -9 and -(20 - 1) = -19
    judged = verdicts.judge_lr_slope(_estimate(slope, half), cfg, 0.9)
    assert judged["predicted"] == {"relative step": -9.0, "stability edge": -19.0}  # ROPE: 25% of each
    assert judged["verdicts"] == {"relative step": relative, "stability edge": edge}
    assert render.lr_slope(judged).endswith(
        f"vs homogeneity's relative step -9.00: {relative}, stability edge -19.00: {edge}"
    )


def test_no_slope_is_predicted_for_a_network_that_is_not_homogeneous():
    cfg = experiment.mnist1d_mlp("x", "tanh", "fan_in", depth=20)
    judged = verdicts.judge_lr_slope(_estimate(-3.0, 0.5), cfg, 0.9)
    assert judged["predicted"] == {} and judged["verdicts"] == {}
    assert render.lr_slope(judged).endswith("(homogeneity predicts none for this network)")


def _row(interval, verdict):
    return {"experiment": "s", "estimate": {"interval": interval}, "verdicts": [{"verdict": verdict}]}


def test_agreement_says_whether_the_objectives_intervals_share_a_point_and_their_verdicts():
    (same,) = render.agreement([_row([1.0, 2.0], "different"), _row([1.5, 3.0], "different")])
    assert "agree (intervals overlap)" in same and "every prediction gets the same verdict" in same
    (apart,) = render.agreement([_row([1.0, 1.4], "different"), _row([1.5, 3.0], "equivalent")])
    assert "disagree" in apart and "the verdicts differ" in apart
    assert render.agreement([_row([1.0, 2.0], "different")]) == []  # one objective: nothing to compare


@pytest.mark.parametrize(
    ("activation", "alpha"),
    [("relu", 2.0), ("leaky_relu:0.2", 2 / 1.04), ("tanh", 1.0), ("gelu", 4.0), ("sigmoid", 3.409)],
)
def test_a_probes_default_alpha_is_the_classic_rule_theory_gives(activation, alpha):
    cfg = models.probe_config("mlp", activation, 4, 16, {"scale": 1.0, "mode": "fan_in", "distribution": "normal"})
    assert predictions.default_alpha(cfg) == pytest.approx(alpha, rel=1e-3)


def test_the_probe_command_uses_it(capsys):
    argv = ["probe", "--activation", "leaky_relu:0.2", "--depth", "3", "--width", "16", "--seeds", "1", "--json"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["alpha"] == pytest.approx(2 / 1.04)


ARTICLE = r"""\documentclass[twocolumn]{article}
\usepackage{booktabs,tabularx,array,graphicx}
\begin{document}
\input{report.tex}
\begin{figure}[t]\centering\includegraphics[width=\columnwidth]{%s}\caption{A study's figure.}\end{figure}
A paragraph of text beside the figure, as in a paper.
\end{document}
"""


@pytest.mark.slow
@pytest.mark.service
def test_the_reports_tables_and_a_figure_compile_in_a_two_column_article_without_overfull_boxes(tmp_path, data_root):
    import shutil
    import subprocess

    from research import experiment, report
    from research.worker import Worker
    from tests import helpers

    if shutil.which("pdflatex") is None:
        helpers.service_absent("pdflatex (Debian's texlive-latex-base, texlive-latex-recommended)")
    url = str(tmp_path / "s.journal")
    for extra in (["search.objective='forward_log_ratio'", "search.trials=8", "search.probe_batch=16"],
                  ["search.trials=6", "search.trials_per_batch=6"]):  # fmt: skip
        cfg = experiment.load(helpers.TINY, "quick", helpers.overrides(tmp_path, data_root, *extra))
        Worker(cfg, url, echo=lambda _: None).run()
    out = tmp_path / "report"
    report.write(url, out, size="single")
    tex = (out / "report.tex").read_text()
    assert r"\label{tab:init-scale-probe}" in tex and r"\label{tab:init-scale-trained}" in tex
    figure = next((out / "figures").glob("*objective.pdf"))
    (out / "article.tex").write_text(ARTICLE % f"figures/{figure.name}")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "article.tex"], cwd=out,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    log = (out / "article.log").read_text(errors="replace")
    assert done.returncode == 0, log[-3000:]
    assert "Overfull" not in log and "Underfull \\hbox (badness 10000)" not in log, log[-3000:]


def test_the_raw_table_lists_each_cells_best_and_the_alphas_halving_stopped():
    values = np.log([[1.0, 1.2, 1.1], [0.5, 0.6, np.nan], [0.9, 0.8, 1.0], [0.7, 0.7, 0.7]])
    row = {"experiment": "x", "objective": "train_loss", "config": {"train": {"steps": 500}},
           "observations": {"alpha": [1.0, 1.0, 2.0, 2.0], "learning_rate": [0.01, 0.02, 0.01, 0.02],
                            "values": values.tolist(), "diverged": [[False, False, False], [False, False, True],
                                                                    [False] * 3, [False] * 3]},
           "estimate": {"design": "ridge", "fit_alpha": [1.0, 2 ** 0.5, 2.0 * (1 + 1e-13)]}}  # fmt: skip
    lines = render.raw_grid(row)
    by_alpha = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ") and "---" not in line}
    # alpha 1: the second cell, its two seeds that did not diverge (geometric mean 0.5477), one censored
    assert by_alpha["1"] == "| 1 | 2 | 0.02 | 0.5477 | 0.129 | 1 | 1 |"  # sd: log(1.2) / sqrt 2
    assert by_alpha["1.414"] == "| 1.414 | 0 | - | stopped by halving | - | - | - |"
    assert by_alpha["2"].startswith("| 2 | 2 | 0.02 | 0.7 |")
    assert len(by_alpha) == 4 and len([x for x in lines if x.startswith("| 2 |")]) == 1  # header + one row each
