"""Flax NNX models (MLP, plain CNN, RNN) built from a ConfigDict and init specs.

The searched layers draw from the variance family at `alpha` (a traced value is fine);
the readout keeps its own init, so a sweep changes only the scale it studies. Each model
returns its logits and the per-layer pre-activations that the probes measure.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from research import activations, own_model, residual, transformer
from research import init as initlib
from research.errors import ConfigError, choice, integer, number, require

Array = jax.Array
CELLS = ("vanilla", "lstm", "gru")
Alpha = float | Array | Mapping[str, float | Array]


def family(cfg_or_name) -> Family:
    """The registered family of a model config (or of a name); unknown names list the accepted ones."""
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.get("name")
    if name not in FAMILIES:
        raise choice("model.name", name, tuple(FAMILIES))
    return FAMILIES[name]


def default_config(name: str) -> ml_collections.ConfigDict:
    """Small defaults for each model family (the quick MNIST-1D shapes)."""
    fam = family(name)
    cfg = ml_collections.ConfigDict()
    cfg.name = name
    cfg.activation = "relu"
    cfg.sigma_b = 0.0
    cfg.num_outputs = 10
    cfg.init = ml_collections.ConfigDict({"scale": 1.0, "mode": "fan_in", "distribution": "normal"})
    cfg.readout_init = ml_collections.ConfigDict({"preset": "lecun", "distribution": "normal"})
    cfg.update(fam.defaults())
    return cfg


def groups(cfg) -> tuple[str, ...]:
    """Names of the layer groups whose scale `alpha` sets (one alpha each)."""
    found = family(cfg).groups
    return found(cfg) if callable(found) else found


def hidden_widths(cfg) -> list[int]:
    """Per-layer widths of an MLP, from `widths` or `depth` x `width`, validated."""
    integer(cfg.depth, "model.depth")
    if cfg.widths:
        widths = list(cfg.widths)
        require(
            len(widths) == cfg.depth,
            f"model.widths must list one width per hidden layer ({cfg.depth}); got {len(widths)}.",
        )
    else:
        widths = [cfg.width] * cfg.depth
    for w in widths:
        integer(w, "model.widths" if cfg.widths else "model.width")
    return widths


def validate(cfg) -> None:
    """Stop with one clear sentence on the first bad model setting."""
    fam = family(cfg)
    activations.get(cfg.activation)
    number(cfg.sigma_b, "model.sigma_b", "a number >= 0", lambda v: v >= 0)
    integer(cfg.num_outputs, "model.num_outputs")
    initlib.from_config(cfg.init)
    initlib.from_config(cfg.readout_init)
    fam.validate(cfg)


def probe_config(name: str, activation: str, depth: int, width: int, init: dict, sigma_b: float = 0.0):
    """A square model of family `name` for probing: `depth` layers (an RNN: time steps) of `width`."""
    integer(depth, "--depth")
    integer(width, "--width")
    cfg = default_config(name)
    cfg.update({"activation": activation, "sigma_b": sigma_b, "init": dict(init)})
    family(cfg).resize(cfg, depth, width)
    validate(cfg)
    return cfg


def width(cfg) -> int:
    """The width a width series varies (MLP units, CNN channels, RNN hidden units)."""
    field = family(cfg).width_field
    require(bool(field), f"model {cfg.name!r} has no width a series can vary.")
    return int(cfg[field])


def input_shape(cfg, batch: int, length: int = 40) -> tuple[int, ...]:
    """Shape of a batch of inputs the model takes (a recurrent family: `length` time steps)."""
    return (batch, *family(cfg).input_shape(cfg, length))


def forward_flops(cfg, example_shape: tuple[int, ...]) -> float:
    """Matmul FLOPs (2 per multiply-add) of one example's forward pass, readout included."""
    return family(cfg).flops(cfg, tuple(example_shape))


