"""Shared pytest fixtures: sample data and a running agnes-server.

Puts ``test/`` on ``sys.path`` so tests can ``import agnes_testkit``. The
server binary is ``$AGNES_SERVER_BIN`` or ``target/debug/agnes-server``
(``cargo build -p agnes-server``).
"""

import shutil
import sys
from pathlib import Path

import pytest

TEST_DIR = Path(__file__).resolve().parents[1]
if str(TEST_DIR) not in sys.path:
    sys.path.insert(0, str(TEST_DIR))

from agnes_testkit import LocalServer, make_sample  # noqa: E402


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory) -> Path:
    """The sample data, made once per session; tests get copies."""
    return make_sample(tmp_path_factory.mktemp("sample") / "data")


@pytest.fixture
def sample_dir(sample_template, tmp_path) -> Path:
    """A private copy of the sample data folder that a test may change."""
    return Path(shutil.copytree(sample_template, tmp_path / "data"))


@pytest.fixture
def server(sample_dir):
    """agnes-server over ``sample_dir`` on a free loopback port."""
    with LocalServer(sample_dir) as running:
        yield running


# -- `da`, the command line (test_da.py) ------------------------------------

REPO = TEST_DIR.parent
DA_BIN = REPO / "target" / "debug" / "da"
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
DUCKDB_CLI = REPO / "configure" / "venv" / "bin" / "duckdb"


@pytest.fixture
def da_env(tmp_path) -> dict:
    """A clean environment for running ``da``: no agnes or da variables from
    the caller, a private HOME (no ~/.duckdbrc, no installed extension) and
    config dir, the debug extension and the duckdb CLI 1.5.6."""
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGNES_", "DA_")) and k != "HOME"
    }
    home = tmp_path / "home"
    home.mkdir()
    env.update(
        HOME=str(home),
        AGNES_CONFIG_DIR=str(tmp_path / "config"),
        AGNES_EXTENSION=str(EXTENSION),
        AGNES_DUCKDB=str(DUCKDB_CLI),
    )
    return env
