"""Optuna storages by URL: a journal file (the embedded default), SQLite or PostgreSQL.

The storage is the only state workers share. A bad or unreachable URL stops at once with
one sentence; passwords never appear in messages, reports or study attributes.
"""

from __future__ import annotations

import os
import pathlib

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from research.errors import ConfigError

RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


def default_url(root: str | os.PathLike = "runs") -> str:
    """The embedded default: one journal file under runs/ for every study (no server needed)."""
    return str(pathlib.Path(root) / "studies.journal")


def redact(url: str) -> str:
    """`url` with any password replaced by ***."""
    if "://" not in url:
        return url
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url.split("://", 1)[0] + "://***"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage `url` names: a journal file path (or journal:PATH), sqlite:///..., postgresql://..."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"storage must be a journal file path, sqlite:///FILE or postgresql://...; got {url!r}.")
    if "://" not in url:
        return _journal(url.removeprefix("journal:"))
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in RDB_SCHEMES:
        raise ConfigError(
            f"storage scheme {scheme!r} is not supported; use a journal file path, sqlite:///FILE or postgresql://USER@HOST/DB."
        )
    try:
        sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"storage URL {redact(url)} is malformed; expected e.g. postgresql://user:pass@host:5432/db."
        ) from None
    try:
        return RDBStorage(url, engine_kwargs=_engine_kwargs(scheme))
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        raise ConfigError(f"storage {redact(url)} is unreachable: {reason}.") from None
    except ImportError as err:
        raise ConfigError(
            f"storage {redact(url)} needs a database driver ({err}); pip install 'psycopg[binary]'."
        ) from None


def _journal(path: str) -> JournalStorage:
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError as err:
        raise ConfigError(f"journal storage {path} cannot be written: {err.strerror}.") from None
    # The open(2)-based lock works on local disks and, unlike symlinks, on most NFS mounts.
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def _engine_kwargs(scheme: str) -> dict:
    if scheme == "sqlite":
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4, "connect_args": {"connect_timeout": 10}}