class MLP(nnx.Module):
    """Fully connected net: hidden layers at the searched init, then a fixed-init readout."""

    def __init__(self, cfg, alpha: Alpha, *, rngs: nnx.Rngs):
        widths = [cfg.input_dim, *hidden_widths(cfg)]
        spec, bias = initlib.from_config(cfg.init), _bias_init(cfg.sigma_b)
        kernel = initlib.initializer(spec, initlib.group_alpha(alpha, "hidden"))
        self.activation = activations.get(cfg.activation)
        self.layers = nnx.List(
            [nnx.Linear(a, b, kernel_init=kernel, bias_init=bias, rngs=rngs) for a, b in itertools.pairwise(widths)]
        )
        self.readout = _readout(cfg, widths[-1], rngs)

    def __call__(self, x: Array, taps: Sequence[Array] | None = None) -> tuple[Array, list[Array]]:
        x, preacts = _feed_forward(self.layers, self.activation, x, taps)
        return self.readout(x), preacts


class PatchConv(nnx.Module):
    """A 'SAME' convolution as one matmul over shifted copies of the input (im2col).

    Same kernel layout as nnx.Conv (*window, in, out), so fans and inits are unchanged. Under
    vmap over a population XLA runs it as batched matmuls; a vmapped nnx.Conv becomes a
    grouped convolution, over 10x slower on CPU (measured in the CNN experiment's setting).
    """

    def __init__(self, in_features: int, out_features: int, window, stride: int, *, kernel_init, bias_init, rngs):
        self.kernel = nnx.Param(kernel_init(rngs.params(), (*window, in_features, out_features)))
        self.bias = nnx.Param(bias_init(rngs.params(), (out_features,)))
        self.window, self.stride = tuple(window), stride

    def __call__(self, x: Array) -> Array:
        spatial = x.shape[1:-1]
        pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in self.window]
        padded = jnp.pad(x, ((0, 0), *pads, (0, 0)))
        shifts = itertools.product(*(range(k) for k in self.window))
        patches = jnp.concatenate(
            [
                padded[(slice(None), *(slice(o, o + n) for o, n in zip(offset, spatial, strict=True)))]
                for offset in shifts
            ],
            axis=-1,
        )
        if self.stride > 1:
            patches = patches[(slice(None), *(slice(None, None, self.stride) for _ in spatial))]
        kernel = self.kernel[...]
        return patches @ kernel.reshape(-1, kernel.shape[-1]) + self.bias[...]


class CNN(nnx.Module):
    """Plain 1-D or 2-D convolutional net without normalisation, global-average-pooled readout."""

    def __init__(self, cfg, alpha: Alpha, *, rngs: nnx.Rngs):
        ndim = len(cfg.input_shape) - 1
        spec, bias = initlib.from_config(cfg.init), _bias_init(cfg.sigma_b)
        kernel = initlib.initializer(spec, initlib.group_alpha(alpha, "hidden"))
        features = [cfg.input_shape[-1]] + [cfg.channels] * cfg.depth
        self.activation = activations.get(cfg.activation)
        self.layers = nnx.List(
            [
                PatchConv(a, b, (cfg.kernel_size,) * ndim, cfg.stride, kernel_init=kernel, bias_init=bias, rngs=rngs)
                for a, b in itertools.pairwise(features)
            ]
        )
        self.readout = _readout(cfg, cfg.channels, rngs)

    def __call__(self, x: Array, taps: Sequence[Array] | None = None) -> tuple[Array, list[Array]]:
        x, preacts = _feed_forward(self.layers, self.activation, x, taps)
        return self.readout(x.mean(axis=tuple(range(1, x.ndim - 1)))), preacts


