"""Signal propagation at initialisation: per-layer forward, backward and Jacobian gains.

These are the cheap, precise objectives: no training, one compiled call for a whole grid
of `alpha` values and seeds. The optimum is where the fitted log-ratio per layer is zero.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from research import models
from research.errors import ConfigError

Array = jax.Array


class Stats(NamedTuple):
    """Per-layer statistics; leading axes are whatever the caller vmapped over."""

    forward: Array  # mean squared pre-activation, E[h_l^2]
    backward: Array  # mean squared gradient of a random readout w.r.t. h_l
    jacobian: Array  # ||J_l v||^2 / n_l over ||v||^2 / n_0: mean squared singular value of dh_l/dx


def measure(cfg, graph, key: Array, alpha, x: Array) -> Stats:
    """Statistics of one freshly initialised model on inputs `x` (a pure function)."""
    k_init, k_readout, k_tangent = jax.random.split(key, 3)
    state = models.init_state(cfg, k_init, alpha)
    logits, preacts = models.apply(graph, state, x)
    direction = jax.random.normal(k_readout, logits.shape, logits.dtype)

    def readout(taps):
        return jnp.sum(models.apply(graph, state, x, taps)[0] * direction)

    grads = jax.grad(readout)([jnp.zeros_like(h) for h in preacts])
    tangent = _input_tangent(cfg, k_tangent, x)
    _, jvps = jax.jvp(lambda xx: models.apply(graph, state, xx)[1], (x,), (tangent,))
    recurrent = models.family(cfg).recurrent
    tangent_power = jnp.mean(tangent[:, 0] ** 2) if recurrent else jnp.sum(tangent**2) / tangent[0].size / x.shape[0]
    return Stats(
        forward=jnp.stack([jnp.mean(h**2) for h in preacts]),
        backward=jnp.stack([jnp.mean(g**2) for g in grads]),
        jacobian=jnp.stack([jnp.mean(t**2) for t in jvps]) / tangent_power,
    )


def grid(cfg, alphas, seeds: Array, x: Array) -> Stats:
    """Statistics for every (alpha, seed) pair in one compiled call: axes [alpha, seed, layer].

    `alphas` is an array [A], or a dict of [A] arrays, one per layer group (models.groups).
    """
    if cfg.get("cell", "vanilla") != "vanilla":
        raise ConfigError(f"probes need model.cell 'vanilla'; got {cfg.cell!r}.")
    graph = models.graphdef(cfg)
    one = lambda alpha, seed: measure(cfg, graph, jax.random.key(seed), alpha, x)  # noqa: E731
    return jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(alphas, seeds)


def log_slope(values: Array, xp=jnp) -> Array:
    """Least-squares slope of log(values) against layer index, over the last axis: the one fit of a
    per-layer log-ratio (0 preserves the signal, log 2 doubles it at each layer), for the probes
    (`xp` jax.numpy) and for the theory of the network as run (`xp` numpy, float64).
    """
    logs = xp.log(values)
    layers = xp.arange(values.shape[-1], dtype=logs.dtype)
    centred = layers - layers.mean()
    return xp.sum(centred * (logs - logs.mean(axis=-1, keepdims=True)), axis=-1) / xp.sum(centred**2)


def study_inputs(cfg, dataset) -> Array:
    """What a probe study of experiment `cfg` measures on: its first `search.probe_batch` training
    inputs, or Gaussian ones of their shape (`search.probe_inputs`), times `search.probe_input_scale`."""
    x = dataset.x_train[: cfg.search.probe_batch]
    if cfg.search.probe_inputs == "gaussian":
        x = jax.random.normal(jax.random.key(10_000), x.shape, x.dtype)
    return x * cfg.search.probe_input_scale


def gaussian_inputs(cfg, key: Array, batch: int, length: int = 40) -> Array:
    """Standard normal inputs of the shape the model takes (a recurrent model: `length` steps)."""
    return jax.random.normal(key, models.input_shape(cfg, batch, length))


def _input_tangent(cfg, key: Array, x: Array) -> Array:
    """A random input direction; for a recurrent model only the first step, so time plays depth."""
    v = jax.random.normal(key, x.shape, x.dtype)
    if models.family(cfg).recurrent:
        v = v * (jnp.arange(x.shape[1]) == 0)[None, :, None]
    return v


def summary(cfg, alpha: float, seeds: int, batch: int, length: int = 40) -> tuple[dict, dict]:
    """Per-layer medians over `seeds` fresh models on Gaussian inputs, and each statistic's median
    fitted log-ratio per layer: what `research probe` prints."""
    x = gaussian_inputs(cfg, jax.random.key(10_000), batch, length=length)
    stats = grid(cfg, jnp.array([alpha]), jnp.arange(seeds), x)
    per_layer = {f: np.median(np.asarray(getattr(stats, f))[0], axis=0) for f in Stats._fields}
    ratio = {f: float(np.median(np.asarray(log_slope(getattr(stats, f)))[0])) for f in Stats._fields}
    return per_layer, ratio
