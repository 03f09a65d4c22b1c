"""The exception types users see: a bad setting, named, with what is accepted; a stopped run.

Every check of user input raises `ConfigError`, and a run that stops for a reason the user
can act on raises `RunError`; the CLI prints either message as one sentence and exits with
status 2 instead of showing a traceback.
"""

import signal


class ConfigError(ValueError):
    """A setting is out of range, of the wrong type, or names something unknown."""


class StorageUnreachable(ConfigError):
    """The storage's server did not answer: one clear sentence at a command's first contact, and
    retried, like any other failed storage call, inside a run (coordination.retry)."""


class RunError(RuntimeError):
    """A run stopped for a reason the user can act on (the sentence says which), not a bug."""


def choice(field: str, value: object, accepted: list[str] | tuple[str, ...]) -> ConfigError:
    """The error for `value` not being one of `accepted` in `field`."""
    names = ", ".join(sorted(accepted))
    return ConfigError(f"{field} must be one of {names}; got {value!r}.")


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


INT32_MAX = 2**31 - 1  # the largest seed, size or count a JAX program (int32 shapes and seeds) holds


def integer(value: object, field: str, minimum: int = 1, maximum: int = INT32_MAX) -> None:
    """`value` must be an int (not a bool) in [minimum, maximum]."""
    ok = isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum
    require(ok, f"{field} must be an integer from {minimum} to {maximum}; got {value!r}.")


def number(value: object, field: str, accepted: str, ok=lambda v: True) -> None:
    """`value` must be a finite real number for which `ok(value)` holds; `accepted` says which."""
    real = isinstance(value, int | float) and not isinstance(value, bool)
    real = real and value == value and abs(value) != float("inf")
    require(real and ok(value), f"{field} must be {accepted}; got {value!r}.")


class Interrupted(RunError):
    """SIGINT or SIGTERM stopped a run cleanly; the exit status is 128 + the signal's number."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")
