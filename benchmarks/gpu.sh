#!/usr/bin/env bash
# The same harness on a lent accelerator, with larger populations. Run from the repo root
# on a machine where `pip install -e . "jax[cuda12]"` has been done.
set -euo pipefail
python benchmarks/bench.py --populations 64 256 1024 --tutorial-trials 4 --out "${OUT:-runs/bench-gpu}"
