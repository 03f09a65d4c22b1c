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
    """A named nonlinearity with its optional parameter and torch's gain for it."""

    name: str
    param: float | None
    fn: Callable[[Array], Array]
    torch_gain: float | None  # torch.nn.init.calculate_gain, None where torch has none

    @property
    def label(self) -> str:
        return self.name if self.param is None else f"{self.name}:{self.param:g}"

    def __call__(self, x: Array) -> Array:
        return self.fn(x)


def _leaky(a: float) -> Callable[[Array], Array]:
    return functools.partial(jax.nn.leaky_relu, negative_slope=a)


# name -> (function of the parameter, default parameter or None, torch gain of the parameter)
_REGISTRY: dict[str, tuple[Callable, float | None, Callable[[float | None], float | None]]] = {
    "linear": (lambda _: lambda x: x, None, lambda _: 1.0),
    "relu": (lambda _: jax.nn.relu, None, lambda _: 2.0**0.5),
    "leaky_relu": (_leaky, 0.01, lambda a: (2.0 / (1.0 + a * a)) ** 0.5),
    "tanh": (lambda _: jnp.tanh, None, lambda _: 5.0 / 3.0),
    "sigmoid": (lambda _: jax.nn.sigmoid, None, lambda _: 1.0),
    "gelu": (lambda _: functools.partial(jax.nn.gelu, approximate=False), None, lambda _: None),
    "silu": (lambda _: jax.nn.silu, None, lambda _: None),
    "elu": (lambda _: jax.nn.elu, None, lambda _: None),
    "selu": (lambda _: jax.nn.selu, None, lambda _: 0.75),
    "softplus": (lambda _: jax.nn.softplus, None, lambda _: None),
}

NAMES = tuple(_REGISTRY)


def get(spec: str) -> Activation:
    """The activation named `spec`, e.g. "tanh" or "leaky_relu:0.2" (parameter after ':')."""
    if not isinstance(spec, str):
        raise ConfigError(f"activation must be a name such as 'relu' or 'leaky_relu:0.2'; got {spec!r}.")
    name, _, raw = spec.partition(":")
    if name not in _REGISTRY:
        raise choice("activation", spec, NAMES)
    make, default, gain = _REGISTRY[name]
    if raw and default is None:
        raise ConfigError(f"activation {name!r} takes no parameter; got {spec!r}.")
    param = default
    if raw:
        try:
            param = float(raw)
        except ValueError:
            raise ConfigError(f"activation parameter must be a number, as in 'leaky_relu:0.2'; got {spec!r}.") from None
        if not 0.0 <= param < 1.0:
            raise ConfigError(f"leaky_relu slope must be in [0, 1); got {param:g}.")
    return Activation(name, param, make(param), gain(param))
