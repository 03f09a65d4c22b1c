"""Any Flax NNX module under the init search: a factory named in the config, its searched parameters
chosen by path patterns, its layers probed through their outputs (docs/your-model.md).

The factory is called as `factory(rngs=nnx.Rngs(...), **model.kwargs)` and returns a module whose
`__call__(x)` gives the logits. Each entry (group, pattern, fan) of `model.searched` draws every
parameter whose path matches the glob `pattern` from the variance family at that group's alpha, with
its fans read by the layer kind `fan` (init.FANS); every other parameter keeps the module's own init.
The probes read the outputs of the modules holding searched parameters, in call order.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import json
from collections.abc import Callable
from typing import NamedTuple

import jax
import ml_collections
from flax import nnx

from research import init as initlib
from research import taps
from research.errors import ConfigError, choice, require

NAME = "module"


class Plan(NamedTuple):
    """What to build and what to search: the factory, its keyword arguments, (group, pattern, fan)s."""

    factory: Callable[..., nnx.Module]
    kwargs: dict
    searched: tuple[tuple[str, str, str], ...]


class Adapted(nnx.Module):
    """A module from `plan(cfg)` with its searched parameters redrawn at `alpha`; returns the logits
    and the searched layers' outputs (`taps`, zeros, are added to them for the gradient probe)."""

    def __init__(self, plan: Callable[[ml_collections.ConfigDict], Plan], cfg, alpha, *, rngs: nnx.Rngs):
        p = plan(cfg)
        self.net = p.factory(rngs=rngs, **p.kwargs)
        spec, key, params = initlib.from_config(cfg.init), rngs.params(), parameters(self.net)
        searched = assignments(p.searched, params)
        for i, (group, path, fan) in enumerate(searched):
            param = params[path]
            draw = initlib.initializer(spec, initlib.group_alpha(alpha, group), fan)
            param.set_value(draw(jax.random.fold_in(key, i), param.shape, param.dtype))
        self.owners = tuple(dict.fromkeys(path.rpartition("/")[0] for _, path, _ in searched))  # tapped modules

    def __call__(self, x, tap=None):
        nodes = {"/".join(map(str, path)): node for path, node in nnx.iter_graph(self.net)}
        with taps.tapped([nodes[o] for o in self.owners], tap) as outputs:
            logits = self.net(x)
        return logits, outputs


def parameters(net: nnx.Module) -> dict[str, nnx.Param]:
    """Every parameter of `net` by its path ("blocks/0/linear/kernel"), in graph order."""
    return {"/".join(map(str, path)): node for path, node in nnx.iter_graph(net) if isinstance(node, nnx.Param)}


def assignments(searched, params: dict[str, nnx.Param]) -> list[tuple[str, str, str]]:
    """(group, path, fan) of each searched parameter; a pattern matching nothing, a parameter matched
    twice or a shape the fan cannot read is one sentence naming the parameters that exist."""
    out, taken = [], {}
    for group, pattern, fan in searched:
        if fan not in initlib.FANS:
            raise choice(f"model.searched fan of {pattern!r}", fan, tuple(initlib.FANS))
        hits = [path for path in params if fnmatch.fnmatchcase(path, pattern)]
        if not hits:
            raise ConfigError(f"model.searched pattern {pattern!r} (group {group!r}) matches no parameter; "
                              f"the module has {_listing(params)}.")  # fmt: skip
        for path in hits:
            shape, dims = tuple(params[path].shape), {"heads_in": 3, "heads_out": 3, "embedding": 2}.get(fan)
            require(path not in taken, f"model.searched parameter {path!r} is matched by {taken.get(path)!r} "
                                       f"and {pattern!r}; give each parameter one pattern.")  # fmt: skip
            require(len(shape) >= 2 and dims in (None, len(shape)),
                    f"model.searched pattern {pattern!r} matches {path!r} of shape {shape}, which a {fan!r} "
                    f"layer's fans cannot be read from; match kernels, as in {_listing(params)}.")  # fmt: skip
            taken[path] = pattern
            out.append((group, path, fan))
    return out


def _listing(params: dict[str, nnx.Param], limit: int = 12) -> str:
    shown = [f"{path} {tuple(p.shape)}" for path, p in list(params.items())[:limit]]
    more = f" and {len(params) - limit} more" if len(params) > limit else ""
    return ", ".join(shown) + more


# --- the "module" family: the plan read from the config ------------------------------------
def factory(cfg) -> Callable[..., nnx.Module]:
    """The factory `model.module` names ("package.module:function"), imported."""
    target = cfg.module
    module_name, sep, attr = str(target).partition(":")
    require(bool(sep and module_name and attr),
            f"model.module must name a factory as 'package.module:function'; got {target!r}.")  # fmt: skip
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except Exception as err:  # the user's code: whatever its import raises, say where
        raise ConfigError(f"model.module {target!r} cannot be loaded: {err.__class__.__name__}: {err}.") from None
    require(callable(found), f"model.module {target!r} is not callable.")
    return found


