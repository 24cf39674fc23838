"""Adopting a workspace an older client filled (issue 24): the Python `da
sync` of 0.29 and upstream's `agnes pull` of 0.84, then agnes's `da sync`
against the local server.

The workspaces are laid out as those clients leave them: the server's own
parquet bytes under `server/parquet/`, their views in
`user/duckdb/analytics.duckdb` made by the duckdb CLI 1.5.6 with the SQL they
run (`CREATE VIEW "<name>" AS SELECT * FROM read_parquet('<resolved path>')`,
and upstream's `read_parquet('<dir>/**/*.parquet', union_by_name=true,
hive_partitioning=true)` for parts), and their state files in their formats
(the old da's global `<config dir>/sync_state.json`; upstream's
`.claude/agnes/sync_state.json`, `.claude/sync_state.json` and
`.claude/agnes-sessions-uploaded.txt`), as read off the real clients run
against the real servers (0.29 and 0.84.8).
"""

import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import DA_BIN, DUCKDB_CLI

from agnes_testkit import SAMPLE_CATALOG, LocalServer, write_catalog, write_partitioned

EVENTS = {
    "2026_01.parquet": "SELECT range AS id, 'jan' AS month FROM range(10)",
    "2026_02.parquet": "SELECT range + 10 AS id, 'feb' AS month FROM range(5)",
    "2026_03.parquet": "SELECT range + 15 AS id, 'mar' AS month FROM range(7)",
}


def da(env, ws, *args):
    return subprocess.run(
        [str(DA_BIN), *args], env=env, cwd=ws, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120,
    )


def database(ws: Path) -> Path:
    return ws / "user" / "duckdb" / "analytics.duckdb"


def mark(sql: str, comment):
    at = sql.rfind(' AS "agnes: ')
    if at < 0:
        return comment
    return sql[at + len(' AS "'):].rstrip(";").rstrip('"').replace('""', '"')


def old_views(ws: Path, statements: list) -> None:
    """Runs the older client's own statements in the workspace database, with
    the duckdb CLI 1.5.6 (a file Python's duckdb 2.0 wrote, 1.5 cannot open)."""
    database(ws).parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(DUCKDB_CLI), str(database(ws)), "-c", ";\n".join(statements)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def file_view(name: str, path: Path) -> str:
    """The view both older clients make over one file."""
    abs_path = str(path.resolve()).replace("'", "''")
    return f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet(\'{abs_path}\')'


def parts_view(name: str, folder: Path) -> str:
    """`agnes pull`'s view over a partitioned table's parts (cli/lib/pull.py)."""
    glob = str((folder / "**" / "*.parquet").resolve()).replace("'", "''")
    return (f'CREATE VIEW "{name}" AS SELECT * FROM '
            f"read_parquet('{glob}', union_by_name=true, hive_partitioning=true)")


def relations(ws: Path) -> dict:
    """Every view: name -> (sql, agnes's mark): the alias in its definition
    (`AS "agnes: <path>"`), else its comment."""
    con = duckdb.connect(str(database(ws)), read_only=True)
    try:
        rows = con.execute("SELECT view_name, sql, comment FROM duckdb_views() WHERE NOT internal").fetchall()
        return {name: (sql, mark(sql, comment)) for name, sql, comment in rows}
    finally:
        con.close()


def count(ws: Path, name: str) -> int:
    con = duckdb.connect(str(database(ws)), read_only=True)
    try:
        return con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    finally:
        con.close()


def downloaded_bytes(server) -> dict:
    """Bytes the server sent per download path."""
    out = {}
    for r in server.requests():
        if r["path"].startswith("/api/data/"):
            key = r["path"] + ("?" + r["query"] if r.get("query") else "")
            out[key] = out.get(key, 0) + r["bytes_sent"]
    return out


def md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def notes(stderr: str, start: str) -> list:
    return [line for line in stderr.splitlines() if line.startswith(start)]


@pytest.fixture
def ws(tmp_path) -> Path:
    ws = tmp_path / "ws"
    (ws / "server" / "parquet").mkdir(parents=True)
    return ws


def test_after_the_old_da_only_what_cannot_be_verified_is_downloaded(sample_dir, ws, da_env):
    """0.29 (may2026 mode): the old da left orders, customers and
    in.c-crm.people with their content MD5 and a view each; products' hash is
    a 12-hex version token, so the copy it left cannot be checked."""
    parquet = ws / "server" / "parquet"
    for table in ["orders", "customers", "in.c-crm.people", "products"]:
        shutil.copy2(sample_dir / f"{table}.parquet", parquet / f"{table}.parquet")
    # customers is the user's own view under the table's name: never adopted.
    user_sql = (f"CREATE VIEW customers AS SELECT * FROM read_parquet("
                f"'{(parquet / 'customers.parquet').resolve()}') WHERE customer_id <= 10")
    old_views(ws, [file_view("orders", parquet / "orders.parquet"),
                   file_view("in.c-crm.people", parquet / "in.c-crm.people.parquet"),
                   file_view("products", parquet / "products.parquet"),
                   user_sql])
    user_before = relations(ws)["customers"]
    # The old da's global record (in agnes's config folder): not needed, not trusted.
    config = Path(da_env["AGNES_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "sync_state.json").write_text(json.dumps({"tables": {
        "orders": {"hash": md5(parquet / "orders.parquet"), "rows": 5000,
                   "size_bytes": (parquet / "orders.parquet").stat().st_size},
    }, "last_sync": "2026-05-20T10:00:00+00:00"}, indent=2))

    with LocalServer(sample_dir, mode="may2026") as server:
        env = dict(da_env, **server.env())
        first = da(env, ws, "sync")
        assert first.returncode == 0, first.stderr
        sent = downloaded_bytes(server)
        # Only the table whose hash is a version token was downloaded.
        assert sent == {"/api/data/products/download": (sample_dir / "products.parquet").stat().st_size}, sent
        assert "Downloaded: 1 tables\nSkipped (unchanged): 3\n" in first.stdout, first.stdout
        adopted = notes(first.stderr, "Note: adopted")
        assert len(adopted) == 1, first.stderr
        size = sum((sample_dir / f"{t}.parquet").stat().st_size for t in ["orders", "customers", "in.c-crm.people"])
        assert adopted[0].startswith(f"Note: adopted 3 table(s), {size} bytes"), adopted
        assert "3 view(s)" in adopted[0], adopted
        # The old da's views are agnes's now; no "left as is" for them.
        assert notes(first.stderr, "Note: customers: no view") != []
        assert not [n for n in first.stderr.splitlines() if "left as is" in n and "customers" not in n], first.stderr

        views = relations(ws)
        for table in ["orders", "in.c-crm.people", "products"]:
            assert (views[table][1] or "").startswith("agnes: "), (table, views[table])
        assert views["customers"] == user_before
        assert count(ws, "customers") == 10
        assert count(ws, "orders") == 5000

        server.clear_requests()
        second = da(env, ws, "sync", "--json")
        assert second.returncode == 0, second.stderr
        report = json.loads(second.stdout)
        assert report["downloaded"] == [], report
        assert downloaded_bytes(server) == {}
        assert not any("adopted" in n for n in report.get("notices", [])), report
    assert relations(ws)["customers"] == user_before


