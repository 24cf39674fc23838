"""`da`, the command line, as a process: the real `target/debug/da`, the
real duckdb CLI 1.5.6 with `build/debug/agnes.duckdb_extension`, and a local
agnes-server with the sample data (issue 6, CONTRACT.md §6).

Where the contract is exact (quiet mode, the hooks file, the old summary
lines) stdout and stderr are compared byte for byte.
"""

import json
import os
import pty
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import duckdb
import pytest
from conftest import DA_BIN, DUCKDB_CLI, EXTENSION, REPO

VERSION = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["version"]
TABLES = ["customers", "in.c-crm.people", "orders", "products"]

FIRST_SYNC = "Downloaded: 4 tables\nSkipped (unchanged): 0\nSkipped (remote-mode): 1\n"
NO_OP_SYNC = "Downloaded: 0 tables\nSkipped (unchanged): 4\nSkipped (remote-mode): 1\n"

HOOKS_JSON = """{
  "hooks": {
    "SessionStart": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "da sync --upload-first --detach --quiet 2>/dev/null || true"
          }
        ]
      }
    ],
    "SessionEnd": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "da sync --upload-only --detach --wait 0 --quiet 2>/dev/null || true"
          }
        ]
      }
    ]
  }
}
"""


class Da:
    """Runs `da` in a workspace with a given environment."""

    def __init__(self, env: dict, workspace: Path, binary: Path = DA_BIN):
        self.env, self.workspace, self.binary = env, workspace, binary

    def __call__(self, *args, env=None, input=None, timeout=60):
        merged = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return subprocess.run(
            [str(self.binary), *args],
            env=merged,
            cwd=self.workspace,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def database(self) -> Path:
        return self.workspace / "user" / "duckdb" / "analytics.duckdb"


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture
def da(da_env, server, workspace) -> Da:
    """`da` pointed at the local server (env) and the workspace (cwd)."""
    return Da(dict(da_env, **server.env()), workspace)


@pytest.fixture
def offline_da(da_env, workspace) -> Da:
    """`da` with a token but no server running."""
    return Da(dict(da_env, AGNES_SERVER=f"http://127.0.0.1:{closed_port()}", AGNES_TOKEN="demo-token"), workspace)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def views(database: Path) -> list:
    con = duckdb.connect(str(database), read_only=True)
    try:
        # Views over downloaded tables (the remote live_orders gets one over agnes_scan()).
        sql = "SELECT view_name FROM duckdb_views() WHERE NOT internal AND sql NOT LIKE '%agnes_scan(%' ORDER BY 1"
        return [r[0] for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def assert_one_error_line(result, *, contains: str):
    assert result.stdout == ""
    assert result.stderr.startswith("da: "), result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert contains in result.stderr, result.stderr


# -- --help, --version ------------------------------------------------------


def test_version_names_the_extension_and_duckdb_it_would_use(da_env, workspace):
    result = Da(da_env, workspace)("--version")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"da {VERSION}",
        f"extension {VERSION} ({EXTENSION})",
        f"duckdb v1.5.6 (Variegata) 069cc9f9b5 ({DUCKDB_CLI})",
    ]
    # What cannot be found is said, and da's own version still comes first.
    lost = Da(da_env, workspace)("-V", env={"AGNES_DUCKDB": "/nowhere/duckdb"})
    assert lost.returncode == 0
    assert lost.stdout.splitlines()[0] == f"da {VERSION}"
    assert "duckdb: AGNES_DUCKDB names /nowhere/duckdb, which is not an executable file" in lost.stdout


@pytest.mark.parametrize(
    "command",
    [[], ["sync"], ["manifest"], ["hooks"], ["hooks", "install"], ["login"], ["status"], ["completions"]],
    ids=lambda c: " ".join(c) or "da",
)
def test_help_on_everything(da_env, workspace, command):
    result = Da(da_env, workspace)(*command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(("Sync an analyst", "Download", "What", "The Claude", "Write", "Store", "Print"))
    assert "Usage: da" in result.stdout
    if command in ([], ["sync"], ["manifest"]):
        for line in ["Exit status:", "  0  all good", "  1  nothing could be done", "  2  the run went through"]:
            assert line in result.stdout


def test_usage_errors_exit_1_not_2(da_env, workspace):
    for args in (["frobnicate"], ["sync", "--no-such-flag"], [], ["login"]):
        result = Da(da_env, workspace)(*args)
        assert result.returncode == 1, args
        assert result.stdout == ""
        assert "Usage: da" in result.stderr


# -- da sync: output modes --------------------------------------------------


def test_sync_human_then_no_op(da, workspace):
    first = da("sync")
    assert (first.returncode, first.stdout, first.stderr) == (0, FIRST_SYNC, "")
    for table in TABLES:
        assert (workspace / "server" / "parquet" / f"{table}.parquet").is_file()
    assert views(da.database) == TABLES
    # Checkpointed: the next open does not replay the views from the log.
    assert not da.database.with_name("analytics.duckdb.wal").exists()
    rules = sorted(p.name for p in (workspace / ".claude" / "rules").iterdir())
    assert rules == ["km_approved.md", "km_pii-handling.md", "km_sql-style.md"]
    con = duckdb.connect(str(da.database), read_only=True)
    assert con.execute('SELECT count(*) FROM "in.c-crm.people"').fetchone()[0] == 300
    con.close()

    again = da("sync")
    assert (again.returncode, again.stdout, again.stderr) == (0, NO_OP_SYNC, "")


def test_sync_quiet_prints_nothing(da):
    for _ in range(2):  # a first sync, then a no-op
        result = da("sync", "--quiet")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert views(da.database) == TABLES


def test_sync_quiet_wins_over_json(da):
    result = da("sync", "--quiet", "--json")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_sync_json_keeps_the_old_keys(da, server, sample_dir):
    doc = json.loads(da("sync", "--json").stdout)
    assert doc["downloaded"] == TABLES
    assert doc["skipped"] == [] and doc["errors"] == [] and doc["removed"] == []
    assert doc["skipped_remote"] == ["live_orders"]
    assert doc["views"] == sorted(TABLES + ["live_orders"]) and doc["views_pending"] is None
    assert doc["rules"] == {"action": "written", "files": 3, "warnings": []}
    orders = next(t for t in doc["tables"] if t["table"] == "orders")
    assert orders["action"] == "downloaded" and orders["rows"] == 5000 and orders["view"] == "orders"

    # A table that left the manifest is removed, view and file.
    (sample_dir / "customers.parquet").unlink()
    result = da("sync", "--json")
    assert result.returncode == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["downloaded"] == [] and doc["removed"] == ["customers"]
    assert doc["skipped"] == ["in.c-crm.people", "orders", "products"]
    assert "customers" not in views(da.database)


def test_sync_table_and_docs_only(da, workspace):
    result = da("sync", "--table", "in.c-crm.people")
    assert (result.returncode, result.stdout) == (0, "Downloaded: 1 tables\nSkipped (unchanged): 0\n")
    assert views(da.database) == ["in.c-crm.people"]

    unknown = da("sync", "--table", "nope")
    assert unknown.returncode == 1
    assert "table 'nope' is not in the manifest" in unknown.stderr

    shutil.rmtree(workspace / ".claude")
    docs = da("sync", "--docs-only")
    assert (docs.returncode, docs.stdout) == (0, "Downloaded: 0 tables\nSkipped (unchanged): 0\n")
    assert (workspace / ".claude" / "rules" / "km_sql-style.md").is_file()
    assert sorted(p.name for p in (workspace / "server" / "parquet").iterdir()) == ["in.c-crm.people.parquet"]


def test_dry_run_writes_nothing(da, workspace, sample_dir):
    result = da("sync", "--dry-run")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"Dry run — would download 4 tables \(\d+\.\d KiB\)", lines[0]), lines[0]
    assert lines[1:3] == ["Skipped (unchanged): 0", "Skipped (remote-mode): 1"]
    assert [line.split()[0] for line in lines[3:]] == TABLES
    assert "  orders rows=5000 size=" in result.stdout

    doc = json.loads(da("sync", "--dry-run", "--json").stdout)
    assert doc["dry_run"] is True
    assert [t["table"] for t in doc["would_download"]] == TABLES
    sizes = {t["table"]: t["size_bytes"] for t in doc["would_download"]}
    assert sizes["orders"] == (sample_dir / "orders.parquet").stat().st_size
    assert doc["summary"]["tables_to_download"] == 4
    assert doc["summary"]["bytes_total"] == sum(sizes.values())

    quiet = da("sync", "--dry-run", "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert list(workspace.iterdir()) == []


def test_progress_on_a_terminal_only(da, server):
    """With stderr on a terminal, the extension draws per-table bytes there;
    stdout keeps the summary. (Piped, as in every other test, stderr is empty.)"""
    # orders pauses half way for longer than the redraw interval, so a line
    # with its partial bytes is drawn however fast the machine is.
    server.set_faults([{"endpoint": "download", "table": "orders", "kind": "stall", "ms": 400, "at": "middle"}])
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(DA_BIN), "sync"], env=da.env, cwd=da.workspace, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=slave,
    )
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=60) == 0
    reader.join(10)
    os.close(master)
    drawn = b"".join(chunks)
    assert stdout == FIRST_SYNC
    assert b"\ragnes: 0 done | " in drawn and b"\ragnes: 4 done\x1b[K" in drawn
    assert re.search(rb" \| orders \d+(\.\d)? (B|KiB)/\d+\.\d KiB", drawn), drawn
    assert drawn.endswith(b"\r\x1b[K"), drawn[-40:]


