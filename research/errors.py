"""The one exception type users see: a bad setting, named, with what is accepted.

Every check of user input raises `ConfigError`; the CLI prints its message as one
sentence and exits with status 2 instead of showing a traceback.
"""


class ConfigError(ValueError):
    """A setting is out of range, of the wrong type, or names something unknown."""


def choice(field: str, value: object, accepted: list[str] | tuple[str, ...]) -> ConfigError:
    """The error for `value` not being one of `accepted` in `field`."""
    names = ", ".join(sorted(accepted))
    return ConfigError(f"{field} must be one of {names}; got {value!r}.")


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)
