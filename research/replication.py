"""Replications judged together: a verdict holds only where every run of the study gives it.

Studies of one experiment whose configs differ only in their seeds (the training seeds' offset,
the batch order's seed, the sampler's and the ridge design's grid phases) are replications of one
another: `research sweep --set search.seed_offset=100 --on-config-change new` runs one beside the
first in the same storage. In the report, a decisive verdict (equivalence or regret) that another
replication of the same study and objective does not give becomes inconclusive and names what
each run said.
"""

from __future__ import annotations

from collections.abc import Callable

SEED_KEYS = ("search.seed_offset", "train.data_seed", "search.sampler_seed", "search.ridge.phase_seed")


def check(rows: list[dict], identity: Callable[[dict, tuple[str, ...]], str | None]) -> int:
    """Compare the verdicts of replicated report `rows` (render.row's) in place; returns how many
    studies-and-objectives ran more than once. `identity(config, varying)`: a stored config's
    identity less the `varying` keys (studies.stored_hash), so settings outside a study's identity
    (how a run treats a changed config, heartbeats) never split replications."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["objective"], identity(r["config"], SEED_KEYS)), []).append(r)
    replicated = [g for g in groups.values() if len(g) > 1]
    for group in replicated:
        for field in ("verdict", "regret_verdict"):
            _agree(group, field)
    return len(replicated)


def sentence(replicated: int) -> str:
    """What the report says of the check (nothing when no study ran twice)."""
    if not replicated:
        return ""
    return (f" Replication: {replicated} studies and objectives ran more than once with other seeds; a verdict"
            " not given by every run is inconclusive (marked 'replication').")  # fmt: skip


def disagreement(offsets: list[int], answers: list) -> str | None:
    """What each run said ("seed offset 0: a; seed offset 100: b") where the runs disagree, else None."""
    if len(set(answers)) < 2:
        return None
    return "; ".join(f"seed offset {o}: {a}" for o, a in zip(offsets, answers, strict=True))


def _agree(group: list[dict], field: str) -> None:
    said = [[v.get(field) for v in r["verdicts"]] for r in group]
    offsets = [r["config"]["search"]["seed_offset"] for r in group]
    for i in range(len(said[0])):
        runs = disagreement(offsets, [s[i] for s in said])
        if runs is None:
            continue
        for r in group:
            v = r["verdicts"][i]
            if v.get(field) not in (None, "inconclusive"):
                v[field] = "inconclusive"
            note = f"{field.replace('_', ' ')} not replicated ({runs})"
            v["replication"] = "; ".join(filter(None, [v.get("replication"), note]))
