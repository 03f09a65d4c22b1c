"""A study judged: its analyses on every objective, from the cache the sweep and the report share.

Light on purpose (no drawing libraries): `status`, `advise` and the notebooks read the analyses a
sweep cached beside its report instead of refitting every study.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

from research import analysis_cache, storage, studies, verdicts


@dataclasses.dataclass(frozen=True)
class Judged:
    """A study and its analyses, one per objective it is judged on (its own first), with its cache
    key and the figures drawn for it under that key (None: none cached)."""

    record: studies.Record
    analyses: tuple[verdicts.Analysis, ...]
    key: str | None = None
    drawn: dict | None = None
    cached: bool = False

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def cfg(self):
        return self.record.cfg

    @property
    def analysis(self) -> verdicts.Analysis:
        return self.analyses[0]


def collect(url: str, cache: analysis_cache.StudyCache | None = None) -> list[Judged]:
    """Every study of this project in storage `url`, judged (from `cache` where it is current)."""
    return [judge(record, cache) for record in studies.load_all(url)]


def judge(record: studies.Record, cache: analysis_cache.StudyCache | None = None) -> Judged:
    """The study's analyses, from `cache` under its current key when there, else made now."""
    key = analysis_cache.study_key(record.name, record.attrs, record.trials) if cache else None
    hit = cache.load(record.name, key) if cache else None
    analyses = tuple(hit["analyses"] if hit else verdicts.analyse_all(record))
    return Judged(record, analyses, key, hit["figures"] if hit else None, hit is not None)


def folder(runs_dir: str | os.PathLike) -> pathlib.Path:
    """The report folder of a runs directory: where `research sweep` writes its closing report and
    caches each study's analyses."""
    return pathlib.Path(runs_dir) / "report"


def cache_of(url: str) -> analysis_cache.StudyCache:
    """The analyses the sweep cached for the studies in storage `url` (its closing report's), for
    commands that answer quickly: `status`, `advise`."""
    return analysis_cache.StudyCache(folder(storage.home(url)) / ".cache")
