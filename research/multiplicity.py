"""False discoveries across a report: Benjamini-Hochberg over every verdict's two tests.

Each verdict (verdicts.py) is two one-sided questions about log(alpha* / prediction): is it inside
the region of practical equivalence (the larger p of the two one-sided tests, TOST), and is it
outside it (the one-sided test of |log ratio| beyond the region's edge). A report prints hundreds
of verdicts; Benjamini and Hochberg (1995) keep the expected share of false "equivalent" and
"different" among those it keeps at `q`. A decisive verdict whose test is not kept becomes
inconclusive and says why; the report states how many tests the control covers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

Q = 0.05  # the false discovery rate the report controls: each one-sided test's level at a 90% interval


@dataclasses.dataclass(frozen=True)
class Control:
    """What the control covered: tests, the level, decisive verdicts kept and made inconclusive."""

    tests: int
    q: float
    kept: int
    downgraded: int

    def sentence(self) -> str:
        return (f"Multiplicity: Benjamini-Hochberg at q = {self.q:g} over the {self.tests} equivalence and difference"
                f" tests of this report's verdicts (two per verdict); {self.kept} decisive verdicts hold,"
                f" {self.downgraded} became inconclusive (marked 'fdr').")  # fmt: skip


def rejected(p_values: np.ndarray, q: float = Q) -> np.ndarray:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at false discovery rate q."""
    p = np.asarray(p_values, float)
    if not len(p):
        return np.zeros(0, bool)
    order = np.argsort(p)
    passed = p[order] <= q * np.arange(1, len(p) + 1) / len(p)
    out = np.zeros(len(p), bool)
    if passed.any():
        out[order[: np.flatnonzero(passed).max() + 1]] = True
    return out


def control(rows: list[dict], q: float = Q) -> Control:
    """Apply the control to the verdicts of report `rows` (render.row's), in place: a decisive verdict
    whose own test is not rejected becomes inconclusive with `fdr` set."""
    verdicts = [v for r in rows for v in r["verdicts"] if v.get("p_equivalent") is not None]
    p = np.array([[v["p_equivalent"], v["p_different"]] for v in verdicts]).reshape(-1)
    keep = rejected(p, q).reshape(-1, 2)
    kept = downgraded = 0
    for v, (equivalent, different) in zip(verdicts, keep, strict=True):
        holds = {"equivalent": equivalent, "different": different}.get(v["verdict"])
        if holds is None:
            continue
        if holds:
            kept += 1
        else:
            v.update(verdict="inconclusive", fdr=f"{v['verdict']} not kept at q = {q:g}")
            downgraded += 1
    return Control(len(p), q, kept, downgraded)
