"""The names the command line offers as choices, in a module that imports nothing heavy, so
`research --help` and `--version` answer without loading JAX. The registries they name
(init.py, experiment.py) import these tuples; model families and activations are open registries
(a package may add one), so the command line checks those names where they are registered."""

PROFILES = ("quick", "paper")
FAN_MODES = ("fan_in", "fan_out", "fan_avg", "fixed")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform", "orthogonal", "identity")
CONFIG_CHANGES = ("stop", "new")  # search.on_config_change: when a study's config changed
