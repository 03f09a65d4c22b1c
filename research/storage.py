"""Optuna storages by URL: a journal file (the embedded default), SQLite or PostgreSQL.

The storage is the only state workers share. A bad or unreachable URL stops at once with
one sentence; passwords never appear in messages, reports or study attributes.
"""

from __future__ import annotations

import logging
import os
import pathlib
import random
import re
import time
import urllib.parse

import optuna
import sqlalchemy
from optuna.storages import RDBStorage

from research import journal
from research.errors import ConfigError, StorageUnreachable

log = logging.getLogger(__name__)

RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986; anything else before '://' is not shown
_DRIVERS = {
    "sqlite": "Python's sqlite3 module",
    "postgresql": "pip install 'psycopg[binary]'",
    "mysql": "pip install PyMySQL and use a mysql+pymysql:// URL",
}


def default_url(root: str | os.PathLike = "runs") -> str:
    """The embedded default: one journal file under runs/ for every study (no server needed)."""
    return str(pathlib.Path(root) / "studies.journal")


ENV_VARS = ("RESEARCH_STORAGE", "OPTUNA_STORAGE")  # read in this order when --storage is not given


def resolve(given: str | None, runs_dir: str | os.PathLike = "runs") -> str:
    """The storage a command uses: `given` (--storage), else $RESEARCH_STORAGE, else
    $OPTUNA_STORAGE, else the journal under `runs_dir`. Workers get it through the environment,
    so a password never shows on a command line."""
    if given is not None:
        if not given.strip():
            raise ConfigError("--storage is empty; give a journal file path, sqlite:///FILE or postgresql://...")
        return given
    return next((os.environ[v] for v in ENV_VARS if os.environ.get(v, "").strip()), None) or default_url(runs_dir)


def redact(url: str) -> str:
    """`url` with every secret it may carry replaced by ***: the password in its user part (all
    of it up to the last '@', so an unencoded '@' or '/' in it hides too) and query parameters
    such as password= or sslpassword=. Over-masking is the safe side."""
    if "://" not in url:
        return _mask(url)
    scheme, rest = url.split("://", 1)
    if not _SCHEME.fullmatch(scheme):
        return "***"  # what precedes '://' is no scheme, and may hold anything
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        rest = f"{user}{':***' if colon else ''}@{rest[at + 1 :]}"
    return f"{scheme}://{_SECRET_PARAM.sub(r'\1***', rest)}"


