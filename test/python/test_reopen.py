"""After LOAD agnes, closing a database and opening the same file again in the
same process must work: agnes's own connection must not pin the database.
(Without the watchdog in src/host.rs, DuckDB's instance cache waits forever.)"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
OLD_PYTHON = REPO / "configure" / "venv-1.5.6" / "bin" / "python"

SCRIPT = """
import sys, duckdb
path, ext = sys.argv[1], sys.argv[2]
for round in range(3):
    con = duckdb.connect(path, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{ext}'")
    con.execute("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS x")
    assert con.execute("SELECT extension_version FROM agnes_version()").fetchone()[0]
    con.close()
print("reopened", round + 1)
"""


@pytest.mark.parametrize("python", [sys.executable, str(OLD_PYTHON)], ids=["duckdb-2.0.0", "duckdb-1.5.6"])
def test_close_then_reopen_same_file(tmp_path, python):
    result = subprocess.run(
        [python, "-c", SCRIPT, str(tmp_path / "db.duckdb"), str(EXTENSION)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reopened 3"