class RNN(nnx.Module):
    """Recurrent net over [batch, time, features]; time steps play the layers' role.

    The vanilla cell h_t = phi(W_x x_t + W_h h_{t-1} + b) has separately initialised
    input ("input" group) and recurrent ("recurrent" group) kernels; LSTM and GRU cells
    are there for comparison and take the same two inits.
    """

    def __init__(self, cfg, alpha: Alpha, *, rngs: nnx.Rngs):
        kernel = initlib.initializer(initlib.from_config(cfg.init), initlib.group_alpha(alpha, "input"))
        recurrent_spec = initlib.from_config(cfg.recurrent_init)
        recurrent = initlib.initializer(recurrent_spec, initlib.group_alpha(alpha, "recurrent"))
        bias = _bias_init(cfg.sigma_b)
        self.cell = cfg.cell
        self.activation = activations.get(cfg.activation)
        if cfg.cell == "vanilla":
            self.input = nnx.Linear(cfg.input_dim, cfg.hidden, kernel_init=kernel, bias_init=bias, rngs=rngs)
            self.recurrent = nnx.Linear(cfg.hidden, cfg.hidden, use_bias=False, kernel_init=recurrent, rngs=rngs)
        else:
            cell = nnx.LSTMCell if cfg.cell == "lstm" else nnx.GRUCell
            self.rnn = nnx.RNN(
                cell(
                    cfg.input_dim,
                    cfg.hidden,
                    kernel_init=kernel,
                    recurrent_kernel_init=recurrent,
                    bias_init=bias,
                    rngs=rngs,
                ),
                rngs=False,
            )
        self.readout = _readout(cfg, cfg.hidden, rngs)

    def __call__(self, x: Array, taps: Array | None = None) -> tuple[Array, list[Array]]:
        if self.cell != "vanilla":
            if taps is not None:
                raise ConfigError("probes need the vanilla RNN cell; model.cell is " + repr(self.cell) + ".")
            # zeros_like a parameter: under a sharded population the state must vary over members,
            # as the parameters do, or scan rejects a carry whose type changes between steps.
            h0 = jnp.zeros_like(self.readout.kernel[...], shape=(x.shape[0], self.readout.in_features), dtype=x.dtype)
            hs = self.rnn(x, initial_carry=(h0, h0) if self.cell == "lstm" else h0)
            return self.readout(hs[:, -1]), list(jnp.moveaxis(hs, 1, 0))
        w_in, b_in = self.input.kernel[...], self.input.bias[...]
        w_rec, phi = self.recurrent.kernel[...], self.activation
        inputs = jnp.moveaxis(x, 1, 0) @ w_in + b_in  # [time, batch, hidden]
        if taps is not None:
            inputs = inputs + jnp.stack(list(taps))

        def step(h, u):
            pre = u + h @ w_rec
            return phi(pre), pre

        h, preacts = jax.lax.scan(step, jnp.zeros_like(inputs[0]), inputs)  # varies over members as inputs do
        return self.readout(h), list(preacts)


def build(cfg, alpha: Alpha = 1.0, *, rngs: nnx.Rngs) -> nnx.Module:
    """The model `cfg` describes, its searched layers at scale `alpha`."""
    validate(cfg)
    return family(cfg).module(cfg, alpha, rngs=rngs)


def init_state(cfg, key: Array, alpha: Alpha) -> nnx.State:
    """Parameters of a fresh model as a pure function of (key, alpha): vmap and jit apply."""
    return nnx.state(family(cfg).module(cfg, alpha, rngs=nnx.Rngs(params=key)), nnx.Param)


def graphdef(cfg) -> nnx.GraphDef:
    """The static structure of the model, shared by every member of a population."""
    validate(cfg)
    model = nnx.eval_shape(lambda: family(cfg).module(cfg, 1.0, rngs=nnx.Rngs(0)))
    return nnx.split(model, nnx.Param)[0]


def apply(graph: nnx.GraphDef, state: nnx.State, x: Array, taps=None) -> tuple[Array, list[Array]]:
    """Logits and per-layer pre-activations of the model `(graph, state)` on `x`."""
    return nnx.merge(graph, state)(x, taps)


def param_shapes(cfg) -> nnx.State:
    """The parameters of the model `cfg` describes, as shapes alone: sizing a huge model costs nothing."""
    return jax.eval_shape(lambda: init_state(cfg, jax.random.key(0), 1.0))