def test_after_agnes_pull_nothing_is_downloaded_but_a_changed_part(sample_dir, ws, da_env):
    """0.84: `agnes pull` left every table, `events` in parts, with its
    records; one part on disk is older than the server's."""
    write_partitioned(sample_dir, "events", EVENTS)
    # Tables of the 0.84 pipeline carry their content MD5 (CONTRACT.md §7.1).
    catalog = json.loads(json.dumps(SAMPLE_CATALOG))
    catalog["tables"]["products"]["hash"] = "md5"
    write_catalog(sample_dir, catalog)
    parquet = ws / "server" / "parquet"
    for table in ["orders", "customers", "in.c-crm.people", "products"]:
        shutil.copy2(sample_dir / f"{table}.parquet", parquet / f"{table}.parquet")
    shutil.copytree(sample_dir / "events", parquet / "events")
    # The part the client has is an older version of 2026_03.
    stale = duckdb.connect()
    stale.execute(f"COPY (SELECT range + 15 AS id, 'old' AS month FROM range(3)) "
                  f"TO '{parquet / 'events' / '2026_03.parquet'}' (FORMAT parquet)")
    stale.close()
    user_sql = "CREATE VIEW \"in.c-crm.people\" AS SELECT 42 AS answer"
    old_views(ws, [file_view("orders", parquet / "orders.parquet"),
                   file_view("customers", parquet / "customers.parquet"),
                   file_view("products", parquet / "products.parquet"),
                   parts_view("events", parquet / "events"),
                   user_sql])
    user_before = relations(ws)["in.c-crm.people"]
    claude = ws / ".claude"
    (claude / "agnes").mkdir(parents=True)
    (claude / "rules").mkdir()
    (claude / "rules" / "km_sql-style.md").write_text("# SQL style (as agnes pull wrote it)\n")
    (claude / "rules" / "km_gone.md").write_text("# no longer mandatory\n")
    (claude / "rules" / "access_policies.md").write_text("# Access-Policied Tables\n")

    with LocalServer(sample_dir, mode="0.84") as server:
        manifest = json.loads(subprocess.run(
            ["curl", "-s", "-H", "Authorization: Bearer demo-token", server.url + "/api/sync/manifest"],
            capture_output=True, text=True, check=True).stdout)["tables"]
        record = {"snapshot_blocked": [], "knowledge_artifacts": {}, "knowledge_digests": {}, "tables": {
            name: {"hash": manifest[name]["hash"], "rows": manifest[name]["rows"],
                   "size_bytes": manifest[name]["size_bytes"]}
            for name in ["orders", "customers", "in.c-crm.people", "products"]
        }, "last_sync": "2026-12-03T09:34:50.135032+00:00"}
        record["tables"]["events"] = {
            "hash": manifest["events"]["hash"],
            # It recorded the old part's hash before the server rebuilt it.
            "parts": {p["path"]: p["hash"] if p["path"] != "2026_03.parquet" else md5(
                parquet / "events" / "2026_03.parquet") for p in manifest["events"]["parts"]},
            "rows": 22, "size_bytes": manifest["events"]["size_bytes"]}
        (claude / "agnes" / "sync_state.json").write_text(json.dumps(record, indent=2))
        (claude / "sync_state.json").write_text(json.dumps(
            {"data_packages": {}, "direct_tables": {}, "last_sync_unix": 1796290490, "memory_domains": {}}))

        env = dict(da_env, **server.env())
        first = da(env, ws, "sync", "--json")
        assert first.returncode == 0, first.stderr
        report = json.loads(first.stdout)
        assert report["downloaded"] == ["events"], report
        sent = downloaded_bytes(server)
        assert sent == {"/api/data/events/download?part=2026_03.parquet":
                        (sample_dir / "events" / "2026_03.parquet").stat().st_size}, sent
        adopted = [n for n in report["notices"] if n.startswith("adopted")]
        assert len(adopted) == 1 and adopted[0].startswith("adopted 4 table(s)"), report["notices"]
        assert "some parts of 1 more" in adopted[0] and "4 view(s)" in adopted[0], adopted
        # The changed part was swapped in: the server's bytes, read by agnes's view.
        assert md5(parquet / "events" / "2026_03.parquet") == md5(sample_dir / "events" / "2026_03.parquet")
        views = relations(ws)
        for table in ["orders", "customers", "products", "events"]:
            assert (views[table][1] or "").startswith("agnes: "), (table, views[table])
        assert count(ws, "events") == 22
        # The user's view of a table's name is left, and said so.
        assert views["in.c-crm.people"] == user_before
        # km_*.md are sync's: rewritten in agnes's form, the stale one gone;
        # upstream's other rules are left.
        rules = sorted(p.name for p in (claude / "rules").iterdir())
        assert rules == ["access_policies.md", "km_approved.md", "km_pii-handling.md", "km_sql-style.md"]

        server.clear_requests()
        second = da(env, ws, "sync", "--json")
        assert json.loads(second.stdout)["downloaded"] == [] and downloaded_bytes(server) == {}


