"""The names the command line offers as choices, in a module that imports nothing heavy, so
`research --help` and `--version` answer without loading JAX. The registries they name
(init.py, models.py, experiment.py) import these tuples; a test keeps the model names in step."""

PROFILES = ("quick", "paper")
FAN_MODES = ("fan_in", "fan_out", "fan_avg", "fixed")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform", "orthogonal", "identity")
MODELS = ("mlp", "cnn", "rnn")
CONFIG_CHANGES = ("stop", "new")  # search.on_config_change: when a study's config changed