def count_params(state: nnx.State) -> int:
    """Number of scalar parameters in `state`."""
    return sum(leaf.size for leaf in jax.tree.leaves(state))


def _feed_forward(layers, activation, x: Array, taps) -> tuple[Array, list[Array]]:
    """Run the hidden stack; `taps` (zeros) are added to each pre-activation for gradients."""
    preacts = []
    for i, layer in enumerate(layers):
        h = layer(x) + (taps[i] if taps is not None else 0.0)
        preacts.append(h)
        x = activation(h)
    return x, preacts


def _bias_init(sigma_b: float):
    return jax.nn.initializers.normal(sigma_b) if sigma_b > 0 else jax.nn.initializers.zeros


def _readout(cfg, width: int, rngs: nnx.Rngs) -> nnx.Linear:
    """The fixed-init output layer (`READOUT`), the same in every family."""
    kernel = initlib.initializer(initlib.from_config(cfg.readout_init))
    return nnx.Linear(width, cfg.num_outputs, kernel_init=kernel, bias_init=jax.nn.initializers.zeros, rngs=rngs)


# --- the registry: everything the rest of the code asks of a family -------------------------
@dataclasses.dataclass(frozen=True)
class Family:
    """One model family. Adding a family is one `Family` entry in `FAMILIES`, nothing else."""

    name: str
    module: Callable  # (cfg, alpha, *, rngs) -> the nnx.Module
    defaults: Callable[[], dict]  # the family's own config fields
    validate: Callable  # (cfg) -> None, raising ConfigError
    groups: tuple[str, ...] | Callable  # layer groups with their own alpha (or cfg -> them); the first is the
    # one theory speaks of
    hidden_fan_in: Callable  # (cfg) -> fan_in of a typical searched layer
    describe: Callable  # (cfg) -> "20x128", for tables
    input_shape: Callable  # (cfg, length) -> one example's shape
    flops: Callable  # (cfg, example_shape) -> forward matmul FLOPs
    resize: Callable  # (cfg, depth, width) -> None: a square probe model
    width_field: str = "width"  # the config field a width series sets
    recurrent: bool = False  # time plays depth: probes perturb the first step only
    depth_unit: str = "layer"
    layers: str = "layers"  # the parameter path of the stack of searched layers (feed-forward families)
    asrun: str | None = "feed_forward"  # its mean-field recursion (asrun.RECURSIONS), None: none known
    recurrent_kernel: Callable[[str], bool] = lambda path: False  # kernels that carry state across time
    plan: Callable | None = None  # a module built by a factory and path patterns (own_model.Plan)


READOUT = "readout"  # every family's fixed-init output layer, by this parameter path


def register(fam: Family) -> None:
    """Add a model family (from any package): configs then name it in `model.name`."""
    require(fam.name not in FAMILIES, f"model family {fam.name!r} is registered already.")
    FAMILIES[fam.name] = fam


def _mlp_validate(cfg) -> None:
    hidden_widths(cfg)
    integer(cfg.input_dim, "model.input_dim")


def _mlp_flops(cfg, example_shape) -> float:
    widths = [math.prod(example_shape), *hidden_widths(cfg), cfg.num_outputs]
    return 2.0 * sum(a * b for a, b in itertools.pairwise(widths))


def _mlp_resize(cfg, depth: int, width: int) -> None:
    cfg.update({"depth": depth, "width": width, "input_dim": width})


def _cnn_validate(cfg) -> None:
    integer(cfg.depth, "model.depth")
    require(
        len(cfg.input_shape) in (2, 3), f"model.input_shape must be (length, c) or (h, w, c); got {cfg.input_shape}."
    )
    for field in ("channels", "kernel_size", "stride"):
        integer(cfg[field], f"model.{field}")


