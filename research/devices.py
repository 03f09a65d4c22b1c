"""What this process runs on: CPU devices per core and the compile cache (set once, before JAX
starts, by the CLI and the benchmark), and how much memory a device holds, so a population
that cannot fit stops before compiling instead of hanging.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax

from research.errors import ConfigError


def use_cpu_cores() -> None:
    """Expose one CPU device per core, so a Trainer shards its population over the cores and each
    core trains its own members: about 1.25x the throughput of one device whose every small matmul
    is split across all cores (`make bench`). Call before JAX starts; a device count already set in
    XLA_FLAGS wins, and once JAX has started the call changes nothing."""
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        try:
            jax.config.update("jax_num_cpu_devices", cpu_cores())
        except RuntimeError:  # JAX already started: its devices stay as they are
            pass


def host_only() -> None:
    """Run this process's own JAX work on the CPU: a sweep analyses and draws each finished study
    while the next one's workers train, and touching the accelerator would preallocate most of its
    memory under them. Call before JAX starts (its workers' environment is left as it is)."""
    jax.config.update("jax_platforms", "cpu")


def cpu_cores() -> int:
    """Cores this process may run on (its affinity where the OS tells it, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def enable_compilation_cache(path: str) -> None:
    """Persist compiled programs under `path`, so workers on a cluster reuse them."""
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def memory_limit(device) -> int:
    """Bytes `device` can hold: the accelerator's own limit, or the host's physical memory on CPU."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(need: int, what: str, device) -> None:
    """Stop in seconds, before compiling, when `what` needs more than `device` holds."""
    limit = memory_limit(device)
    if need > limit:
        raise ConfigError(
            f"{what} needs at least {need / 2**30:.1f} GiB but the {device.platform} device holds"
            f" {limit / 2**30:.1f} GiB; lower search.trials_per_batch or search.seeds, or the model's size."
        )


def check_xla_flags(environ=os.environ) -> None:
    """Stop with one sentence when $XLA_FLAGS holds a flag XLA does not know: XLA itself aborts the
    process (a fatal log line, no cleanup) the moment its backend starts. Checked in a throwaway
    process, and only when the variable is set."""
    if not environ.get("XLA_FLAGS", "").strip():
        return
    probe = [sys.executable, "-c", "import jax; jax.devices('cpu')"]
    done = subprocess.run(probe, env={**environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True)
    if done.returncode != 0:
        unknown = re.search(r"Unknown flags? in XLA_FLAGS: (.*)", done.stderr)
        why = f"XLA does not know {unknown.group(1).strip()}" if unknown else "XLA cannot start with it"
        raise ConfigError(f"$XLA_FLAGS is not usable: {why}; fix or unset it.")


def member_bytes(params, tx: optax.GradientTransformation) -> int:
    """Bytes one member keeps at least: parameters (their shapes), their gradients and the
    optimiser state (float32; found by shape alone, so a huge model costs nothing to size)."""
    count = lambda tree: sum(leaf.size for leaf in jax.tree.leaves(tree))  # noqa: E731
    return 4 * (2 * count(params) + count(jax.eval_shape(tx.init, params)))


def activation_bytes(apply, params, example_shape: tuple[int, ...], batch: int) -> int:
    """Bytes of one member's activations for `batch` examples that a training step keeps for its
    backward pass: each layer's pre- and post-activations of `apply(params, x)` -> (logits,
    pre-activations) (float32; found by shape alone)."""
    x = jax.ShapeDtypeStruct((batch, *example_shape), jnp.float32)
    logits, preacts = jax.eval_shape(apply, params, x)
    return 4 * (2 * sum(h.size for h in preacts) + logits.size)
