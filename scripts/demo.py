#!/usr/bin/env python3
"""`make demo`: the main job end to end, on a local server with sample data.

1. makes sample tables with DuckDB and serves them with `agnes-server`;
2. in the `duckdb` CLI, on the workspace's `analytics.duckdb`, loads agnes and
   runs `agnes_manifest()` and `agnes_sync()`;
3. opens the database again and queries the synced views, which persisted.

Usage: demo.py DUCKDB_CLI EXTENSION [WORKDIR]
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))

from agnes_testkit.sample import DEMO_TOKEN, make_sample  # noqa: E402
from agnes_testkit.server import LocalServer  # noqa: E402


def duckdb(cli: str, db: Path, sql: str, env: dict) -> None:
    print(f"\n$ duckdb {db.name} -c \"{' '.join(sql.split())}\"", flush=True)
    subprocess.run([cli, "-unsigned", str(db), "-c", sql], env=env, check=True)


def main() -> int:
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    cli, extension = sys.argv[1], Path(sys.argv[2]).resolve()
    work = Path(sys.argv[3] if len(sys.argv) > 3 else REPO / "build" / "demo").resolve()
    shutil.rmtree(work, ignore_errors=True)
    workspace = work / "workspace"
    db = workspace / "user" / "duckdb" / "analytics.duckdb"
    db.parent.mkdir(parents=True)
    make_sample(work / "server-data")

    with LocalServer(work / "server-data") as server:
        print(f"Agnes server with sample data at {server.url}")
        env = dict(
            os.environ,
            AGNES_SERVER=server.url,
            AGNES_TOKEN=DEMO_TOKEN,
            AGNES_LOCAL_DIR=str(workspace),
            AGNES_CONFIG_DIR=str(work / "config"),
        )
        load = f"LOAD '{extension}';"
        duckdb(cli, db, load + " SELECT table_id, query_mode, rows, status FROM agnes_manifest();", env)
        duckdb(cli, db, load + " SELECT kind, table_id, action, rows, view_name, error FROM agnes_sync();", env)
        # A new process, no agnes loaded: the views are in the database file.
        duckdb(
            cli,
            db,
            "SELECT status, count(*) AS orders, sum(amount) AS amount FROM orders GROUP BY status ORDER BY orders DESC;",
            env,
        )
        duckdb(cli, db, load + " SELECT action, count(*) AS tables FROM agnes_sync() WHERE kind = 'table' GROUP BY action;", env)
    rules = sorted(p.name for p in (workspace / ".claude" / "rules").glob("km_*.md"))
    print(f"\nCorporate memory written to {workspace / '.claude' / 'rules'}: {', '.join(rules)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
