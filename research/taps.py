"""The outputs of chosen submodules of any Flax NNX module, read and perturbed without its author's help.

A probe needs each searched layer's output (the pre-activation), and the gradient with respect to
it: a zero tap added to the output gives that gradient. NNX's own `Module.perturb` must be written
into the module by its author, and `nnx.capture(method_outputs=...)` records outputs but adds
nothing, so this one small wrapper patches the `__call__` of the chosen modules' classes for the
duration of one call (as `nnx.capture` itself does), acting on the chosen instances only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence

import jax
from flax import nnx


@contextlib.contextmanager
def tapped(chosen: Sequence[nnx.Module], taps: Sequence[jax.Array] | None = None) -> Iterator[list[jax.Array]]:
    """Within the block, the outputs of the `chosen` modules' calls are appended, in call order, to
    the list it yields; the i-th call's output gets `taps[i]` added first (None: nothing added)."""
    ids, outputs = {id(m) for m in chosen}, []
    owners = {next(c for c in type(m).__mro__ if "__call__" in c.__dict__) for m in chosen}
    originals = {cls: cls.__dict__["__call__"] for cls in owners}  # where each class's __call__ is defined

    def wrap(call):
        @functools.wraps(call)
        def wrapper(self, *args, **kwargs):
            out = call(self, *args, **kwargs)
            if id(self) in ids:
                if taps is not None:
                    out = out + taps[len(outputs)]
                outputs.append(out)
            return out

        return wrapper

    for cls, call in originals.items():
        cls.__call__ = wrap(call)
    try:
        yield outputs
    finally:
        for cls, call in originals.items():
            cls.__call__ = call