# -- exit statuses ----------------------------------------------------------


def test_a_failed_table_is_exit_2(da, server, workspace):
    server.set_faults([{"endpoint": "download", "table": "orders", "kind": "status", "status": 404}])
    result = da("sync")
    assert result.returncode == 2
    assert result.stdout == (
        "Downloaded: 3 tables\nSkipped (unchanged): 0\nSkipped (remote-mode): 1\n"
        "Errors: 1\n  orders: HTTP 404 Not Found: injected fault: HTTP 404\n"
    )
    assert result.stderr == ""
    assert not (workspace / "server" / "parquet" / "orders.parquet").exists()

    quiet = da("sync", "--quiet")
    assert (quiet.returncode, quiet.stdout) == (2, "")
    assert quiet.stderr == "da sync: 1 of 5 tables failed: orders: HTTP 404 Not Found: injected fault: HTTP 404\n"

    doc = json.loads(da("sync", "--json").stdout)
    assert doc["errors"] == [{"table": "orders", "error": "HTTP 404 Not Found: injected fault: HTTP 404"}]

    server.clear_faults()
    healed = da("sync")
    assert (healed.returncode, healed.stdout) == (0, "Downloaded: 1 tables\nSkipped (unchanged): 3\nSkipped (remote-mode): 1\n")


