"""The hook's no-op without DuckDB (issue 17): `da sync` proves from the
manifest and a stamp of the files that nothing is to be done, and then
starts no `duckdb` at all. These tests count the `duckdb` processes `da`
starts (a wrapper that logs each start, then runs the real CLI) and check
that the quick path is taken when nothing changed, and never when it must
not be: a dropped view, a replaced database file, a modified or truncated
parquet, a changed manifest, a different server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from agnes_testkit import LocalServer, make_sample
from conftest import DUCKDB_CLI
from test_da import NO_OP_SYNC, Da, da, workspace  # noqa: F401 (fixtures)

# The real binary behind pip's launcher: the wrapper runs it directly.
REAL_DUCKDB = next(DUCKDB_CLI.parent.parent.glob("lib/python*/site-packages/duckdb_cli/duckdb"))


@pytest.fixture
def counted(da, tmp_path) -> Da:
    """`da` whose `duckdb` logs each start to `tmp_path/starts`."""
    log = tmp_path / "starts"
    wrapper = tmp_path / "duckdb"
    wrapper.write_text(f'#!/bin/sh\necho start >> "{log}"\nexec "{REAL_DUCKDB}" "$@"\n')
    wrapper.chmod(0o755)
    counted = Da(dict(da.env, AGNES_DUCKDB=str(wrapper)), da.workspace)
    counted.starts = lambda: log.read_text().count("start") if log.exists() else 0
    return counted


def synced_twice(da) -> int:
    """A first (full) sync, then a no-op; returns the duckdb starts so far."""
    first = da("sync")
    assert first.returncode == 0, first.stderr
    second = da("sync")
    assert (second.returncode, second.stdout) == (0, NO_OP_SYNC), second.stderr
    return da.starts()


def test_a_no_op_starts_no_duckdb(counted):
    assert synced_twice(counted) == 1
    again = counted("sync", "--quiet")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert counted.starts() == 1
    # The rules are written by the quick path too.
    assert list((counted.workspace / ".claude" / "rules").glob("km_*.md"))


def test_a_dropped_view_takes_the_full_path(counted):
    starts = synced_twice(counted)
    subprocess.run([str(REAL_DUCKDB), str(counted.database), "-c", "DROP VIEW orders"], check=True)
    result = counted("sync")
    assert result.returncode == 0, result.stderr
    assert counted.starts() == starts + 1
    out = subprocess.run(
        [str(REAL_DUCKDB), str(counted.database), "-c", "SELECT count(*) FROM orders"],
        capture_output=True, text=True, check=True,
    )
    assert "5000" in out.stdout


def test_a_replaced_database_takes_the_full_path(counted, tmp_path):
    starts = synced_twice(counted)
    other = tmp_path / "other.duckdb"
    subprocess.run([str(REAL_DUCKDB), str(other), "-c", "CREATE TABLE t AS SELECT 1"], check=True)
    shutil.copy(other, counted.database)
    result = counted("sync")
    assert result.returncode == 0, result.stderr
    assert counted.starts() == starts + 1


@pytest.mark.parametrize("damage", ["touched", "truncated"])
def test_a_changed_parquet_takes_the_full_path(counted, damage):
    starts = synced_twice(counted)
    parquet = counted.workspace / "server" / "parquet" / "orders.parquet"
    if damage == "touched":
        os.utime(parquet, (1, 1))
    else:
        with open(parquet, "r+b") as f:
            f.truncate(100)
    result = counted("sync")
    assert counted.starts() == starts + 1, result.stdout
    # The full path saw what the quick one must not have hidden: the
    # truncated file is fetched again, the touched one is left as it is.
    assert result.returncode == 0, result.stderr


def test_a_changed_manifest_takes_the_full_path(counted, server):
    starts = synced_twice(counted)
    data = server.data_dir
    subprocess.run(
        [str(REAL_DUCKDB), "-c",
         f"COPY (SELECT 1 AS id) TO '{data / 'products.parquet'}' (FORMAT parquet)"],
        check=True,
    )
    result = counted("sync")
    assert result.returncode == 0, result.stderr
    assert "Downloaded: 1 tables" in result.stdout
    assert counted.starts() == starts + 1


def test_a_different_server_takes_the_full_path(counted, tmp_path):
    starts = synced_twice(counted)
    with LocalServer(make_sample(tmp_path / "other-data")) as other:
        result = counted("sync", env=other.env())
    # The full path ran, and said what it says of a second server in one
    # workspace (issue 13, case 5) instead of answering "nothing to do".
    assert counted.starts() == starts + 1
    assert result.returncode != 0 and "one workspace syncs from one server" in result.stderr, (
        result.stdout,
        result.stderr,
    )