def _cnn_flops(cfg, example_shape) -> float:
    ndim, spatial, total = len(example_shape) - 1, list(example_shape[:-1]), 0.0
    for c_in in [example_shape[-1]] + [cfg.channels] * (cfg.depth - 1):
        spatial = [-(-n // cfg.stride) for n in spatial]
        total += 2.0 * math.prod(spatial) * cfg.kernel_size**ndim * c_in * cfg.channels
    return total + 2.0 * cfg.channels * cfg.num_outputs


def _cnn_resize(cfg, depth: int, width: int) -> None:
    cfg.update({"depth": depth, "channels": width, "input_shape": (64, width)})


def _rnn_validate(cfg) -> None:
    if cfg.cell not in CELLS:
        raise choice("model.cell", cfg.cell, CELLS)
    integer(cfg.hidden, "model.hidden")
    integer(cfg.input_dim, "model.input_dim")
    initlib.from_config(cfg.recurrent_init)


def _rnn_flops(cfg, example_shape) -> float:
    gates = {"vanilla": 1, "lstm": 4, "gru": 3}[cfg.cell]
    per_step = 2.0 * gates * (cfg.input_dim + cfg.hidden) * cfg.hidden
    return example_shape[0] * per_step + 2.0 * cfg.hidden * cfg.num_outputs


def _rnn_recurrent_kernel(path: str) -> bool:
    """The vanilla cell's `recurrent`; nnx's LSTM and GRU cells name their hidden-state kernels h*."""
    return "recurrent" in path or (path.startswith("rnn/") and path.split("/")[-1].startswith("h"))


def _rnn_resize(cfg, depth: int, width: int) -> None:
    cfg.update({"hidden": width, "input_dim": width, "recurrent_init": dict(cfg.init)})


FAMILIES: dict[str, Family] = {
    "mlp": Family(
        "mlp", MLP,
        defaults=lambda: {"input_dim": 40, "depth": 20, "width": 128, "widths": ()},  # widths: per layer, or ()
        validate=_mlp_validate,
        groups=("hidden",),
        hidden_fan_in=lambda cfg: hidden_widths(cfg)[-1],
        describe=lambda cfg: f"widths {list(cfg.widths)}" if cfg.widths else f"{cfg.depth}x{cfg.width}",
        input_shape=lambda cfg, length: (cfg.input_dim,),
        flops=_mlp_flops,
        resize=_mlp_resize,
    ),
    "cnn": Family(
        "cnn", CNN,
        # input_shape: spatial dims then channels, (length, c) or (h, w, c)
        defaults=lambda: {"input_shape": (40, 1), "depth": 10, "channels": 32, "kernel_size": 3, "stride": 1},
        validate=_cnn_validate,
        groups=("hidden",),
        hidden_fan_in=lambda cfg: cfg.kernel_size ** (len(cfg.input_shape) - 1) * cfg.channels,
        describe=lambda cfg: f"{cfg.depth}x{cfg.channels}",
        input_shape=lambda cfg, length: tuple(cfg.input_shape),
        flops=_cnn_flops,
        resize=_cnn_resize,
        width_field="channels",
    ),
    "rnn": Family(
        "rnn", RNN,
        defaults=lambda: {
            "activation": "tanh", "cell": "vanilla", "input_dim": 1, "hidden": 128,
            "recurrent_init": ml_collections.ConfigDict({"scale": 1.0, "mode": "fan_in", "distribution": "normal"}),
        },
        validate=_rnn_validate,
        groups=("input", "recurrent"),
        hidden_fan_in=lambda cfg: cfg.hidden,
        describe=lambda cfg: f"{cfg.cell} {cfg.hidden}",
        input_shape=lambda cfg, length: (length, cfg.input_dim),
        flops=_rnn_flops,
        resize=_rnn_resize,
        width_field="hidden",
        recurrent=True,
        depth_unit="step",
        layers="",
        asrun="recurrent",
        recurrent_kernel=_rnn_recurrent_kernel,
    ),
    own_model.NAME: Family(own_model.NAME, **own_model.fields(own_model.plan, defaults=own_model.defaults,
                                                             validate=own_model.validate)),
    **{name: Family(name, **fields) for name, fields in {**residual.FAMILIES, **transformer.FAMILIES}.items()},
}  # fmt: skip