@pytest.mark.parametrize("quiet", [False, True], ids=["human", "quiet"])
def test_server_down_is_exit_1_within_5_seconds(offline_da, quiet):
    started = time.monotonic()
    result = offline_da("sync", *(["--quiet"] if quiet else []), timeout=30)
    elapsed = time.monotonic() - started
    print(f"server down: da sync{' --quiet' if quiet else ''} returned in {elapsed:.2f} s")
    assert elapsed < 5.0
    assert result.returncode == 1
    assert_one_error_line(result, contains="Connection refused")
    # The database was opened, but no data arrived.
    assert not (offline_da.workspace / "server" / "parquet").exists()


def test_refused_token_is_exit_1_and_never_printed(da):
    secret = "s3cret-not-a-valid-token"
    for args in (["sync"], ["sync", "--quiet"], ["sync", "--json"], ["manifest"]):
        result = da(*args, env={"AGNES_TOKEN": secret})
        assert result.returncode == 1, args
        assert_one_error_line(result, contains="refused the token (401)")
        assert secret not in result.stdout + result.stderr
    ok = da("sync", "--json")
    assert "demo-token" not in ok.stdout + ok.stderr


@pytest.mark.parametrize(
    "env, says",
    [
        ({"AGNES_TOKEN": None}, "no Agnes token"),
        ({"AGNES_SERVER": "localhost:8000"}, "must start with http:// or https://"),
        ({"AGNES_DUCKDB": "/nowhere/duckdb"}, "AGNES_DUCKDB names /nowhere/duckdb, which is not an executable file"),
        ({"AGNES_DUCKDB": None, "PATH": "/nowhere"}, "duckdb not found on PATH"),
        ({"AGNES_EXTENSION": "/nowhere/agnes.duckdb_extension"}, "AGNES_EXTENSION names /nowhere/agnes.duckdb_extension"),
        ({"AGNES_EXTENSION": None}, "the agnes extension is not installed in"),
    ],
    ids=["no-token", "bad-server-url", "bad-duckdb", "no-duckdb-on-path", "bad-extension", "not-installed"],
)
def test_nothing_could_be_done_is_exit_1(da, env, says):
    for quiet in ([], ["--quiet"]):
        result = da("sync", *quiet, env=env)
        assert result.returncode == 1
        assert_one_error_line(result, contains=says)
    assert not (da.workspace / "server").exists()


