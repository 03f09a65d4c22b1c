"""Process-wide device setup, done once before JAX starts: CPU devices per core, compile cache.

Kept apart from the trainer because it changes global JAX state; the CLI and the benchmark
call it at their entry points, library code never does.
"""

from __future__ import annotations

import os

import jax


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
