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