def test_broken_config_is_exit_1(da, da_env):
    config = Path(da_env["AGNES_CONFIG_DIR"])
    config.mkdir()
    (config / "config.yaml").write_text("server: [unclosed\n")
    result = da("sync", "--quiet", env={"AGNES_SERVER": None})
    assert result.returncode == 1
    assert_one_error_line(result, contains="config.yaml is not valid YAML")


def test_duckdb_flag_and_extension_beside_da(da, tmp_path):
    """--duckdb PATH beats AGNES_DUCKDB; without AGNES_EXTENSION, the file
    beside the `da` binary is loaded."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy2(DA_BIN, bin_dir / "da")
    shutil.copy2(EXTENSION, bin_dir / "agnes.duckdb_extension")
    moved = Da(da.env, da.workspace, binary=bin_dir / "da")
    result = moved(
        "sync", "--duckdb", str(DUCKDB_CLI),
        env={"AGNES_EXTENSION": None, "AGNES_DUCKDB": "/nowhere/duckdb"},
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, FIRST_SYNC, "")


def test_flags_beat_the_environment(da, server, tmp_path):
    other = tmp_path / "elsewhere"
    result = da(
        "sync", "--workspace", str(other), "--server", server.url,
        env={"AGNES_SERVER": f"http://127.0.0.1:{closed_port()}"},
    )
    assert (result.returncode, result.stdout) == (0, FIRST_SYNC)
    assert (other / "user" / "duckdb" / "analytics.duckdb").is_file()
    assert not da.database.exists()


# -- the locked database ----------------------------------------------------

HOLDER = """
import json, sys, duckdb
db, ext = sys.argv[1], sys.argv[2]
con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
con.execute("CREATE TABLE IF NOT EXISTS notebook AS SELECT 1 AS x")
print("ready", flush=True)
for line in sys.stdin:
    con.execute(f"LOAD '{ext}'")
    rows = con.execute("SELECT table_id, action, view_name FROM agnes_sync() WHERE kind = 'table' ORDER BY 1").fetchall()
    orders = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    print(json.dumps({"rows": rows, "orders": orders}), flush=True)
