"""Shared test settings: float32 JAX on the CPU, a clean cache dir per session."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """One prepared TFDS data directory for the whole session."""
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="session")
def mnist1d(data_root):
    """MNIST-1D (default size), flat view, on the device."""
    from research import data

    cfg = data.default_config("mnist1d")
    cfg.data_dir = str(data_root)
    return data.load(cfg)


@pytest.fixture
def postgres():
    """The test PostgreSQL URL, emptied of studies."""
    import optuna

    from research import storage
    from research.errors import ConfigError
    from tests.helpers import POSTGRES, service_absent

    try:
        backend = storage.open_storage(POSTGRES)
    except ConfigError as err:
        service_absent(f"PostgreSQL ({err})")
    for name in optuna.get_all_study_names(storage=backend):
        optuna.delete_study(study_name=name, storage=backend)
    return POSTGRES
