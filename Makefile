# The front door. Every target bootstraps its own virtual environment from nothing.
# jax >= 0.11 needs Python >= 3.12: take 3.12, then 3.13, where found (with venv and ensurepip,
# which Debian and Ubuntu ship apart as python3.X-venv).

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3.13 \
	$$HOME/.pyenv/versions/3.13*/bin/python3.13 python3; do \
	$$p -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 \
	&& { command -v $$p || echo $$p; } && break; done)
PYTEST_ARGS ?=
# Optional extras for the environment: cuda12 (NVIDIA GPUs), slurm (submitit), analysis (jupyter,
# nbconvert, pandas for the notebooks); e.g. make venv EXTRAS=cuda12,analysis
EXTRAS ?=
comma := ,

.PHONY: venv venv-test test test-fast test-reliability lint clean bench sweep suite results dashboard report

# What running needs (no test tools), at the versions in constraints.txt.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "No Python >= 3.12 with venv and ensurepip found; install one (Debian/Ubuntu:" \
		"apt install python3.12-venv) or pass PYTHON=/path/to/python3.12"; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.$(if $(EXTRAS),[$(EXTRAS)])'
	@rm -f $(VENV)/.installed-test
	@touch $@

# The test tools on top (make test and friends).
venv-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e '.[test$(if $(EXTRAS),$(comma)$(EXTRAS))]'
	@touch $@

# The whole suite, slow and service tests included (what CI runs).
test: venv-test
	$(PY) -m pytest $(PYTEST_ARGS)

# The quick inner loop: every test not marked slow or needing a service.
test-fast: venv-test
	$(PY) -m pytest -m "not slow and not service" $(PYTEST_ARGS)

# Load, faults and bad input alone (part of `make test` too).
test-reliability: venv-test
	$(PY) -m pytest -m reliability -s $(PYTEST_ARGS)

lint: venv-test
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache

# Engine vs tutorial loop vs matmul ceiling, a worker vs the engine, diverged members' cost, the
# largest population's memory, time to a verdict: one run (writes runs/bench/bench.{json,md}).
bench: venv
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# The main job: the default suite on embedded defaults (journal file under runs/, MNIST-1D
# generated offline). Override: make sweep EXPERIMENT=experiments/x.py WORKERS=2 TRIALS=12
# PROFILE=paper; another storage comes from the environment: export RESEARCH_STORAGE=postgresql://...
EXPERIMENT ?= experiments/he_relu_mlp.py experiments/xavier_tanh_mlp.py
PROFILE ?= quick
WORKERS ?= 1
TRIALS ?=
# A storage URL may hold a password: on make's command line it would show in `ps` for the whole run.
ifneq ($(origin STORAGE),undefined)
$(error STORAGE= on make's command line would show its password to every user of this machine; export RESEARCH_STORAGE=... instead)
endif
sweep: venv
	$(PY) -m research sweep $(foreach e,$(EXPERIMENT),--config $(e)) --profile $(PROFILE) --workers $(WORKERS) \
		$(if $(TRIALS),--trials $(TRIALS))

# Every experiment of the quick profile (72 min on 2 cores from a clean clone, 2026-11-30, before the ridge design added about 9), then the report; `make results`
# turns its report into docs/results.md with the command, date and commit.
SUITE ?= experiments/he_relu_mlp.py experiments/xavier_tanh_mlp.py experiments/xavier_compromise.py \
	experiments/he_vs_xavier_30_layers.py experiments/sigmoid_standard_vs_normalised.py \
	experiments/lsuv_trained.py experiments/cnn_fan_2d.py \
	$(foreach d,2 5 10 20 30,experiments/fixed_variance_depth.py:depth=$(d)) \
	$(foreach d,5 10 20 40 80,experiments/trainability_depth.py:depth=$(d)) \
	$(foreach o,sgd momentum adam,experiments/optimizers.py:optimizer=$(o)) \
	$(foreach c,normal orthogonal identity,experiments/rnn_recurrent_init.py:distribution=$(c)) \
	experiments/rnn_recurrent_init.py:cell=lstm,distribution=orthogonal \
	$(foreach a,leaky_relu:0.2 elu selu gelu silu sigmoid softplus,experiments/zoo.py:activation=$(a)) \
	$(foreach n,none layer,$(foreach d,4 8 16,experiments/residual_depth.py:depth=$(d),norm=$(n))) \
	$(foreach d,2 8,experiments/transformer_deepnet.py:depth=$(d))
suite: venv
	$(PY) -m research sweep $(foreach e,$(SUITE),--config '$(e)') --profile $(PROFILE) --workers $(WORKERS)

# docs/results.md and its figures from the studies in runs/ (after `make suite`): the tables the
# README cites, headed by the date and the commit that wrote them. Built from `make report`'s
# folder, whose cache (runs/report/.cache) redoes only the studies that changed.
results: report
	rm -rf docs/results/figures && mkdir -p docs/results/figures
	grep -o 'figures/[^)]*[.]png' runs/report/report.md | sort -u | sed 's#^#runs/report/#' | xargs -r cp -t docs/results/figures/
	cp runs/report/report.json docs/results/
	{ echo "Generated by \`make suite\` and then \`make results\` (figures: PNG only; runs/report has PDF and SVG)."; \
	  echo; sed 's#(figures/#(results/figures/#g' runs/report/report.md; } > docs/results.md

# optuna-dashboard for the sweep's storage on http://127.0.0.1:$(PORT)/dashboard
PORT ?= 8080
dashboard: venv
	$(PY) -m research dashboard --port $(PORT)

# Tables (runs/report/report.{md,tex,json}) and figures for every study in the storage.
report: venv
	$(PY) -m research report
