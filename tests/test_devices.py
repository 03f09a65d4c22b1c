"""Process-wide device setup: one CPU device per core unless XLA_FLAGS say otherwise."""

import os
import subprocess
import sys

import pytest

from research import devices


@pytest.mark.parametrize(("xla_flags", "expected"), [("", devices.cpu_cores()), ("3", 3)])
def test_use_cpu_cores_gives_one_device_per_core_unless_xla_flags_say(xla_flags, expected):
    flags = f"--xla_force_host_platform_device_count={xla_flags}" if xla_flags else ""
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    script = "from research import devices; devices.use_cpu_cores(); import jax; print(jax.device_count())"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) == expected
