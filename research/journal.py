"""The embedded storage: an Optuna journal file kept intact on every append.

Optuna's file backend appends under a lock file but trusts the file's tail: a writer killed
mid-append leaves half a record that the next append joins to a new one, and its lock stalls
everyone for the library's 30 s grace. Here the lock names its owner (a dead process of this host
gives it up at once), every append first sets a torn tail aside, readers recover or skip a
single damaged record with a warning, and a journal on a read-only mount can be read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import socket
import time
import uuid

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from research import names
from research.errors import ConfigError

log = logging.getLogger(__name__)

HOST = socket.gethostname()
_RECORD_START = b'{"op_code"'


def open_journal(path: str | os.PathLike, writable: bool = True) -> JournalStorage:
    """The journal at `path` as an Optuna storage; with `writable`, created if missing and its torn
    tail set aside now and before every append; without, read as it is (a read-only mount too)."""
    path = pathlib.Path(path)
    if writable:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a"):
                pass
        except OSError as err:
            raise ConfigError(f"journal storage {path} cannot be written: {err.strerror}.") from None
    _check_journal(path)
    backend = Backend(str(path), lock_obj=OwnedLock(str(path)), writable=writable)
    if writable:
        with _held(backend.lock):
            set_aside_torn_tail(path)
    try:
        return JournalStorage(backend)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:  # a record Optuna cannot replay
        raise ConfigError(
            f"journal storage {path} has a damaged record ({err.__class__.__name__}); move it aside or restore a copy."
        ) from None


class Backend(JournalFileBackend):
    """Optuna's file backend with a checked tail before each append and a forgiving reader (the
    library has no hook for either, so both methods are overridden here)."""

    def __init__(self, file_path: str, lock_obj: OwnedLock, writable: bool = True):
        self._writable, self.lock = writable, lock_obj
        if writable:
            super().__init__(file_path, lock_obj)
        else:  # the parent creates a missing file; a reader must not
            self._file_path, self._lock, self._log_number_offset = file_path, lock_obj, {0: 0}

    def append_logs(self, logs: list[dict]) -> None:
        if not self._writable:
            raise ConfigError(f"journal storage {self._file_path} was opened read-only; nothing is written.")
        text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in logs).encode()
        with _held(self.lock):
            set_aside_torn_tail(pathlib.Path(self._file_path))
            with open(self._file_path, "ab") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())

    def read_logs(self, log_number_from: int):
        """Every complete record from `log_number_from` on; a complete line that does not decode
        (two records joined by an old torn append) yields the record it ends with, else is skipped,
        with a warning naming it. A tail without a newline is a record still being written."""
        with open(self._file_path, "rb") as f:
            start = self._log_number_offset.get(log_number_from)
            number = log_number_from if start is not None else 0
            f.seek(start or 0)
            offset = start or 0
            for line in f:
                if not line.endswith(b"\n"):
                    return
                self._log_number_offset.setdefault(number + 1, offset + len(line))
                if number >= log_number_from and (record := _decode(line, number, offset, self._file_path)):
                    yield record
                number, offset = number + 1, offset + len(line)


def _decode(line: bytes, number: int, offset: int, path: str) -> dict | None:
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError):
        pass
    cut = line.rfind(_RECORD_START)
    try:
        record = json.loads(line[cut:]) if cut > 0 else None
    except (ValueError, UnicodeDecodeError):
        record = None
    kept = "kept the record it ends with" if record is not None else "skipped it"
    log.warning("journal %s: record %d (byte %d, %d bytes) does not decode; %s", path, number, offset, len(line), kept)
    return record


class OwnedLock(JournalFileOpenLock):
    """Optuna's open(2) lock file, holding 'host pid' of its owner: a lock whose owner is a dead
    process on this host is broken at once; any other waits out the grace period as before."""

    def acquire(self) -> bool:
        wait, seen, since = 0.001, None, time.monotonic()
        while True:
            try:
                fd = os.open(self._lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                stamp = _stamp(self._lock_file)
                if stamp != seen:  # the lock changed hands: its grace starts again, on our clock
                    seen, since = stamp, time.monotonic()
                if self._dead_owner() or time.monotonic() - since > self.grace_period:
                    self._break(seen)
                    continue
                time.sleep(wait)
                wait = min(2 * wait, 0.05)
                continue
            with contextlib.suppress(OSError):  # a full disk: held all the same, its owner unnamed
                os.write(fd, f"{HOST} {os.getpid()}".encode())
            os.close(fd)
            return True

    def _dead_owner(self) -> bool:
        try:
            host, pid = pathlib.Path(self._lock_file).read_text().split()
        except (OSError, ValueError):  # gone, being written or unreadable
            return False
        return names.gone(host, pid)

    def _break(self, seen) -> None:
        """Remove the lock last seen as `seen` if it is still that one. Breakers take turns through
        a token file, so two of them never remove each other's fresh lock."""
        token = f"{self._lock_file}.break"
        try:
            os.close(os.open(token, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:  # another breaker is at work (or died there: its token expires)
            with contextlib.suppress(OSError):
                if time.time() - os.stat(token).st_mtime > self.grace_period:
                    os.unlink(token)
            return
        try:
            if _stamp(self._lock_file) == seen:
                aside = f"{self._lock_file}.{uuid.uuid4().hex}.broken"
                os.rename(self._lock_file, aside)
                os.unlink(aside)
                log.warning("journal lock %s: its holder stopped (or held it past %s s); taken over",
                            self._lock_file, self.grace_period)  # fmt: skip
        except OSError:
            pass
        finally:
            os.unlink(token)


def _stamp(path: str):
    """What identifies one holding of a lock file: its inode, change time and owner."""
    try:
        st = os.stat(path)
        return st.st_ino, st.st_mtime_ns, pathlib.Path(path).read_bytes()
    except OSError:
        return None


class _held:
    def __init__(self, lock: OwnedLock):
        self._lock = lock

    def __enter__(self):
        self._lock.acquire()

    def __exit__(self, *exc):
        self._lock.release()


def _check_journal(path: pathlib.Path, head: int = 1 << 20) -> None:
    """Stop unless `path` is empty or starts with an Optuna journal record (so nothing else is
    ever repaired or appended to: a PNG or a text file given as --storage stays as it is)."""
    try:
        with open(path, "rb") as f:
            start = f.read(head)
    except OSError as err:
        raise ConfigError(f"journal storage {path} cannot be read: {err.strerror}.") from None
    first = start.split(b"\n", 1)[0]
    if not start or (b"\n" not in start and start.startswith(_RECORD_START)):
        return  # empty, or a journal whose only record is torn
    try:
        ok = isinstance(record := json.loads(first), dict) and "op_code" in record
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise ConfigError(
            f"storage {path} is not an Optuna journal file; give a journal, sqlite:///FILE or postgresql://..."
        )


def set_aside_torn_tail(path: pathlib.Path) -> None:
    """Move a half-written last record (a writer killed mid-append, a full disk) to PATH.torn-TIME.

    Called with the lock held: appends hold it, so a tail without a newline is a torn record,
    never one being written.
    """
    with open(path, "rb+") as f:
        cut = _after_last_newline(f)
        if cut is None:
            return
        f.seek(cut)
        fragment = f.read()
        kept = _keep_aside(path, fragment)
        f.truncate(cut)
    log.warning("journal %s ended in a half-written record: %s", path, kept)


def _keep_aside(path: pathlib.Path, fragment: bytes) -> str:
    """Copy a torn record next to the journal, if the disk lets us (a full one is why it tore)."""
    aside = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        aside.write_bytes(fragment)
        return f"moved its {len(fragment)} bytes to {aside}"
    except OSError as err:
        aside.unlink(missing_ok=True)
        return f"dropped its {len(fragment)} bytes ({err.strerror} when keeping a copy)"


def _after_last_newline(f, block: int = 1 << 16) -> int | None:
    """Offset just past the file's last newline (0 if none), or None when the file is empty or
    ends with one."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return None
    f.seek(end - 1)
    if f.read(1) == b"\n":
        return None
    pos = end
    while pos > 0:
        start = max(0, pos - block)
        f.seek(start)
        chunk = f.read(pos - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        pos = start
    return 0
