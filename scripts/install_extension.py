#!/usr/bin/env python3
"""Install the extension into each DuckDB host's extension directory, so that
`LOAD agnes;` works by name there (`make install`).

Each host is a Python interpreter with the `duckdb` package or a `duckdb`
CLI; each installs into its own version's folder
(`~/.duckdb/extensions/<version>/<platform>/`) through DuckDB's own
`FORCE INSTALL '<path>'`, then proves it with `LOAD agnes`.

Usage: install_extension.py EXTENSION HOST [HOST ...]
"""

import subprocess
import sys
from pathlib import Path

PYTHON_HOST = """
import sys, duckdb
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute("FORCE INSTALL '" + sys.argv[1].replace("'", "''") + "'")
con.execute("LOAD agnes")
print(*con.execute("SELECT extension_version, duckdb_version FROM agnes_version()").fetchone())
"""


def install(extension: Path, host: str) -> str:
    quoted = str(extension).replace("'", "''")
    if Path(host).name.startswith("python"):
        cmd = [host, "-c", PYTHON_HOST, str(extension)]
    else:
        sql = f"FORCE INSTALL '{quoted}'; LOAD agnes; SELECT extension_version, duckdb_version FROM agnes_version();"
        cmd = [host, "-unsigned", "-noheader", "-list", "-separator", " ", "-c", sql]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"install_extension: {host} failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    extension = Path(sys.argv[1]).resolve()
    for host in sys.argv[2:]:
        print(f"installed agnes {install(extension, host)} for {host}")


if __name__ == "__main__":
    main()
