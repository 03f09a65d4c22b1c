"""The variance-scaling family Var(W) = alpha * c / fan, its distributions and presets.

`alpha` multiplies a unit-variance draw, so it may be a traced JAX value: a new scale
never recompiles. Presets fix `c` and the fan mode (Xavier: c = 1 on fan_avg, so alpha 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from research.errors import ConfigError, choice, number
from research.names import DISTRIBUTIONS, FAN_MODES

Array = jax.Array
Initializer = Callable[[Array, Sequence[int], jnp.dtype], Array]

PRESETS = ("xavier", "he", "lecun", "leaky_he", "fixed")
# The scales float32 training holds with room to spare: alpha multiplies a variance that deep
# products raise to the depth's power. Search ranges and probes stay inside.
ALPHA_LIMITS = (1e-6, 1e6)
# Std of a standard normal truncated to [-2, 2]; dividing by it restores unit variance.
_TRUNCATED_STD = 0.87962566103423978


@dataclasses.dataclass(frozen=True)
class InitSpec:
    """A member of the family: Var(W) = alpha * scale / fan(mode), drawn from `distribution`.

    mode "fixed" ignores the fan: Var(W) = alpha * scale (the naive constant variance).
    """

    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "normal"

    def __post_init__(self):
        if self.mode not in FAN_MODES:
            raise choice("init.mode", self.mode, FAN_MODES)
        if self.distribution not in DISTRIBUTIONS:
            raise choice("init.distribution", self.distribution, DISTRIBUTIONS)
        number(self.scale, "init.scale", "a positive finite number", lambda v: v > 0)


def xavier(distribution: str = "normal") -> InitSpec:
    """Glorot & Bengio 2010: Var = 2 / (fan_in + fan_out)."""
    return InitSpec(1.0, "fan_avg", distribution)


def he(distribution: str = "normal") -> InitSpec:
    """He et al. 2015: Var = 2 / fan_in."""
    return InitSpec(2.0, "fan_in", distribution)


def lecun(distribution: str = "normal") -> InitSpec:
    """LeCun 1998: Var = 1 / fan_in."""
    return InitSpec(1.0, "fan_in", distribution)


def leaky_he(slope: float, distribution: str = "normal") -> InitSpec:
    """He for leaky ReLU with negative slope a: Var = 2 / ((1 + a^2) fan_in)."""
    return InitSpec(2.0 / (1.0 + slope * slope), "fan_in", distribution)


def fixed(std: float = 0.01, distribution: str = "normal") -> InitSpec:
    """The naive baseline: a constant std whatever the fan."""
    if not (isinstance(std, int | float) and std > 0):
        raise ConfigError(f"fixed init std must be a positive number; got {std!r}.")
    return InitSpec(float(std) ** 2, "fixed", distribution)


def preset(spec: str, distribution: str = "normal") -> InitSpec:
    """A preset by name: "xavier", "he", "lecun", "leaky_he:0.2" or "fixed:0.01"."""
    name, _, raw = str(spec).partition(":")
    if name not in PRESETS:
        raise choice("init preset", spec, PRESETS)
    if name in ("leaky_he", "fixed"):
        try:
            value = float(raw) if raw else 0.01
        except ValueError:
            raise ConfigError(f"init preset parameter must be a number, as in '{name}:0.01'; got {spec!r}.") from None
        return leaky_he(value, distribution) if name == "leaky_he" else fixed(value, distribution)
    if raw:
        raise ConfigError(f"init preset {name!r} takes no parameter; got {spec!r}.")
    return {"xavier": xavier, "he": he, "lecun": lecun}[name](distribution)


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel: dense (in, out), conv (*window, in, out), recurrent (h, h)."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        raise ConfigError(f"a kernel needs at least 2 dimensions (in, out); got shape {shape}.")
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _heads_in(shape: Sequence[int]) -> tuple[int, int]:
    """An attention projection into heads, (in, heads, head_dim) as nnx.MultiHeadAttention holds it."""
    return int(shape[0]), math.prod(int(d) for d in shape[1:])


def _heads_out(shape: Sequence[int]) -> tuple[int, int]:
    """An attention projection out of heads, (heads, head_dim, out)."""
    return math.prod(int(d) for d in shape[:-1]), int(shape[-1])


def _embedding(shape: Sequence[int]) -> tuple[int, int]:
    """An embedding table (vocabulary, features): fan_in is the features, as Flax's default_embed_init."""
    return int(shape[-1]), int(shape[0])


