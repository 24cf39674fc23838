"""Issue 24 against the real upstream servers: a workspace the old client
filled is adopted by agnes, not downloaded again.

1. The old Python `da sync` (venv-d0b) against 0.29 on 127.0.0.1:18000, as
   admin, into a fresh workspace; then a view of the user's under a table's
   name; then agnes's `da sync`.
2. Upstream's `agnes pull` (venv-head) against 0.84 on 127.0.0.1:18100, as
   analyst, the same way.

Each must: download nothing that the old client left with the manifest's
MD5 (its files keep their inode and bytes; their rows say `unchanged`), adopt
the old client's views over them (agnes's mark `agnes: ...`, no "left as is"),
and leave the user's view exactly as it was. One notice says what was adopted.

Run after `make debug` (`make test-realpeer` does):
    configure/venv/bin/python test/realpeer/adopt.py [--realpeer DIR]
        [--da target/debug/da] [--extension build/debug/agnes.duckdb_extension]
        [--duckdb configure/venv/bin/duckdb]
--realpeer defaults to $REALPEER, then ~/realpeer (shared/realpeer/RECIPE.md).
The servers are only read, never started or changed; workspaces go to
$REALPEER/ws/i24-rp-*.
Exit status 0 when every check holds; each failed check is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DA = REPO / "target" / "debug" / "da"
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
DUCKDB = REPO / "configure" / "venv" / "bin" / "duckdb"  # the CLI 1.5.6

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(cmd, env=None, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    return done


def up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def query(db: Path, sql: str) -> list:
    done = run([str(DUCKDB), "-readonly", "-json", str(db), "-c", sql])
    if done.returncode != 0:
        raise RuntimeError(f"{db}: {done.stderr}")
    return json.loads(done.stdout or "[]")


def views(db: Path) -> dict:
    """name -> (sql, agnes's mark): the alias in the definition (`AS "agnes: <path>"`), else the comment."""
    rows = query(db, "SELECT view_name, sql, comment FROM duckdb_views() WHERE NOT internal")
    return {r["view_name"]: (r["sql"], mark(r["sql"], r["comment"])) for r in rows}


def mark(sql: str, comment):
    at = sql.rfind(' AS "agnes: ')
    if at < 0:
        return comment
    return sql[at + len(' AS "'):].rstrip(";").rstrip('"').replace('""', '"')


def files(ws: Path) -> dict:
    """Every parquet under server/parquet: relative path -> (inode, size, mtime)."""
    root = ws / "server" / "parquet"
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*.parquet"))}


def agnes_sync(ws: Path, cfg: Path, token: str, port: int, *extra, failing=()) -> dict:
    """agnes's `da sync --json`; `failing` are tables the server refuses
    whatever the client (CONTRACT.md §7.2: Orders2 to an analyst)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "DA_"))}
    env.update(AGNES_CONFIG_DIR=str(cfg), AGNES_DUCKDB=str(DUCKDB), AGNES_EXTENSION=str(EXTENSION),
               AGNES_TOKEN=token, AGNES_SERVER=f"http://127.0.0.1:{port}", AGNES_LOCAL_DIR=str(ws))
    done = run([str(DA), "sync", "--json", *extra], env=env, cwd=ws)
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    failed = sorted(e["table"] for e in report.get("errors", []))
    check(failed == sorted(failing) and (done.returncode == 0) == (not failing),
          f"agnes da sync: failed {failed}, exit {done.returncode} ({done.stderr.strip()[:200]})")
    return report


def verify(name: str, ws: Path, before_files: dict, user_view: str, report: dict, tables: list) -> None:
    """The checks both cases share; `tables` are those the old client left."""
    rows = {t["table"]: t for t in report.get("tables", [])}
    after = files(ws)
    for table in tables:
        row = rows.get(table, {})
        check(row.get("action") == "unchanged" and row.get("view") == table,
              f"{name}: {table} is unchanged with its view, not downloaded ({row.get('action')}, {row.get('note')})")
        kept = {k: v for k, v in before_files.items() if k == f"{table}.parquet" or k.startswith(f"{table}/")}
        check(kept and all(after.get(k) == v for k, v in kept.items()),
              f"{name}: {table}'s files are the old client's, untouched (inode, size, mtime)")
        check("left as is" not in (row.get("note") or ""), f"{name}: no 'left as is' note for {table}")
    adopted = [n for n in report.get("notices", []) if n.startswith("adopted")]
    check(len(adopted) == 1, f"{name}: one notice says what was adopted: {adopted}")
    now = views(ws / "user" / "duckdb" / "analytics.duckdb")
    for table in tables:
        comment = (now.get(table) or ("", None))[1] or ""
        check(comment.startswith("agnes: "), f"{name}: the old client's view {table} is agnes's now")
    check(now.get(user_view[0]) == user_view[1], f"{name}: the user's view {user_view[0]} is as it was")


def old_da_on_029(realpeer: Path) -> None:
    if not up(18000):
        check(False, "0.29 server up on 127.0.0.1:18000")
        return
    ws, cfg = realpeer / "ws" / "i24-rp-d0b", realpeer / "ws" / "i24-rp-d0b-cfg"
    agnes_cfg = realpeer / "ws" / "i24-rp-d0b-agnes-cfg"
    for d in (ws, cfg, agnes_cfg):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    token = (realpeer / "d0b-admin-pat.txt").read_text().strip()
    env = dict(os.environ, DA_CONFIG_DIR=str(cfg), DA_TOKEN=token, DA_SERVER="http://127.0.0.1:18000",
               DA_LOCAL_DIR=str(ws), COLUMNS="120")
    old = run([str(realpeer / "venv-d0b" / "bin" / "da"), "sync"], env=env, cwd=ws)
    print(old.stdout.strip())
    state = json.loads((cfg / "sync_state.json").read_text())
    left = sorted(state["tables"])
    check(left == ["in.c-crm.people", "products"], f"0.29: the old da left {left}")
    db = ws / "user" / "duckdb" / "analytics.duckdb"
    # The user's own view under a table's name (customers: the old da failed it).
    sql = "CREATE VIEW customers AS SELECT 'mine' AS whose"
    made = run([str(DUCKDB), str(db), "-c", sql])
    check(made.returncode == 0, f"0.29: user view made ({made.stderr.strip()})")
    user = ("customers", views(db)["customers"])
    before = files(ws)
    report = agnes_sync(ws, agnes_cfg, token, 18000)
    # products carries its content MD5: adopted. in.c-crm.people has hash ""
    # on this server, so nothing can vouch for the copy: it is downloaded.
    verify("0.29", ws, before, user, report, ["products"])
    people = {t["table"]: t for t in report.get("tables", [])}.get("in.c-crm.people", {})
    check(people.get("view") == "in.c-crm.people" and "left as is" not in (people.get("note") or ""),
          "0.29: in.c-crm.people (no hash: downloaded) has agnes's view, the old one adopted")
    second = agnes_sync(ws, agnes_cfg, token, 18000)
    check("products" not in second.get("downloaded", ["products"]), "0.29: the second sync downloads no products")


def agnes_pull_on_084(realpeer: Path) -> None:
    if not up(18100):
        check(False, "0.84 server up on 127.0.0.1:18100")
        return
    ws = realpeer / "ws" / "i24-rp-head"
    cfg = realpeer / "ws" / "i24-rp-head-cfg"
    home = realpeer / "ws" / "i24-rp-head-home"
    agnes_cfg = realpeer / "ws" / "i24-rp-head-agnes-cfg"
    for d in (ws, cfg, home, agnes_cfg):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(realpeer / "cfg-agnes-head-analyst", cfg)
    for d in (ws, home, agnes_cfg):
        d.mkdir(parents=True)
    env = dict(os.environ, AGNES_CONFIG_DIR=str(cfg), HOME=str(home), AGNES_LOCAL_DIR=str(ws))
    env.pop("AGNES_SERVER", None)
    env.pop("AGNES_TOKEN", None)
    pulled = run([str(realpeer / "venv-head" / "bin" / "agnes"), "pull"], env=env, cwd=ws)
    print(pulled.stdout.strip()[-400:])
    record = json.loads((ws / ".claude" / "agnes" / "sync_state.json").read_text())
    left = sorted(record["tables"])
    check(left == ["events", "orders"], f"0.84: agnes pull left {left}")
    db = ws / "user" / "duckdb" / "analytics.duckdb"
    # live_orders is remote: agnes would make a view over agnes_scan(); the
    # user's view of that name, over a file agnes holds, is never adopted.
    sql = (f"CREATE VIEW live_orders AS SELECT * FROM read_parquet("
           f"'{(ws / 'server' / 'parquet' / 'orders.parquet').resolve()}')")
    made = run([str(DUCKDB), str(db), "-c", sql])
    check(made.returncode == 0, f"0.84: user view made ({made.stderr.strip()})")
    user = ("live_orders", views(db)["live_orders"])
    before = files(ws)
    token = (realpeer / "head-analyst-pat.txt").read_text().strip()
    report = agnes_sync(ws, agnes_cfg, token, 18100, failing=["Orders2"])
    verify("0.84", ws, before, user, report, ["orders", "events"])
    second = agnes_sync(ws, agnes_cfg, token, 18100, failing=["Orders2"])
    check(not {"orders", "events"} & set(second.get("downloaded", ["orders"])),
          "0.84: the second sync downloads neither orders nor events")


def main() -> int:
    global DA, EXTENSION, DUCKDB
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realpeer", type=Path,
                        default=Path(os.environ.get("REALPEER", Path.home() / "realpeer")))
    parser.add_argument("--da", type=Path, default=DA)
    parser.add_argument("--extension", type=Path, default=EXTENSION)
    parser.add_argument("--duckdb", type=Path, default=DUCKDB, help="the duckdb CLI (1.5.x)")
    args = parser.parse_args()
    realpeer = args.realpeer
    DA, EXTENSION, DUCKDB = args.da.resolve(), args.extension.resolve(), args.duckdb.resolve()
    for need in (DA, EXTENSION, DUCKDB):
        if not need.exists():
            print(f"missing {need}: run `make debug` (and `make configure`) first")
            return 2
    old_da_on_029(realpeer)
    agnes_pull_on_084(realpeer)
    print(f"{len(failures)} check(s) failed" if failures else "all checks hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