def scrub(text: str, url: str) -> str:
    """`text` (a driver's message about `url`) with every possible secret in `url` replaced by ***."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# A query parameter whose name says it holds a secret: password=, sslpassword=, ...token=, ...secret=.
_SECRET_PARAM = re.compile(r"(?i)((?:^|[?&;])[^=&;?]*(?:password|secret|token)[^=&;]*=)[^&;]*")


def _secrets(url: str) -> set[str]:
    """Every secret in `url` as it may be written in a message: the user part's password and the
    values of secret query parameters, as given, URL-decoded and URL-encoded."""
    found = {m.group(0).split("=", 1)[1] for m in _SECRET_PARAM.finditer(url)}
    if (at := url.rfind("@")) >= 0:  # what follows any ':' before the last '@' may be the password
        found |= {url[i + 1 : at] for i, c in enumerate(url[:at]) if c == ":"}
    variants = {v for s in found for v in (s, urllib.parse.unquote(s), urllib.parse.quote(s, safe=""))}
    return {v for v in variants if v}


def home(url: str, runs_dir: str | os.PathLike = "runs") -> pathlib.Path:
    """Where a storage's reports and published figures live (absolute): the folder of a journal or
    SQLite file, else (a database server) the runs folder."""
    if "://" not in url:
        return pathlib.Path(url.removeprefix("journal:")).resolve().parent
    if url.startswith("sqlite:///"):
        return pathlib.Path(url.removeprefix("sqlite:///")).resolve().parent
    return pathlib.Path(runs_dir).resolve()


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage `url` names: a journal file path (or journal:PATH), sqlite:///..., postgresql://..."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"storage must be a journal file path, sqlite:///FILE or postgresql://...; got {url!r}.")
    if "://" not in url:
        if _looks_like_a_url(url):
            raise ConfigError(
                f"storage {_mask(url)} looks like a database URL without '//'; write e.g. postgresql://USER@HOST/DB."
            )
        return journal.open_journal(url.removeprefix("journal:"))
    if not _SCHEME.fullmatch(url.split("://", 1)[0]):
        raise ConfigError(f"storage URL {redact(url)} is malformed; expected e.g. postgresql://user:pass@host:5432/db.")
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in RDB_SCHEMES:
        raise ConfigError(
            f"storage scheme {scheme!r} is not one this tool reads; use a journal file path, sqlite:///FILE or postgresql://USER@HOST/DB."
        )
    try:
        sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"storage URL {redact(url)} is malformed; expected e.g. postgresql://user:pass@host:5432/db."
        ) from None
    try:
        return _rdb(url, scheme)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # the engine's own checks; ValueError: a bad host name
        raise ConfigError(
            f"storage URL {redact(url)} is malformed; expected e.g. postgresql://user:pass@host:5432/db."
        ) from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as err:
        reason = scrub(str(getattr(err, "orig", err)).strip().splitlines()[0], url)
        raise StorageUnreachable(f"storage {redact(url)} is unreachable: {reason}.") from None
    except sqlalchemy.exc.DBAPIError as err:  # the driver refused the URL itself (e.g. an unknown option)
        reason = scrub(str(getattr(err, "orig", err)).strip().splitlines()[0], url)
        raise ConfigError(f"storage URL {redact(url)} was refused by its driver: {reason}.") from None
    except ImportError:
        raise ConfigError(f"storage {redact(url)} needs a database driver: {_DRIVERS[scheme]}.") from None


def _rdb(url: str, scheme: str, attempts: int = 8) -> RDBStorage:
    """RDBStorage, retried while another process creates the schema of a fresh database (two
    CREATE TABLEs racing end in a duplicate key or "already exists" for the loser)."""
    for attempt in range(1, attempts):
        try:
            return RDBStorage(url, engine_kwargs=_engine_kwargs(scheme))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            time.sleep(random.uniform(0.05, 0.3) * attempt)
    return RDBStorage(url, engine_kwargs=_engine_kwargs(scheme))


def open_existing(url: str, writable: bool = False) -> optuna.storages.BaseStorage:
    """`open_storage` for commands that read: a journal file, SQLite file or database schema that
    does not exist yet stops with "no storage at ..." instead of being created; a journal is
    opened read-only (a read-only mount works) unless `writable`."""
    if "://" not in url:
        path = url.removeprefix("journal:")
        if not os.path.isfile(path):
            raise ConfigError(f"no storage at {_mask(path)}: no such journal file; give --storage or run a sweep.")
        if _looks_like_a_url(path):
            return open_storage(url)  # refused there, its password masked
        return journal.open_journal(path, writable=writable)
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme == "sqlite":
        path = url.split(":///", 1)[-1]
        if not os.path.isfile(path):
            raise ConfigError(f"no storage at {redact(url)}: no such SQLite file; give --storage or run a sweep.")
    elif scheme in RDB_SCHEMES and not _has_optuna_schema(url):
        raise ConfigError(f"no storage at {redact(url)}: the database holds no Optuna tables yet; run a sweep first.")
    return open_storage(url)


def _has_optuna_schema(url: str) -> bool:
    """Whether the database at `url` already holds Optuna's tables (unreachable: True, so that
    open_storage reports why in its own words)."""
    try:
        engine = sqlalchemy.create_engine(url, **_engine_kwargs(url.split("://", 1)[0].split("+", 1)[0]))
        try:
            return sqlalchemy.inspect(engine).has_table("studies")
        finally:
            engine.dispose()
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError):
        return True


def _looks_like_a_url(path: str) -> bool:
    """scheme:rest with a database scheme (a mistyped URL), as opposed to a file path."""
    scheme = path.split(":", 1)[0].split("+", 1)[0].lower() if ":" in path else ""
    return scheme in RDB_SCHEMES


def _mask(text: str) -> str:
    """`text` (no '://') with everything from its first ':' to its last '@' (where a password may
    stand) replaced by ***, and secret query parameters too."""
    return _SECRET_PARAM.sub(r"\1***", re.sub(r":.*@", ":***@", text, flags=re.DOTALL))


def _engine_kwargs(scheme: str) -> dict:
    if scheme == "sqlite":
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4, "connect_args": {"connect_timeout": 10}}
