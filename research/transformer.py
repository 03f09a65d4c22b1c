"""A small pre-LN Transformer classifier on token sequences, whose output projections' scale is searched.

Tokens and positions are embedded, each block adds x + Attn(LN(x)) and x + W_2 gelu(W_1 LN(x)),
a final LayerNorm and a mean over positions feed the readout. The searched group "out" holds every
block's attention output projection and W_2 (the layers DeepNet, Wang et al. 2022, scales by
beta); the rest keep Xavier (embeddings: Flax's default). docs/theory.md section 11.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from research import own_model
from research.errors import integer, require

_XAVIER = jax.nn.initializers.glorot_normal()


class Block(nnx.Module):
    """One pre-LN block: self-attention, then a GELU MLP `mlp_ratio` times wider."""

    def __init__(self, features: int, heads: int, mlp_ratio: int, *, rngs: nnx.Rngs):
        self.ln_attention = nnx.LayerNorm(features, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(
            num_heads=heads, in_features=features, kernel_init=_XAVIER, use_bias=False, decode=False, rngs=rngs
        )
        self.ln_mlp = nnx.LayerNorm(features, rngs=rngs)
        self.mlp_in = nnx.Linear(features, mlp_ratio * features, kernel_init=_XAVIER, rngs=rngs)
        self.mlp_out = nnx.Linear(mlp_ratio * features, features, kernel_init=_XAVIER, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attention(self.ln_attention(x))
        return x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.ln_mlp(x))))


class Transformer(nnx.Module):
    """Token ids [batch, length] (as floats, from the data pipeline) to logits."""

    def __init__(self, *, vocab: int, length: int, features: int, heads: int, depth: int, mlp_ratio: int,
                 num_outputs: int, rngs: nnx.Rngs):  # fmt: skip
        self.tokens = nnx.Embed(vocab, features, rngs=rngs)
        self.positions = nnx.Embed(length, features, rngs=rngs)
        self.blocks = nnx.List([Block(features, heads, mlp_ratio, rngs=rngs) for _ in range(depth)])
        self.ln = nnx.LayerNorm(features, rngs=rngs)
        self.readout = nnx.Linear(features, num_outputs, kernel_init=_XAVIER, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        # One-hot products, not gathers: a gather's gradient is a scatter, slow under a population's vmap.
        one_hot = jax.nn.one_hot(x.astype(jnp.int32), self.tokens.num_embeddings, dtype=x.dtype)
        h = one_hot @ self.tokens.embedding[...] + self.positions.embedding[...]
        for block in self.blocks:
            h = block(h)
        return self.readout(self.ln(h).mean(axis=-2))


def plan(cfg) -> own_model.Plan:
    """The Transformer the config describes and its searched output projections."""
    kwargs = {k: cfg[k] for k in ("vocab", "length", "features", "heads", "depth", "mlp_ratio", "num_outputs")}
    searched = (("out", "blocks/*/attention/out/kernel", "heads_out"), ("out", "blocks/*/mlp_out/kernel", "dense"))
    return own_model.Plan(Transformer, kwargs, searched)


def validate(cfg) -> None:
    for field in ("vocab", "length", "features", "heads", "depth", "mlp_ratio"):
        integer(cfg[field], f"model.{field}")
    require(cfg.features % cfg.heads == 0, f"model.features ({cfg.features}) must be a multiple of model.heads "
                                           f"({cfg.heads}).")  # fmt: skip


FAMILIES = {
    "transformer": own_model.fields(
        plan,
        defaults=lambda: {
            "vocab": 8,
            "length": 12,
            "features": 32,
            "heads": 4,
            "depth": 2,
            "mlp_ratio": 4,
            "init": {"scale": 1.0, "mode": "fan_avg", "distribution": "normal"},
        },  # fmt: skip
        validate=validate,
        describe=lambda cfg: f"{cfg.depth} blocks x {cfg.features}, {cfg.heads} heads",
        input_shape=lambda cfg, length: (cfg.length,),
        resize=lambda cfg, depth, width: cfg.update({"depth": depth, "features": width}),
        width_field="features",
        depth_unit="block",
    ),
}