def plan(cfg) -> Plan:
    """The `module` family's plan, all of it from the config."""
    return Plan(factory(cfg), dict(cfg.kwargs), tuple(tuple(entry) for entry in cfg.searched))


def validate(cfg) -> None:
    """The factory loads, builds with its kwargs, takes inputs of `model.input_shape`, and every
    searched pattern matches; checked once per distinct setting."""
    require(
        bool(cfg.input_shape) and all(isinstance(d, int) and d > 0 for d in cfg.input_shape),
        f"model.input_shape must be one example's shape, positive integers; got {cfg.input_shape!r}.",
    )
    require(
        bool(cfg.searched) and all(len(entry) == 3 for entry in cfg.searched),
        "model.searched must list (group, pattern, fan) entries, as (('hidden', 'layers/*/kernel', 'dense'),);"
        f" got {cfg.searched!r}.",
    )
    _check(json.dumps([cfg.module, cfg.kwargs.to_dict(), cfg.searched, cfg.input_shape], sort_keys=True, default=str))


@functools.lru_cache(maxsize=64)
def _check(key: str) -> None:
    module, kwargs, searched, input_shape = json.loads(key)
    cfg = ml_collections.ConfigDict({"module": module, "kwargs": kwargs, "searched": searched})
    p = plan(cfg)
    try:
        net = nnx.eval_shape(lambda: p.factory(rngs=nnx.Rngs(0), **p.kwargs))
    except Exception as err:
        raise ConfigError(
            f"model.module {module!r} fails with model.kwargs {kwargs}: {err.__class__.__name__}: {err}."
        ) from None
    assignments(p.searched, parameters(net))
    try:
        graph, state = nnx.split(net)
        jax.eval_shape(lambda s, x: nnx.merge(graph, s)(x), state, jax.ShapeDtypeStruct((2, *input_shape), "float32"))
    except Exception as err:
        raise ConfigError(
            f"model.module {module!r} fails on inputs of model.input_shape {tuple(input_shape)}: "
            f"{err.__class__.__name__}: {err}."
        ) from None


def flops(build: Callable, cfg, example_shape) -> float:
    """One example's forward FLOPs, as XLA's cost analysis counts them."""
    graph, state = nnx.split(nnx.eval_shape(lambda: build(cfg, 1.0, rngs=nnx.Rngs(0))))
    lowered = jax.jit(lambda s, x: nnx.merge(graph, s)(x)[0]).lower(
        state, jax.ShapeDtypeStruct((1, *example_shape), "float32")
    )
    cost = lowered.cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost).get("flops", 0.0))


def hidden_fan_in(plan_of: Callable, cfg) -> int:
    """fan_in of the first searched parameter (what a fixed variance is compared against)."""
    p = plan_of(cfg)
    params = parameters(nnx.eval_shape(lambda: p.factory(rngs=nnx.Rngs(0), **p.kwargs)))
    _, path, fan = assignments(p.searched, params)[0]
    return initlib.FANS[fan](params[path].shape)[0]


def searched_kernels(plan_of: Callable, cfg) -> dict[str, str]:
    """The searched parameters' layer kinds (init.FANS) by their paths in the built model ("net/layers/0/kernel")."""
    p = plan_of(cfg)
    params = parameters(nnx.eval_shape(lambda: p.factory(rngs=nnx.Rngs(0), **p.kwargs)))
    return {f"net/{path}": fan for _, path, fan in assignments(p.searched, params)}


def _cannot_resize(cfg, depth: int, width: int) -> None:
    raise ConfigError(f"model {cfg.name!r} has no depth and width to set here; set them in its model.kwargs.")


def fields(plan_of: Callable, **overrides) -> dict:
    """The `models.Family` fields of a family whose modules a plan builds (a factory and its searched
    patterns); `overrides` set the rest (defaults, validate, describe, ...)."""
    build = functools.partial(Adapted, plan_of)
    groups = lambda cfg: tuple(dict.fromkeys(g for g, _, _ in plan_of(cfg).searched))  # noqa: E731
    return {
        "module": build, "plan": plan_of, "groups": groups,
        "hidden_fan_in": functools.partial(hidden_fan_in, plan_of), "flops": functools.partial(flops, build),
        "input_shape": lambda cfg, length: tuple(cfg.input_shape), "describe": lambda cfg: str(cfg.module),
        "resize": _cannot_resize, "width_field": "", "layers": "", "asrun": None, **overrides,
    }  # fmt: skip


def defaults() -> dict:
    """The `module` family's own config fields."""
    return {"module": "", "kwargs": ml_collections.ConfigDict(), "searched": (), "input_shape": ()}
