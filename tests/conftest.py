"""Shared test settings: float32 JAX on the CPU, a clean cache dir per session."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
