"""The README's recipes, each run with the real client (issue 23): dbt
(`dbt run` on the tiny project in test/clients/dbt), ibis
(test/clients/ibis/recipe.py) and Node's @duckdb/node-api
(test/clients/node/recipe.mjs), against the local server. The clients come
from PyPI (configure/venv-clients, requirements-clients.txt) and npm
(test/clients/node/package-lock.json), installed by `make configure`.
The Jupyter recipe is test_jupyter.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
CLIENTS = REPO / "test" / "clients"
CLIENTS_BIN = REPO / "configure" / "venv-clients" / "bin"
TABLES = ["customers", "in.c-crm.people", "orders", "products"]


@pytest.fixture
def env(server, tmp_path) -> dict:
    """agnes's usual configuration, a private HOME (where DuckDB installs
    extensions) and no telemetry (CI reaches no server but ours)."""
    home, ws = tmp_path / "home", tmp_path / "ws"
    home.mkdir()
    ws.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "DA_", "DBT_"))}
    env.update(
        HOME=str(home),
        AGNES_CONFIG_DIR=str(tmp_path / "config"),
        AGNES_LOCAL_DIR=str(ws),
        AGNES_SERVER=server.url,
        AGNES_TOKEN="demo-token",
        AGNES_EXTENSION=str(EXTENSION),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return env


def run(command: list, env: dict, cwd: Path, timeout: float = 300) -> str:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


def big_orders(sample_dir: Path) -> int:
    """Orders over 400, counted straight from the server's file."""
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT count(*) FROM '{sample_dir / 'orders.parquet'}' WHERE amount > 400").fetchone()[0]
    finally:
        con.close()


def test_dbt_run_syncs_at_start_and_builds_models_over_a_view_and_a_scan(env, server, sample_dir, tmp_path):
    project = Path(shutil.copytree(CLIENTS / "dbt", tmp_path / "project"))
    out = run([str(CLIENTS_BIN / "dbt"), "run", "--profiles-dir", "."], env, project)
    assert "OK hook: agnes_recipe.on-run-start.0" in out, out
    assert "PASS=3 WARN=0 ERROR=0" in out, out

    con = duckdb.connect(str(project / "analytics.duckdb"), read_only=True)
    try:
        # on-run-start's agnes_sync() made the views in dbt's database.
        views = con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal "
            "AND (comment LIKE 'agnes: %' OR sql LIKE '% AS \"agnes: %') ORDER BY 1"
        ).fetchall()
        assert [v for (v,) in views if v != "live_orders"] == TABLES
        assert con.execute("SELECT sum(orders) FROM orders_by_status").fetchone()[0] == 5000
        assert con.execute("SELECT count(*) FROM big_orders").fetchone()[0] == big_orders(sample_dir)
    finally:
        con.close()
    scans = [r for r in server.requests() if r["path"] == "/api/v2/scan"]
    assert any((r.get("scan") or {}).get("where") == "amount > 400" for r in scans), scans


def test_ibis_loads_agnes_by_name_and_shows_tables_once_synced(env, server, sample_dir, tmp_path):
    # The workspace has synced before (in another session): LOAD alone then
    # makes no view, so catalog browsers see nothing until a sync.
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    con.execute(
        "SELECT * FROM agnes_sync(server := ?, token := ?, workspace := ?, new_workspace := true)",
        [env["AGNES_SERVER"], env["AGNES_TOKEN"], env["AGNES_LOCAL_DIR"]],
    ).fetchall()
    con.close()

    out = run([str(CLIENTS_BIN / "python"), str(CLIENTS / "ibis" / "recipe.py")], env, tmp_path)
    assert out.splitlines() == [
        "list_tables after LOAD: []",
        "orders rows: 5000",
        f"list_tables after agnes_sync: {TABLES}",
        f"big orders: {big_orders(sample_dir)}",
        "load_extension(path): nothing loaded: CatalogException",
    ], out


def test_node_api_syncs_and_queries(env, tmp_path):
    node = shutil.which("node")
    assert node, "node is not installed (the Makefile's clients target needs node and npm)"
    recipe = CLIENTS / "node" / "recipe.mjs"
    assert (CLIENTS / "node" / "node_modules" / "@duckdb" / "node-api").is_dir(), "run `make configure`"
    out = run([node, str(recipe)], env, tmp_path, timeout=120)
    assert out.splitlines() == [
        "customers: downloaded",
        "in.c-crm.people: downloaded",
        "live_orders: scan_view",
        "orders: downloaded",
        "products: downloaded",
        "orders: 5000 rows",
        "scanned: 7 rows",
    ], out
    # A file database: the views stay for tools that open it without agnes.
    con = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    try:
        marked = "comment LIKE 'agnes: %' OR sql LIKE '% AS \"agnes: %'"
        assert con.execute(f"SELECT count(*) FROM duckdb_views() WHERE {marked}").fetchone()[0] == 5
    finally:
        con.close()
