"""The training recipe: the `train` config section (defaults, validation) and what a member
minimises and how it steps: the loss, the error, chance level and the optimiser. The learning
rate is not part of the optimiser: each member applies its own (a traced array).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from research import data as datalib
from research.errors import choice, integer, number, require

Array = jax.Array
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
LOSSES = ("cross_entropy", "mse")


def loss(kind: str, task: str, logits: Array, y: Array) -> Array:
    """Per-example loss of `kind` (a regression task: squared error of the first output)."""
    if task == "regression":
        return (logits[:, 0] - y) ** 2
    if kind == "cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum((logits - jax.nn.one_hot(y, logits.shape[-1])) ** 2, axis=-1)


def chance_loss(kind: str, dataset: datalib.Dataset) -> float:
    """The training loss of the best constant prediction: what a diverged member is worth."""
    y = np.asarray(dataset.y_train)
    if dataset.task == "regression":
        return float(np.var(y))
    p = np.bincount(y.astype(int), minlength=dataset.num_outputs) / len(y)
    if kind == "cross_entropy":
        return float(-np.sum(p[p > 0] * np.log(p[p > 0])))
    return float(1.0 - np.sum(p * p))


def error(task: str, logits: Array, y: Array) -> Array:
    """Classification error, or a regression's mean squared error."""
    if task == "regression":
        return jnp.mean((logits[:, 0] - y) ** 2)
    return jnp.mean(jnp.argmax(logits, axis=-1) != y)


def optimizer(cfg) -> optax.GradientTransformation:
    """The update direction without the learning rate, which each member applies itself."""
    if cfg.optimizer == "sgd":
        return optax.identity()
    if cfg.optimizer == "momentum":
        return optax.trace(decay=cfg.momentum)
    if cfg.optimizer == "adam":
        return optax.scale_by_adam()
    return optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(cfg.weight_decay))


def default_config() -> ml_collections.ConfigDict:
    """Training settings of the quick He/ReLU task (SGD momentum 0.9, 1000 steps of 128)."""
    cfg = ml_collections.ConfigDict()
    cfg.optimizer = "momentum"
    cfg.momentum = 0.9
    cfg.weight_decay = 1e-4  # adamw only
    cfg.learning_rate = 0.01  # used when the search does not set it
    cfg.loss = "cross_entropy"
    cfg.batch_size = 128
    cfg.steps = 1000
    cfg.chunk_steps = 100
    cfg.eval_examples = 1024  # train/validation examples evaluated after each chunk
    cfg.shared_data_order = True  # one batch order (from data_seed) for all members, else one per seed
    cfg.data_seed = 0
    # The loss a member that produced NaN/inf reports; None: chance level (the best constant
    # predictor's loss, ln 10 for ten balanced classes). Sampler and estimator see the same value.
    cfg.diverged_value = ml_collections.config_dict.placeholder(float)
    cfg.member_block = 0  # most members a device trains side by side through a chunk; 0: 2 on CPU, else all
    return cfg


def validate(cfg) -> None:
    """Stop with one clear sentence on the first bad training setting."""
    if cfg.optimizer not in OPTIMIZERS:
        raise choice("train.optimizer", cfg.optimizer, OPTIMIZERS)
    if cfg.loss not in LOSSES:
        raise choice("train.loss", cfg.loss, LOSSES)
    for field in ("batch_size", "steps", "chunk_steps", "eval_examples"):
        integer(cfg[field], f"train.{field}")
    require(
        cfg.steps % cfg.chunk_steps == 0,
        f"train.steps ({cfg.steps}) must be a multiple of train.chunk_steps ({cfg.chunk_steps}).",
    )
    number(cfg.momentum, "train.momentum", "a number in [0, 1)", lambda v: 0 <= v < 1)
    number(cfg.learning_rate, "train.learning_rate", "a positive number", lambda v: v > 0)
    number(cfg.weight_decay, "train.weight_decay", "a number >= 0", lambda v: v >= 0)
    if cfg.diverged_value is not None:
        number(cfg.diverged_value, "train.diverged_value", "None (chance level) or a finite number", lambda v: True)
    integer(cfg.data_seed, "train.data_seed", minimum=0)
    integer(cfg.member_block, "train.member_block", minimum=0)