"""


def test_locked_database_syncs_in_memory_and_says_so(da, workspace):
    da.database.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(da.database), str(EXTENSION)],
        env=da.env, cwd=workspace, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "ready\n"
        result = da("sync")
        assert result.returncode == 0, result.stderr
        assert result.stdout == FIRST_SYNC + (
            f"Views: {da.database} is open in another process (PID {holder.pid}); "
            "the views will appear at the next agnes_sync() in that session\n"
        )
        assert result.stderr == ""
        for table in TABLES:
            assert (workspace / "server" / "parquet" / f"{table}.parquet").is_file()

        doc = json.loads(da("sync", "--json").stdout)
        assert doc["views"] == [] and f"PID {holder.pid}" in doc["views_pending"]
        quiet = da("sync", "--quiet")
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")

        # In the session that holds the file, the next agnes_sync() makes the views.
        holder.stdin.write("sync\n")
        holder.stdin.flush()
        seen = json.loads(holder.stdout.readline())
        assert seen["orders"] == 5000
        assert [r[0] for r in seen["rows"] if r[2]] == sorted(TABLES + ["live_orders"])
        assert {r[1] for r in seen["rows"] if r[0] in TABLES} == {"unchanged"}
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert views(da.database) == TABLES


# -- da manifest ------------------------------------------------------------


def test_manifest_human_and_json(da):
    result = da("manifest")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TABLE", "MODE", "ROWS", "SIZE", "STATUS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == sorted(TABLES + ["live_orders"])
    assert rows["orders"][1:3] == ["local", "5000"] and rows["orders"][-1] == "new"
    assert rows["live_orders"][-1] == "remote"

    da("sync", "--quiet")
    doc = json.loads(da("manifest", "--json").stdout)
    assert doc["server"] == da.env["AGNES_SERVER"]
    status = {t["table_id"]: t["status"] for t in doc["tables"]}
    assert status == {**{t: "unchanged" for t in TABLES}, "live_orders": "remote"}


def test_manifest_with_the_server_down_is_exit_1(offline_da):
    result = offline_da("manifest")
    assert result.returncode == 1
    assert_one_error_line(result, contains="manifest fetch from")


# -- da sync --upload-only --------------------------------------------------


def test_upload_only(da, workspace, server):
    sessions = workspace / "user" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "a.jsonl").write_text('{"x": 1}\n')
    (workspace / ".claude").mkdir()
    (workspace / ".claude" / "CLAUDE.local.md").write_text("# my notes\n")

    dry = da("sync", "--upload-only", "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert dry.stdout == (
        "Dry run — would upload 1 session file(s)\n"
        f"  {sessions / 'a.jsonl'}\n"
        f"Would upload CLAUDE.local.md ({workspace / '.claude' / 'CLAUDE.local.md'})\n"
    )
    first = da("sync", "--upload-only")
    assert (first.returncode, first.stdout, first.stderr) == (0, "Uploaded 1 sessions\nUploaded CLAUDE.local.md\n", "")
    again = da("sync", "--upload-only", "--json")
    doc = json.loads(again.stdout)
    assert (doc["sessions"], doc["local_md"], doc["unchanged"], doc["errors"]) == (0, False, 2, [])
    quiet = da("sync", "--upload-only", "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")

    # A refused upload is reported with its file, and the exit status is 2.
    (sessions / "a.jsonl").write_text('{"x": 2}\n')
    server.set_faults([{"endpoint": "upload", "kind": "status", "status": 400}])
    failed = da("sync", "--upload-only")
    assert failed.returncode == 2
    assert failed.stdout == (
        "Uploaded 0 sessions\nSkipped (unchanged): 1\nErrors: 1\n"
        f"  {sessions / 'a.jsonl'}: HTTP 400 Bad Request: injected fault: HTTP 400\n"
    )
    quiet = da("sync", "--upload-only", "--quiet")
    assert (quiet.returncode, quiet.stdout) == (2, "")
    assert quiet.stderr == (
        f"da sync --upload-only: 1 of 2 files failed: {sessions / 'a.jsonl'}: HTTP 400 Bad Request: injected fault: HTTP 400\n"
    )


# -- da hooks install -------------------------------------------------------


def settings_file(workspace: Path) -> Path:
    return workspace / ".claude" / "settings.json"


def test_hooks_install_on_a_missing_file(da_env, workspace):
    result = Da(da_env, workspace)("hooks", "install")
    path = settings_file(workspace)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"Created {path}\n")
    assert path.read_text() == HOOKS_JSON

    again = Da(da_env, workspace)("hooks", "install", "--workspace", str(workspace))
    assert again.returncode == 0
    assert again.stdout.startswith(f"The hooks are already installed in {path}\n")
    assert path.read_text() == HOOKS_JSON


def test_hooks_install_merges_into_an_existing_file(da_env, workspace, tmp_path):
    path = settings_file(workspace)
    path.parent.mkdir()
    path.write_text(json.dumps({
        "model": "opus",
        "hooks": {
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "echo pre"}]}],
            "SessionStart": [
                {"hooks": [{"type": "command", "command": "echo hello"}]},
                {"hooks": [{"type": "command", "command": "da sync --quiet || true"}]},
            ],
            "SessionEnd": [{"hooks": [{"type": "command", "command": "da sync --upload-only --quiet || true"}]}],
        },
        "permissions": {"allow": ["Bash(ls:*)"]},
    }))
    # Run from elsewhere: the workspace comes from AGNES_LOCAL_DIR.
    result = Da(dict(da_env, AGNES_LOCAL_DIR=str(workspace)), tmp_path)("hooks", "install")
    assert result.returncode == 0
    assert result.stdout.startswith(f"Installed the hooks in {path}\n")
    doc = json.loads(path.read_text())
    assert list(doc) == ["model", "hooks", "permissions"]
    assert list(doc["hooks"]) == ["PreToolUse", "SessionStart", "SessionEnd"]
    assert doc["hooks"]["PreToolUse"][0]["hooks"][0]["command"] == "echo pre"
    commands = [[h["command"] for h in e["hooks"]] for e in doc["hooks"]["SessionStart"]]
    assert commands == [["echo hello"], ["da sync --upload-first --detach --quiet 2>/dev/null || true"]]
    assert doc["hooks"]["SessionEnd"] == [
        {"hooks": [{"type": "command", "command": "da sync --upload-only --detach --wait 0 --quiet 2>/dev/null || true"}]}
    ]
    before = path.read_bytes()
    again = Da(da_env, workspace)("hooks", "install")
    assert again.stdout.startswith("The hooks are already installed in")
    assert path.read_bytes() == before


def test_hooks_install_leaves_invalid_json_untouched(da_env, workspace):
    path = settings_file(workspace)
    path.parent.mkdir()
    broken = b'{"hooks": {"SessionStart": [,]}}\n'
    path.write_bytes(broken)
    mtime = path.stat().st_mtime_ns
    result = Da(da_env, workspace)("hooks", "install")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"da: {path} is not valid JSON settings (line 1, column 29: expected value at line 1 column 29); "
        "left it untouched: fix it, then run `da hooks install` again\n"
    )
    assert path.read_bytes() == broken and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]


# -- da login ---------------------------------------------------------------


def test_login_writes_private_files_then_commands_use_them(da_env, server, workspace):
    config = Path(da_env["AGNES_CONFIG_DIR"])
    result = Da(da_env, workspace)("login", "--server", server.url + "/", input="demo-token\n")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == (
        f"Saved the server in {config / 'config.yaml'} and the token in {config / 'token.json'} (mode 0600)\n"
    )
    assert "demo-token" not in result.stdout
    for name in ("token.json", "config.yaml"):
        assert stat.S_IMODE((config / name).stat().st_mode) == 0o600, name
    assert json.loads((config / "token.json").read_text()) == {"access_token": "demo-token"}
    assert (config / "config.yaml").read_text() == f"server: {server.url}\n"

    # No AGNES_SERVER, no AGNES_TOKEN: the files are enough.
    sync = Da(da_env, workspace)("sync", "--quiet")
    assert (sync.returncode, sync.stdout, sync.stderr) == (0, "", "")

    relogin = Da(da_env, workspace)("login", "--server", server.url, "--token", "limited-token")
    assert relogin.returncode == 0 and "limited-token" not in relogin.stdout + relogin.stderr
    doc = json.loads(Da(da_env, workspace)("manifest", "--json").stdout)
    assert [t["table_id"] for t in doc["tables"]] == ["orders"]


def test_login_needs_a_token_and_a_valid_url(da_env, workspace):
    empty = Da(da_env, workspace)("login", "--server", "http://x", input="  \n")
    assert empty.returncode == 1
    assert_one_error_line(empty, contains="no token given")
    bad = Da(da_env, workspace)("login", "--server", "ftp://x", input="tok\n")
    assert bad.returncode == 1
    assert_one_error_line(bad, contains="must start with http:// or https://")
    assert not Path(da_env["AGNES_CONFIG_DIR"], "token.json").exists()


# -- start-up cost ----------------------------------------------------------


def test_no_op_quiet_sync_is_quick(da):
    """The SessionStart hook pays this on every start. The bound here is loose
    (debug build, shared machine); the measured median is printed."""
    assert da("sync", "--quiet").returncode == 0
    times = []
    for _ in range(5):
        started = time.monotonic()
        result = da("sync", "--quiet")
        times.append(time.monotonic() - started)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    median = sorted(times)[len(times) // 2]
    print(f"no-op da sync --quiet: median {median * 1000:.0f} ms over 5 runs")
    assert median < 2.0
