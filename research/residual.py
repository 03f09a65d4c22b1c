"""A residual MLP of pre-activation blocks, with or without normalisation, whose branch scale is searched.

Each block adds x + W_out phi(N(W_in phi(N(x)))) (He et al. 2016's pre-activation order; N is a
LayerNorm, or nothing). The searched group "branch" is the branch's last layer (`branch = "last"`)
or both of its layers (`"all"`); the stem, the rest of the branch (He) and the readout (LeCun)
keep their own init. docs/theory.md section 10 derives where the branch scale should go with depth.
"""

from __future__ import annotations

import jax
from flax import nnx

from research import activations, own_model
from research.errors import choice, integer

NORMS = ("none", "layer")
BRANCHES = {"last": ("out",), "all": ("inner", "out")}
_HE = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")
_LECUN = jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal")


class Block(nnx.Module):
    """One pre-activation residual block on `width` units."""

    def __init__(self, width: int, activation: str, norm: str, *, rngs: nnx.Rngs):
        layer_norm = lambda: nnx.LayerNorm(width, rngs=rngs) if norm == "layer" else None  # noqa: E731
        self.norm_in, self.norm_mid = layer_norm(), layer_norm()
        self.inner = nnx.Linear(width, width, use_bias=False, kernel_init=_HE, rngs=rngs)
        self.out = nnx.Linear(width, width, use_bias=False, kernel_init=_HE, rngs=rngs)
        self.phi = activations.get(activation)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.inner(self.phi(_normed(self.norm_in, x)))
        return x + self.out(self.phi(_normed(self.norm_mid, h)))


class ResidualMLP(nnx.Module):
    """A dense stem, `depth` blocks, a final normalisation (if any) and activation, a dense readout."""

    def __init__(self, *, input_dim: int, width: int, depth: int, num_outputs: int, activation: str, norm: str,
                 rngs: nnx.Rngs):  # fmt: skip
        self.stem = nnx.Linear(input_dim, width, use_bias=False, kernel_init=_LECUN, rngs=rngs)
        self.blocks = nnx.List([Block(width, activation, norm, rngs=rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(width, rngs=rngs) if norm == "layer" else None
        self.readout = nnx.Linear(width, num_outputs, kernel_init=_LECUN, rngs=rngs)
        self.phi = activations.get(activation)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.readout(self.phi(_normed(self.norm, h)))


def _normed(norm, x: jax.Array) -> jax.Array:
    return x if norm is None else norm(x)


def plan(cfg) -> own_model.Plan:
    """The residual MLP the config describes and its searched branch layers."""
    kwargs = {k: cfg[k] for k in ("input_dim", "width", "depth", "num_outputs", "activation", "norm")}
    searched = tuple(("branch", f"blocks/*/{layer}/kernel", "dense") for layer in BRANCHES[cfg.branch])
    return own_model.Plan(ResidualMLP, kwargs, searched)


def validate(cfg) -> None:
    for field in ("input_dim", "width", "depth"):
        integer(cfg[field], f"model.{field}")
    if cfg.norm not in NORMS:
        raise choice("model.norm", cfg.norm, NORMS)
    if cfg.branch not in BRANCHES:
        raise choice("model.branch", cfg.branch, tuple(BRANCHES))


FAMILIES = {
    "resmlp": own_model.fields(
        plan,
        defaults=lambda: {"input_dim": 40, "width": 128, "depth": 8, "norm": "none", "branch": "last"},
        validate=validate,
        describe=lambda cfg: f"{cfg.depth} blocks x {cfg.width}, norm {cfg.norm}",
        input_shape=lambda cfg, length: (cfg.input_dim,),
        resize=lambda cfg, depth, width: cfg.update({"depth": depth, "width": width, "input_dim": width}),
        width_field="width",
        depth_unit="block",
        asrun="residual",
    ),
}
