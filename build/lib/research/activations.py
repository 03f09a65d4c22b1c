"""The activation registry shared by the theory calculator and the models.

One name ("relu", "leaky_relu:0.2") gives one JAX function, so the numbers the theory
predicts and the networks that are trained always use the very same nonlinearity.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from research.errors import ConfigError, choice

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Activation:
    """A named nonlinearity with its optional parameter, torch's gain for it and, when it is
    positively homogeneous (phi(c z) = c phi(z) for c > 0), its slopes below and above 0."""

    name: str
    param: float | None
    fn: Callable[[Array], Array]
    torch_gain: float | None  # torch.nn.init.calculate_gain, None where torch has none
    slopes: tuple[float, float] | None = None  # (below 0, above 0) of a positively homogeneous unit

    @property
    def label(self) -> str:
        return self.name if self.param is None else f"{self.name}:{self.param:g}"

    @property
    def homogeneous(self) -> bool:
        return self.slopes is not None

    @property
    def rectifier(self) -> bool:
        """Positively homogeneous with a kink at 0 (ReLU, leaky ReLU): what He et al. derived for."""
        return self.slopes is not None and self.slopes[0] != self.slopes[1]

    def __call__(self, x: Array) -> Array:
        return self.fn(x)


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered activation: its function of the parameter, the default parameter (None: takes
    none), torch's gain and the slopes (below, above 0) of a positively homogeneous unit, each of
    the parameter."""

    make: Callable[[float | None], Callable[[Array], Array]]
    default: float | None = None
    gain: Callable[[float | None], float | None] = lambda _: None
    slopes: Callable[[float | None], tuple[float, float] | None] = lambda _: None


def _leaky(a: float) -> Callable[[Array], Array]:
    return functools.partial(jax.nn.leaky_relu, negative_slope=a)


_REGISTRY: dict[str, Entry] = {
    "linear": Entry(lambda _: lambda x: x, gain=lambda _: 1.0, slopes=lambda _: (1.0, 1.0)),
    "relu": Entry(lambda _: jax.nn.relu, gain=lambda _: 2.0**0.5, slopes=lambda _: (0.0, 1.0)),
    "leaky_relu": Entry(_leaky, 0.01, lambda a: (2.0 / (1.0 + a * a)) ** 0.5, lambda a: (a, 1.0)),
    "tanh": Entry(lambda _: jnp.tanh, gain=lambda _: 5.0 / 3.0),
    "sigmoid": Entry(lambda _: jax.nn.sigmoid, gain=lambda _: 1.0),
    "gelu": Entry(lambda _: functools.partial(jax.nn.gelu, approximate=False)),
    "silu": Entry(lambda _: jax.nn.silu),
    "elu": Entry(lambda _: jax.nn.elu),
    "selu": Entry(lambda _: jax.nn.selu, gain=lambda _: 0.75),
    "softplus": Entry(lambda _: jax.nn.softplus),
}


def register(name: str, entry: Entry) -> None:
    """Add an activation (from any package): theory, models, probes and reports then know it by name."""
    if not name.isidentifier() or name in _REGISTRY:
        raise ConfigError(f"activation name {name!r} must be a new identifier; taken: {', '.join(_REGISTRY)}.")
    _REGISTRY[name] = entry


def entry(name: str) -> Entry:
    """The registered entry of the activation `name` (without its parameter)."""
    if name not in _REGISTRY:
        raise choice("activation", name, names())
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """The registered activations' names."""
    return tuple(_REGISTRY)


def get(spec: str) -> Activation:
    """The activation named `spec`, e.g. "tanh" or "leaky_relu:0.2" (parameter after ':')."""
    if not isinstance(spec, str):
        raise ConfigError(f"activation must be a name such as 'relu' or 'leaky_relu:0.2'; got {spec!r}.")
    name, _, raw = spec.partition(":")
    if name not in _REGISTRY:
        raise choice("activation", spec, names())
    entry = _REGISTRY[name]
    if raw and entry.default is None:
        raise ConfigError(f"activation {name!r} takes no parameter; got {spec!r}.")
    param = entry.default
    if raw:
        try:
            param = float(raw)
        except ValueError:
            raise ConfigError(f"activation parameter must be a number, as in 'leaky_relu:0.2'; got {spec!r}.") from None
        if not 0.0 <= param < 1.0:
            raise ConfigError(f"leaky_relu slope must be in [0, 1); got {param:g}.")
    return Activation(name, param, entry.make(param), entry.gain(param), entry.slopes(param))
