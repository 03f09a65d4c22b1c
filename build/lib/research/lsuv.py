"""Adaptive, data-dependent init: layer-sequential unit-variance (LSUV, Mishkin & Matas 2015).

Mishkin & Matas 2015: orthonormal init, then rescale each layer in turn until its output
variance on a data batch is 1 (within `tol`). The scales it finds, written as alpha =
Var(W) * fan_in, say what the data ask for; theory predicts 1/E[phi^2] for layers after
the first (ReLU: 2) and 1 for the first (its inputs are standardised, not activated).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from research import init, models, theory
from research.errors import ConfigError


def scales(model_cfg, x: jax.Array, key: jax.Array, *, tol: float = 0.1, max_iter: int = 10) -> np.ndarray:
    """alpha = Var(W_l) * fan_in_l found by LSUV for each hidden layer of an MLP or CNN."""
    if models.family(model_cfg).recurrent:
        raise ConfigError(f"LSUV here handles feed-forward models (mlp, cnn); got {model_cfg.name!r}.")
    cfg = models.default_config(model_cfg.name)
    cfg.update(model_cfg.to_dict())
    cfg.init = {"scale": 1.0, "mode": "fan_in", "distribution": "orthogonal"}
    graph = models.graphdef(cfg)
    state = models.init_state(cfg, key, 1.0)
    forward = jax.jit(lambda s: [jnp.mean(h**2) for h in models.apply(graph, s, x)[1]])
    stack = state[models.family(cfg).layers]
    found = []
    for layer in range(len(stack)):
        for _ in range(max_iter):
            var = float(forward(state)[layer])
            if abs(var - 1.0) < tol:
                break
            stack[layer]["kernel"] = stack[layer]["kernel"] / np.sqrt(var)
        kernel = stack[layer]["kernel"]
        found.append(float(jnp.var(kernel)) * init.fans(kernel.shape)[0])
    return np.asarray(found)


def compare(model_cfg, x: jax.Array, key: jax.Array) -> list[tuple[int, float, float]]:
    """(layer, LSUV's alpha, theory's alpha) per hidden layer: 1 for the first (standardised inputs,
    no activation before it), 1/E[phi^2] after it."""
    forward = theory.forward_rule(model_cfg.activation)
    return [(i + 1, float(a), 1.0 if i == 0 else forward) for i, a in enumerate(scales(model_cfg, x, key))]