# How a parameter's shape gives its (fan_in, fan_out), by the layer kind that holds it.
FANS: dict[str, Callable[[Sequence[int]], tuple[int, int]]] = {
    "dense": fans, "conv": fans, "heads_in": _heads_in, "heads_out": _heads_out, "embedding": _embedding,
}  # fmt: skip


def variance(spec: InitSpec, shape: Sequence[int], alpha: float | Array = 1.0, fan: str = "dense") -> float | Array:
    """The variance the family prescribes for a parameter of `shape` held by a layer of kind `fan`."""
    fan_in, fan_out = FANS[fan](shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2, "fixed": 1}[spec.mode]
    return alpha * spec.scale / fan


def unit_sample(key: Array, shape: Sequence[int], distribution: str, dtype=jnp.float32) -> Array:
    """A zero-mean, unit-variance draw of `shape` from `distribution`."""
    shape = tuple(shape)
    if distribution == "normal":
        return jax.random.normal(key, shape, dtype)
    if distribution == "truncated_normal":
        return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) / _TRUNCATED_STD
    if distribution == "uniform":
        return jax.random.uniform(key, shape, dtype, -math.sqrt(3.0), math.sqrt(3.0))
    if distribution == "orthogonal":
        # Entries of a matrix with orthonormal rows or columns have variance 1/max(rows, cols).
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q = jax.nn.initializers.orthogonal(column_axis=-1)(key, (rows, cols), dtype)
        return q.reshape(shape) * math.sqrt(max(rows, cols))
    if distribution == "identity":
        # The one orthogonal matrix with no randomness (Le et al. 2015's IRNN): at alpha = 1 on
        # fan_in a square kernel is exactly I; "unit variance" here means unit row norm * sqrt(n).
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ConfigError(f"init.distribution 'identity' needs a square kernel; got shape {shape}.")
        return jnp.eye(shape[0], dtype=dtype) * math.sqrt(shape[0])
    raise choice("init.distribution", distribution, DISTRIBUTIONS)


def initializer(spec: InitSpec, alpha: float | Array = 1.0, fan: str = "dense") -> Initializer:
    """A `jax.nn.initializers`-style function drawing from the family at scale `alpha` (`fan`: FANS)."""
    if isinstance(alpha, int | float) and not (alpha > 0 and math.isfinite(alpha)):
        raise ConfigError(f"alpha must be a positive finite number; got {alpha!r}.")

    def init(key: Array, shape: Sequence[int], dtype=jnp.float32) -> Array:
        std = jnp.sqrt(jnp.asarray(variance(spec, shape, alpha, fan), dtype))
        return std * unit_sample(key, shape, spec.distribution, dtype)

    return init


def group_alpha(alpha, group: str):
    """The alpha of layer group `group`: `alpha` itself, or its entry when it maps groups to alphas."""
    if isinstance(alpha, Mapping):
        if group not in alpha:
            raise choice("alpha group", sorted(alpha), [group])
        return alpha[group]
    return alpha


def from_config(cfg) -> InitSpec:
    """An `InitSpec` from a config: either `preset` (a name) or `scale`, `mode`, `distribution`."""
    cfg = dict(cfg)
    distribution = cfg.get("distribution", "normal")
    if cfg.get("preset"):
        extra = set(cfg) - {"preset", "distribution"}
        if extra:
            raise ConfigError(
                f"init sets 'preset' together with {sorted(extra)}; give a preset or scale/mode, not both."
            )
        return preset(cfg["preset"], distribution)
    unknown = set(cfg) - {"scale", "mode", "distribution", "preset"}
    if unknown:
        raise ConfigError(f"init has unknown fields {sorted(unknown)}; accepted: preset, scale, mode, distribution.")
    return InitSpec(float(cfg.get("scale", 1.0)), cfg.get("mode", "fan_in"), distribution)