def test_a_file_that_fails_to_download_leaves_the_old_clients_copy_and_view(sample_dir, ws, da_env):
    parquet = ws / "server" / "parquet"
    stale = duckdb.connect()
    stale.execute(f"COPY (SELECT 1 AS order_id) TO '{parquet / 'orders.parquet'}' (FORMAT parquet)")
    stale.close()
    before = (parquet / "orders.parquet").read_bytes()
    old_views(ws, [file_view("orders", parquet / "orders.parquet")])
    with LocalServer(sample_dir, mode="0.84") as server:
        server.set_faults([{"kind": "corrupt", "table": "orders"}])
        env = dict(da_env, **server.env())
        result = da(env, ws, "sync", "--json")
        report = json.loads(result.stdout)
        assert [e["table"] for e in report["errors"]] == ["orders"], report
        assert (parquet / "orders.parquet").read_bytes() == before
        assert count(ws, "orders") == 1
        assert relations(ws)["orders"][1] is None
        # Once the server is well again, the file is replaced and the view adopted.
        server.clear_faults()
        again = json.loads(da(env, ws, "sync", "--json").stdout)
        assert "orders" in again["downloaded"], again
        assert count(ws, "orders") == 5000
        assert relations(ws)["orders"][1].startswith("agnes: ")


def test_sessions_agnes_push_sent_are_not_sent_again(sample_dir, ws, da_env):
    home = Path(da_env["HOME"])
    folder = home / ".claude" / "projects" / "".join(c if c.isalnum() else "-" for c in str(ws))
    folder.mkdir(parents=True)
    sent_before = folder / "11111111-aaaa.jsonl"
    sent_before.write_text('{"type": "user"}\n')
    grown = folder / "22222222-bbbb.jsonl"
    grown.write_text('{"type": "user"}\n{"type": "assistant"}\n')
    new = folder / "33333333-cccc.jsonl"
    new.write_text('{"type": "user"}\n')
    (ws / ".claude").mkdir()
    (ws / ".claude" / "agnes-sessions-uploaded.txt").write_text(
        f"11111111-aaaa\t{sent_before.stat().st_size}\t2026-12-01T10:00:00Z\n"
        "22222222-bbbb\t17\t2026-12-01T10:00:00Z\n")
    with LocalServer(sample_dir, mode="0.84") as server:
        env = dict(da_env, **server.env())
        result = da(env, ws, "sync", "--upload-only", "--json")
        assert result.returncode == 0, result.stderr
        stored = sorted(p.name for p in server.uploads_dir.rglob("*.jsonl"))
        assert stored == ["22222222-bbbb.jsonl", "33333333-cccc.jsonl"], stored
        # And agnes remembers it: nothing goes the second time.
        shutil.rmtree(server.uploads_dir)
        da(env, ws, "sync", "--upload-only", "--json")
        assert not server.uploads_dir.exists() or not list(server.uploads_dir.rglob("*.jsonl"))
