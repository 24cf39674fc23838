"""Today's Agnes server (0.84, CONTRACT.md §7) and May 2026's, as processes:
`da` and the extension against agnes-server in each mode (issue 12).

What the SQL tests cannot set up lives here: `da`'s exit status, Claude
Code's transcript folder (an environment and a workspace path with dots,
spaces and dashes), symlinks, and what the server stored.
"""

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import DA_BIN

from agnes_testkit import SAMPLE_CATALOG, LocalServer, write_catalog, write_partitioned

MODES = ["0.84", "may2026"]

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJhbmFseXN0IiwiZXhwIjoxODAwMDAwMDAwfQ"
    ".Xq3n0mJbC7xk5mJ0yq0V3kX0y8kq1sJp2H9uYb7ZtQ4"
)


def da(env, cwd, *args, timeout=120):
    return subprocess.run(
        [str(DA_BIN), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout,
    )


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_json(server, path):
    """GETs an API document with the demo token: (JSON, header names)."""
    req = urllib.request.Request(server.url + path, headers={"Authorization": "Bearer demo-token"})
    with _OPENER.open(req, timeout=10) as resp:
        return json.loads(resp.read()), list(resp.headers.keys())


def encoded(path: Path) -> str:
    """Claude Code's folder name for a workspace (CONTRACT.md §7)."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(path).rstrip("/"))


@pytest.fixture
def catalog(sample_dir):
    """Rewrites the sample catalog with changes, keeping users and memory."""

    def write(**changes):
        cat = json.loads(json.dumps(SAMPLE_CATALOG))
        for table, meta in changes.pop("tables", {}).items():
            cat["tables"].setdefault(table, {}).update(meta)
        cat.update(changes)
        write_catalog(sample_dir, cat)

    return write


# -- tables -----------------------------------------------------------------


def test_a_server_only_table_does_not_fail_da_sync(sample_dir, catalog, da_env, tmp_path):
    write_partitioned(sample_dir, "events", {
        "2026_01.parquet": "SELECT range AS id FROM range(10)",
        "2026_02.parquet": "SELECT range + 10 AS id FROM range(5)",
    })
    catalog(tables={"customers": {"server_only": True}})
    ws = tmp_path / "ws"
    ws.mkdir()
    with LocalServer(sample_dir, mode="0.84") as server:
        env = dict(da_env, **server.env())
        first = da(env, ws, "sync", "--json")
        assert first.returncode == 0, first.stderr
        report = json.loads(first.stdout)
        # Not downloaded: read on the server through its view over agnes_scan().
        assert "customers" in report["skipped_remote"], report
        assert report["skipped_server_only"] == []
        assert report["errors"] == []
        assert sorted(report["downloaded"]) == ["events", "in.c-crm.people", "orders", "products"]
        human = da(env, ws, "sync")
        assert human.returncode == 0, human.stderr
        assert "Skipped (remote-mode): 2\n" in human.stdout, human.stdout
        assert not any(r["path"] == "/api/data/customers/download" for r in server.requests())
    parts = sorted(p.relative_to(ws / "server" / "parquet").as_posix()
                   for p in (ws / "server" / "parquet").rglob("*.parquet"))
    assert parts == ["events/2026_01.parquet", "events/2026_02.parquet", "in.c-crm.people.parquet",
                     "orders.parquet", "products.parquet"]


def test_the_may_server_knows_none_of_it_and_da_syncs_every_table(sample_dir, catalog, da_env, tmp_path):
    write_partitioned(sample_dir, "events", {"2026_01.parquet": "SELECT 1 AS id"})
    catalog(tables={"customers": {"server_only": True}, "orders": {"signed_url": "valid"}},
            direct_tables=["orders"])
    ws = tmp_path / "ws"
    ws.mkdir()
    with LocalServer(sample_dir, mode="may2026") as server:
        result = da(dict(da_env, **server.env()), ws, "sync", "--json")
        manifest, headers = get_json(server, "/api/sync/manifest")
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)["downloaded"]) == [
        "customers", "in.c-crm.people", "orders", "products"]
    assert "events" not in manifest["tables"]
    assert not ({"data_packages", "direct_tables"} & manifest.keys())
    assert all("server_only" not in t and "parts" not in t for t in manifest["tables"].values())
    assert not any(h.lower().startswith("x-agnes-") for h in headers)


def test_da_all_tables_takes_what_subscriptions_leave_out(sample_dir, catalog, da_env, tmp_path):
    catalog(data_packages=[{"slug": "sales", "tables": ["orders"]}], direct_tables=[])
    ws = tmp_path / "ws"
    ws.mkdir()
    with LocalServer(sample_dir, mode="0.84") as server:
        env = dict(da_env, **server.env())
        subscribed = da(env, ws, "sync", "--json")
        assert subscribed.returncode == 0, subscribed.stderr
        report = json.loads(subscribed.stdout)
        assert report["downloaded"] == ["orders"]
        assert sorted(report["skipped_not_subscribed"]) == ["customers", "in.c-crm.people", "products"]
        manifest = da(env, ws, "manifest", "--json", "--all-tables")
        assert manifest.returncode == 0, manifest.stderr
        everything = da(env, ws, "sync", "--json", "--all-tables")
        assert everything.returncode == 0, everything.stderr
        assert sorted(json.loads(everything.stdout)["downloaded"]) == [
            "customers", "in.c-crm.people", "products"]


def test_a_table_that_becomes_partitioned_and_back_keeps_one_copy_and_its_view(sample_dir, tmp_path):
    import duckdb

    from conftest import EXTENSION

    ws = tmp_path / "ws"
    ws.mkdir()
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    sync = "SELECT action FROM agnes_sync(server := ?, token := 'demo-token', workspace := ?, new_workspace := true, table_id := 'orders') WHERE kind = 'table'"
    parquet = ws / "server" / "parquet"
    with LocalServer(sample_dir, mode="0.84") as server:
        assert con.execute(sync, [server.url, str(ws)]).fetchall() == [("downloaded",)]
        (sample_dir / "orders.parquet").unlink()
        write_partitioned(sample_dir, "orders", {"p1.parquet": "SELECT 1 AS order_id",
                                                 "p2.parquet": "SELECT 2 AS order_id"})
        assert con.execute(sync, [server.url, str(ws)]).fetchall() == [("downloaded",)]
        assert not (parquet / "orders.parquet").exists()
        assert sorted(p.name for p in (parquet / "orders").iterdir()) == ["p1.parquet", "p2.parquet"]
        assert con.execute("SELECT sum(order_id) FROM orders").fetchone() == (3,)
        shutil.rmtree(sample_dir / "orders")
        con.execute(f"COPY (SELECT 7 AS order_id) TO '{sample_dir / 'orders.parquet'}' (FORMAT parquet)")
        assert con.execute(sync, [server.url, str(ws)]).fetchall() == [("downloaded",)]
    assert sorted(p.name for p in parquet.iterdir()) == ["orders.parquet"]
    assert con.execute("SELECT sum(order_id) FROM orders").fetchone() == (7,)
    con.close()


def test_a_part_is_checked_against_x_agnes_content_md5(sample_dir, catalog, da_env, tmp_path):
    """Parts without a manifest MD5 (`hash: empty`) are still checked against
    the MD5 the server sends with them; a part changed on the way fails its
    table, and the version before stays whole."""
    write_partitioned(sample_dir, "events", {
        "a.parquet": "SELECT range AS id FROM range(1000)",
        "b.parquet": "SELECT range AS id FROM range(1000, 1500)",
    })
    catalog(tables={"events": {"hash": "empty"}})
    ws = tmp_path / "ws"
    ws.mkdir()
    with LocalServer(sample_dir, mode="0.84") as server:
        env = dict(da_env, **server.env())
        manifest, headers = get_json(server, "/api/sync/manifest")
        assert [p["hash"] for p in manifest["tables"]["events"]["parts"]] == ["", ""]
        assert "x-agnes-accepts" in headers and "x-agnes-latest-version" in headers
        server.set_faults([{"kind": "corrupt", "table": "events", "part": "b.parquet"}])
        broken = da(env, ws, "sync", "--json", "--table", "events")
        assert broken.returncode == 2, broken.stderr
        error = json.loads(broken.stdout)["errors"][0]["error"]
        assert "part b.parquet" in error and "X-Agnes-Content-MD5" in error, error
        assert not (ws / "server" / "parquet" / "events").exists()
        server.clear_faults()
        fine = da(env, ws, "sync", "--json", "--table", "events")
        assert fine.returncode == 0, fine.stderr
    assert sorted(p.name for p in (ws / "server" / "parquet" / "events").iterdir()) == [
        "a.parquet", "b.parquet"]
    assert not [p for p in (ws / "server" / "parquet").iterdir() if p.name.startswith(".")]


def test_a_signed_url_by_host_name_is_resolved_checked_and_pinned(sample_dir, catalog, da_env, tmp_path):
    """`localhost` is resolved by agnes itself, every answer checked: refused
    without the test opt-in, used with it, and never with the token."""
    catalog(tables={"orders": {"signed_url": "localhost"}})
    ws = tmp_path / "ws"
    ws.mkdir()
    with LocalServer(sample_dir, mode="0.84") as server:
        env = dict(da_env, **server.env())
        guarded = da(env, ws, "sync", "--json", "--table", "orders")
        assert guarded.returncode == 0, guarded.stderr
        note = json.loads(guarded.stdout)["tables"][0]["note"]
        assert re.search(r"localhost is (127\.0\.0\.1|::1), a loopback address; refused", note), note
        assert not [r for r in server.requests() if r["path"].startswith("/objects/")]
        (ws / "server" / "parquet" / "orders.parquet").unlink()
        opted_in = da(dict(env, AGNES_TEST_ALLOW_LOOPBACK_SIGNED_URLS="1"), ws,
                      "sync", "--json", "--table", "orders")
        assert opted_in.returncode == 0, opted_in.stderr
        assert json.loads(opted_in.stdout)["tables"][0]["note"] == "fetched from the signed URL"
        store = [r for r in server.requests() if r["path"].startswith("/objects/")]
        assert [(r["path"], r["authorization"], r["status"]) for r in store] == [
            ("/objects/orders", None, 200)]


# -- uploads ----------------------------------------------------------------


@pytest.fixture
def claude_workspace(tmp_path):
    """A workspace whose path has dots, spaces and dashes, its Claude Code
    transcript folder (under CLAUDE_CONFIG_DIR), and what is in both."""
    ws = tmp_path / "my.analysis work-2026 v1.2"
    (ws / "user" / "sessions").mkdir(parents=True)
    config = tmp_path / "claude config"
    projects = config / "projects" / encoded(ws)
    projects.mkdir(parents=True)
    token_line = json.dumps({"type": "tool_result", "content": f"export AGNES_TOKEN=demo-token ; jwt {JWT} done"})
    (projects / "0f4e2b9c-session.jsonl").write_text(
        json.dumps({"type": "user", "message": "hello"}) + "\n" + token_line + "\n")
    (projects / "odd name (1).jsonl").write_text('{"odd": true}\n')
    secret = tmp_path / "private.key"
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.symlink(secret, projects / "linked.jsonl")
    (ws / "user" / "sessions" / "copied.jsonl").write_text('{"copied": 1}\n')
    return ws, config, projects


def stored_sessions(server):
    folder = server.uploads_dir / "analyst" / "sessions"
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.exists() else {}


@pytest.mark.parametrize("mode", MODES)
def test_transcripts_from_claude_codes_folder_arrive_scrubbed_once_each(
        mode, sample_dir, da_env, claude_workspace):
    ws, config, projects = claude_workspace
    env = dict(da_env, CLAUDE_CONFIG_DIR=str(config))
    with LocalServer(sample_dir, mode=mode) as server:
        env.update(server.env())
        first = da(env, ws, "sync", "--upload-only", "--json", "--workspace", str(ws))
        assert first.returncode == 0, first.stderr
        files = {Path(f["path"]).name: f for f in json.loads(first.stdout)["files"]}
        second = da(env, ws, "sync", "--upload-only", "--json", "--workspace", str(ws))
        uploads = [r for r in server.requests() if r["path"] == "/api/upload/sessions"]
        stored = stored_sessions(server)

    assert {n: f["action"] for n, f in files.items()} == {
        "copied.jsonl": "uploaded", "0f4e2b9c-session.jsonl": "uploaded",
        "odd name (1).jsonl": "uploaded", "linked.jsonl": "skipped"}
    assert files["linked.jsonl"]["note"] == "a symbolic link: skipped, never followed"
    assert "2 secret(s) removed before sending" in files["0f4e2b9c-session.jsonl"]["note"]
    # The odd name went under a safe, stable one that the 0.84 server takes.
    odd = [n for n in stored if n.startswith("odd_name__1_-")]
    assert len(odd) == 1 and re.fullmatch(r"[A-Za-z0-9._-]{1,200}", odd[0]), stored
    assert f"sent as {odd[0]}" in files["odd name (1).jsonl"]["note"]
    assert sorted(stored) == sorted(["0f4e2b9c-session.jsonl", "copied.jsonl", odd[0]])
    # The token and the JWT never left the machine; the rest did, unchanged.
    session = stored["0f4e2b9c-session.jsonl"]
    assert JWT not in session and "demo-token" not in session
    assert "[REDACTED_JWT]" in session and "[REDACTED_AGNES_TOKEN]" in session
    assert session.splitlines()[0] == json.dumps({"type": "user", "message": "hello"})
    assert "PRIVATE KEY" not in "".join(stored.values())
    # Each sent once: the second run sends nothing.
    assert len(uploads) == 3
    assert {f["action"] for f in json.loads(second.stdout)["files"] if f["kind"] == "session"} == {
        "unchanged", "skipped"}
    # gzip exactly when the server says it takes it (0.84), never to May's.
    names = sorted(r["upload"] for r in uploads)
    if mode == "0.84":
        assert all(n.endswith(".jsonl.gz") for n in names), names
    else:
        assert all(n.endswith(".jsonl") for n in names), names


def test_gzip_off_on_a_current_server_that_does_not_accept_it(sample_dir, catalog, da_env, claude_workspace):
    ws, config, _ = claude_workspace
    catalog(accepts=[])
    with LocalServer(sample_dir, mode="0.84") as server:
        env = dict(da_env, CLAUDE_CONFIG_DIR=str(config), **server.env())
        result = da(env, ws, "sync", "--upload-only", "--json", "--workspace", str(ws))
        uploads = [r for r in server.requests() if r["path"] == "/api/upload/sessions"]
    assert result.returncode == 0, result.stderr
    assert sorted(r["upload"][-6:] for r in uploads) == [".jsonl"] * 3
    assert all(r["status"] == 200 for r in uploads)


def test_the_current_server_refuses_odd_names_that_agnes_never_sends(sample_dir):
    """The server side of the name rule: 400 outside [A-Za-z0-9._-]{1,200} on
    0.84, accepted on May's (which is why agnes derives a safe name)."""
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a b.jsonl"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n{}\n\r\n--b--\r\n")
    for mode, expected in [("0.84", 400), ("may2026", 200)]:
        with LocalServer(sample_dir, mode=mode) as server:
            req = urllib.request.Request(server.url + "/api/upload/sessions", data=body, method="POST")
            req.add_header("Authorization", "Bearer demo-token")
            req.add_header("Content-Type", "multipart/form-data; boundary=b")
            try:
                status = _OPENER.open(req).status
            except urllib.error.HTTPError as err:
                status = err.code
            assert status == expected, mode


def test_claude_codes_default_folder_is_under_home(sample_dir, da_env, tmp_path):
    ws = tmp_path / "ws.with-dash"
    ws.mkdir()
    projects = Path(da_env["HOME"]) / ".claude" / "projects" / encoded(ws)
    projects.mkdir(parents=True)
    (projects / "s1.jsonl").write_text('{"x": 1}\n')
    env = {k: v for k, v in da_env.items() if k != "CLAUDE_CONFIG_DIR"}
    with LocalServer(sample_dir, mode="0.84") as server:
        result = da(dict(env, **server.env()), ws, "sync", "--upload-only", "--json", "--workspace", str(ws))
        stored = stored_sessions(server)
    assert result.returncode == 0, result.stderr
    assert stored == {"s1.jsonl": '{"x": 1}\n'}
