"""The hooks as Claude Code really runs them, and a `da` people can diagnose
(issue 14, CONTRACT.md §7): the real `target/debug/da`, the duckdb CLI
1.5.6 of configure/venv (pip's launcher script, which runs the real binary
as its child) with `build/debug/agnes.duckdb_extension`, and a local
agnes-server.

The hook commands are run the way Claude Code runs them: the exact string
from settings.json, by `sh -c`, with `da` found on PATH, in a process group
of its own whose output pipes are read to the end.
"""

import base64
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import DA_BIN, DUCKDB_CLI, EXTENSION
from test_da import TABLES, VERSION, Da, closed_port, da, views, workspace  # noqa: F401 (fixtures)

# The real DuckDB binary that pip's `duckdb` launcher runs.
REAL_DUCKDB = next(DUCKDB_CLI.parent.parent.glob("lib/python*/site-packages/duckdb_cli/duckdb"))



def hook_command(workspace: Path, event: str) -> str:
    settings = json.loads((workspace / ".claude" / "settings.json").read_text())
    (entry,) = [e for e in settings["hooks"][event] if "da sync" in e["hooks"][0]["command"]]
    return entry["hooks"][0]["command"]


class Hook:
    """How one hook command ran: exit status, output, how long it took to
    return (its output pipes closed), and its process group."""

    def __init__(self, returncode, stdout, stderr, elapsed, group):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.elapsed, self.group = elapsed, group


def run_hook(da: Da, event: str, env=None, timeout=60) -> Hook:
    """Runs the installed hook's command as Claude Code does."""
    merged = dict(da.env, PATH=f"{DA_BIN.parent}{os.pathsep}{da.env['PATH']}", **(env or {}))
    started = time.monotonic()
    proc = subprocess.Popen(
        ["sh", "-c", hook_command(da.workspace, event)],
        env=merged, cwd=da.workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    stdout, stderr = proc.communicate(timeout=timeout)
    elapsed = time.monotonic() - started
    print(f"{event} hook returned in {elapsed * 1000:.0f} ms")
    return Hook(proc.returncode, stdout, stderr, elapsed, proc.pid)


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def reports(workspace: Path) -> list:
    """The run reports, oldest first."""
    out = []
    for path in sorted((workspace / ".agnes" / "runs").glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass  # being replaced right now
    return out


def finished(workspace: Path, command: str):
    done = [r for r in reports(workspace) if r["command"] == command and r["outcome"] != "running"]
    return done[-1] if done else None


def duckdb_processes(workspace: Path) -> list:
    """Live processes (launcher or real binary) working on this workspace."""
    found = []
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            cmdline = Path(proc, "cmdline").read_bytes().decode("utf-8", "replace")
            state = Path(proc, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(workspace) in cmdline and "duckdb" in cmdline and state != "Z":
            found.append(int(proc[6:]))
    return found


def uploaded(server, name: str) -> Path:
    return server.uploads_dir / "analyst" / "sessions" / name


# -- SessionEnd -------------------------------------------------------------


def test_session_end_returns_at_once_and_the_upload_completes_afterwards(da, server, workspace):
    assert da("hooks", "install").returncode == 0
    sessions = workspace / "user" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "s1.jsonl").write_text('{"turn": 1}\n')
    # Uploads answer only after 1.5 s: the upload cannot be over when the
    # hook returns, so whatever arrives later was sent by a detached process.
    server.set_faults([{"endpoint": "upload", "kind": "stall", "ms": 1500}])

    hook = run_hook(da, "SessionEnd")
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
    assert hook.elapsed < 0.2
    assert not uploaded(server, "s1.jsonl").exists()
    # Claude Code ends the hook's process group: nothing of ours is left in it.
    with pytest.raises(ProcessLookupError):
        os.killpg(hook.group, signal.SIGKILL)

    stored = uploaded(server, "s1.jsonl")
    wait_for(lambda: stored.is_file() and stored.read_text() == '{"turn": 1}\n', what="the upload on the server")
    report = wait_for(lambda: finished(workspace, "da sync --upload-only"), what="the run report")
    assert report["outcome"] == "done" and report["detached"] is True
    assert report["did"] == ["uploads: 1 sessions, 0 CLAUDE.local.md, 0 unchanged, 0 failed"]
    assert report["seconds"] >= 1.5
    # A quiet run's empty output files are not left behind.
    wait_for(lambda: not list((workspace / ".agnes" / "runs").glob("*.out")), what="tidy output files")




# -- SessionStart -----------------------------------------------------------


def test_session_start_returns_at_its_bound_and_a_cold_sync_completes_in_the_background(da, server, workspace):
    assert da("hooks", "install").returncode == 0
    # Every download waits 4 s before answering: a cold sync takes longer
    # than the hook's bound of 1 s.
    server.set_faults([{"endpoint": "download", "kind": "stall", "ms": 4000}])
    hook = run_hook(da, "SessionStart", env={"AGNES_HOOK_WAIT": "1"})
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
    assert 1.0 <= hook.elapsed < 3.5
    parquet = workspace / "server" / "parquet"
    assert not (parquet / "orders.parquet").exists()

    report = wait_for(lambda: finished(workspace, "da sync --upload-first"), what="the sync's report")
    assert report["outcome"] == "done" and report["detached"] is True, report
    assert report["seconds"] >= 4.0
    assert report["did"][1] == "tables: 4 downloaded, 0 unchanged, 1 remote, 0 removed, 0 failed"
    assert sorted(p.name for p in parquet.iterdir()) == [f"{t}.parquet" for t in TABLES]
    assert views(da.database) == TABLES


def test_session_start_waits_for_a_small_sync_and_uploads_what_session_end_missed(da, server, workspace):
    assert da("sync", "--quiet").returncode == 0
    assert da("hooks", "install").returncode == 0
    # The last session ended without its SessionEnd (terminal closed).
    sessions = workspace / "user" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "missed.jsonl").write_text('{"turn": "last"}\n')
    (workspace / "server" / "parquet" / "customers.parquet").unlink()
    server.clear_requests()

    hook = run_hook(da, "SessionStart")
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
    # Within the default bound of 5 s, all is done before the session starts.
    assert hook.elapsed < 5.0
    assert uploaded(server, "missed.jsonl").read_text() == '{"turn": "last"}\n'
    assert (workspace / "server" / "parquet" / "customers.parquet").is_file()
    paths = [r["path"] for r in server.requests()]
    assert paths.index("/api/upload/sessions") < paths.index("/api/sync/manifest")
    report = finished(workspace, "da sync --upload-first")
    assert report["did"][0] == "uploads: 1 sessions, 0 CLAUDE.local.md, 0 unchanged, 0 failed"
    assert report["did"][1] == "tables: 1 downloaded, 3 unchanged, 1 remote, 0 removed, 0 failed"

    # Without a hook, the same command prints both parts.
    (sessions / "missed.jsonl").write_text('{"turn": "again"}\n')
    direct = da("sync", "--upload-first")
    assert direct.returncode == 0 and direct.stderr == ""
    assert direct.stdout == (
        "Uploaded 1 sessions\n"
        "Downloaded: 0 tables\nSkipped (unchanged): 4\nSkipped (remote-mode): 1\n"
    )
    # --detach with the work done in time: its output and status are ours.
    server.set_faults([{"endpoint": "download", "table": "orders", "kind": "status", "status": 404}])
    (workspace / "server" / "parquet" / "orders.parquet").unlink()
    detached = da("sync", "--detach", "--json")
    assert detached.returncode == 2
    assert json.loads(detached.stdout)["errors"] == [
        {"table": "orders", "error": "HTTP 404 Not Found: injected fault: HTTP 404"}
    ]


def test_a_detached_run_that_goes_on_says_so_and_two_never_overlap(da, server, workspace):
    server.set_faults([{"endpoint": "download", "kind": "stall", "ms": 3000}])
    result = da("sync", "--detach", "--wait", "0.2")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("Going on in the background (PID ")
    assert result.stdout.endswith("`da status` shows how it ended\n")
    doc = json.loads(da("sync", "--detach", "--wait", "0", "--json").stdout)
    assert (workspace / ".agnes" / "runs" / f"{doc['background']['run']}.json") == Path(doc["background"]["report"])
    wait_for(lambda: len([r for r in reports(workspace) if r["outcome"] != "running"]) == 2,
             what="both runs to end")
    assert {r["outcome"] for r in reports(workspace)} == {"done"}
    # The second waited for the first's workspace lock: it began after the
    # first had fetched its rules, and found every table already there.
    paths = [r["path"] for r in server.requests()]
    assert paths.count("/api/sync/manifest") == 2
    second_manifest = len(paths) - 1 - paths[::-1].index("/api/sync/manifest")
    assert paths.index("/api/memory/bundle") < second_manifest
    assert len([p for p in paths if p.endswith("/download")]) == 4


def test_a_hook_that_cannot_work_returns_and_its_report_says_why(da, workspace):
    assert da("hooks", "install").returncode == 0
    hook = run_hook(da, "SessionStart", env={"AGNES_TOKEN": ""})
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
    report = finished(workspace, "da sync --upload-first")
    assert report["outcome"] == "failed" and report["detached"] is True
    assert report["errors"][-1].startswith("no Agnes token")
    result = da("status", env={"AGNES_TOKEN": ""})
    assert result.returncode == 1
    assert "  da sync --upload-first (detached): failed in " in result.stdout
    assert "      error: no Agnes token" in result.stdout

    # A bound that is not a number stops the hook before anything detaches:
    # that too is in a report.
    hook = run_hook(da, "SessionStart", env={"AGNES_HOOK_WAIT": "soon"})
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
    report = reports(workspace)[-1]
    assert (report["outcome"], report["errors"]) == (
        "failed", ['AGNES_HOOK_WAIT: expected a number of seconds from 0 to 3600, got "soon"'])


# -- the old da's hook lines ------------------------------------------------

# What the old `da` wrote into .claude/settings.json (CONTRACT.md §6), with a
# hook of the user's own beside each, and the file's own spacing.
OLD_SETTINGS = """{
  "model": "opus",
  "hooks": {
    "SessionStart": [
      {"hooks": [{"type": "command", "command": "da sync --quiet 2>/dev/null || true"}]},
      {"hooks": [{"type": "command", "command": "echo mine"}]}
    ],
    "SessionEnd": [
      {"hooks": [{"type": "command", "command": "da sync --upload-only --quiet 2>/dev/null || true"}]}
    ]
  }
}
"""


def run_old_hook(da: Da, event: str, env=None, timeout=60) -> Hook:
    """Runs the old line of `event` as Claude Code does: by `sh -c`, in a
    process group of its own, the hook input as JSON on stdin."""
    merged = dict(da.env, PATH=f"{DA_BIN.parent}{os.pathsep}{da.env['PATH']}", **(env or {}))
    settings = json.loads((da.workspace / ".claude" / "settings.json").read_text())
    command = settings["hooks"][event][0]["hooks"][0]["command"]
    hook_input = {
        "session_id": "s-1", "transcript_path": "/nonexistent/s-1.jsonl", "cwd": str(da.workspace),
        "hook_event_name": event, **({"source": "startup"} if event == "SessionStart" else {"reason": "exit"}),
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        ["sh", "-c", command], env=merged, cwd=da.workspace, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    stdout, stderr = proc.communicate(json.dumps(hook_input), timeout=timeout)
    elapsed = time.monotonic() - started
    print(f"old {event} hook returned in {elapsed * 1000:.0f} ms")
    return Hook(proc.returncode, stdout, stderr, elapsed, proc.pid)


@pytest.fixture
def old_hooks(workspace):
    settings = workspace / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(OLD_SETTINGS)
    yield settings
    # The old hooks are run as they are: the file is never rewritten.
    assert settings.read_text() == OLD_SETTINGS


def test_an_old_session_start_line_returns_within_its_bound_from_a_server_that_never_answers(
    da_env, workspace, old_hooks
):
    # Accepts connections and never answers: the old line, run as written,
    # held the session start for 30 s and more.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    da = Da(dict(da_env, AGNES_SERVER=f"http://127.0.0.1:{silent.getsockname()[1]}", AGNES_TOKEN="demo-token"),
            workspace)
    detached = None
    try:
        hook = run_old_hook(da, "SessionStart")
        assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
        assert 4.5 <= hook.elapsed < 6.0
        # Nothing of ours is left in the hook's process group ...
        with pytest.raises(ProcessLookupError):
            os.killpg(hook.group, signal.SIGKILL)
        # ... and the work goes on in a da of its own, as the installed hook's.
        (running,) = [r for r in reports(workspace) if r["command"] == "da sync --upload-first"]
        assert (running["outcome"], running["detached"]) == ("running", True), running
        detached = running["pid"]
        os.kill(detached, 0)
        assert os.getsid(detached) != os.getsid(0)
    finally:
        if detached:
            os.kill(detached, signal.SIGTERM)
        silent.close()


def test_an_old_session_start_line_syncs_and_an_old_session_end_line_returns_at_once(da, server, workspace, old_hooks):
    hook = run_old_hook(da, "SessionStart")
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
    assert hook.elapsed < 5.5
    report = wait_for(lambda: finished(workspace, "da sync --upload-first"), what="the sync's report")
    assert report["outcome"] == "done" and report["detached"] is True, report
    assert views(da.database) == TABLES

    sessions = workspace / "user" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "s1.jsonl").write_text('{"turn": 1}\n')
    server.set_faults([{"endpoint": "upload", "kind": "stall", "ms": 1500}])
    hook = run_old_hook(da, "SessionEnd")
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", "")
    assert hook.elapsed < 0.5
    stored = uploaded(server, "s1.jsonl")
    wait_for(lambda: stored.is_file(), what="the upload on the server")
    report = wait_for(lambda: finished(workspace, "da sync --upload-only"), what="the upload's report")
    assert report["outcome"] == "done" and report["detached"] is True, report


def test_da_sync_quiet_by_hand_runs_in_the_foreground(da, workspace):
    # stdin from /dev/null (a script, cron) or a terminal: no hook input.
    started = time.monotonic()
    result = da("sync", "--quiet")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (report,) = reports(workspace)
    assert (report["command"], report["outcome"], report["detached"]) == ("da sync", "done", False)
    # Input that is not a hook's changes nothing either.
    result = da("sync", "--quiet", input='{"not": "a hook"}')
    assert result.returncode == 0
    assert [r["detached"] for r in reports(workspace)] == [False, False]
    print(f"by hand: {time.monotonic() - started:.2f} s")


# -- killing da -------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_killing_da_leaves_no_duckdb_running(da, server, workspace, sig):
    server.set_faults([{"endpoint": "download", "kind": "stall", "ms": 60000}])
    proc = subprocess.Popen([str(DA_BIN), "sync"], env=da.env, cwd=workspace,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The sync is under way: duckdb (launcher and real binary) holds the
    # workspace lock and waits for its downloads.
    wait_for(lambda: any("/download" in r["path"] for r in server.requests()), what="a download request")
    assert len(duckdb_processes(workspace)) == 2
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert proc.returncode == -sig
    wait_for(lambda: not duckdb_processes(workspace), timeout=5, what="duckdb to go")
    # Its report stays "running", and status tells that it is not.
    (killed,) = json.loads(da("status", "--json").stdout)["runs"]
    assert (killed["outcome"], killed["alive"]) == ("running", False)
    assert ": ended without a report (killed?)" in da("status").stdout

    # The next sync does not wait for a lock nobody holds any more.
    server.clear_faults()
    started = time.monotonic()
    again = da("sync")
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 15
    assert again.stdout.startswith("Downloaded: 4 tables\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_da_takes_its_duckdb_along_even_on_sigkill(da, server, workspace):
    """SIGKILL cannot be caught; on Linux the kernel tells the child. (Through
    a launcher script only the launcher is told, so this runs the real binary.)"""
    server.set_faults([{"endpoint": "download", "kind": "stall", "ms": 60000}])
    proc = subprocess.Popen([str(DA_BIN), "sync", "--duckdb", str(REAL_DUCKDB)], env=da.env, cwd=workspace,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: any("/download" in r["path"] for r in server.requests()), what="a download request")
    assert len(duckdb_processes(workspace)) == 1
    proc.kill()
    proc.communicate(timeout=30)
    wait_for(lambda: not duckdb_processes(workspace), timeout=5, what="duckdb to go")


@pytest.mark.parametrize("duckdb_cli", ["launcher", "binary"])
def test_a_crashed_duckdb_is_named_with_its_signal(da, server, workspace, duckdb_cli):
    server.set_faults([{"endpoint": "download", "kind": "stall", "ms": 60000}])
    executable = DUCKDB_CLI if duckdb_cli == "launcher" else REAL_DUCKDB
    proc = subprocess.Popen([str(DA_BIN), "sync", "--duckdb", str(executable)], env=da.env, cwd=workspace,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any("/download" in r["path"] for r in server.requests()), what="a download request")
    (real,) = [p for p in duckdb_processes(workspace) if os.readlink(f"/proc/{p}/exe") == str(REAL_DUCKDB)]
    os.kill(real, signal.SIGSEGV)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1 and stdout == ""
    assert stderr == f"da: duckdb at {executable} crashed with signal 11 (SIGSEGV)\n"
    report = finished(workspace, "da sync")
    assert report["outcome"] == "failed"
    assert report["errors"] == [f"duckdb at {executable} crashed with signal 11 (SIGSEGV)"]


# -- clear errors -----------------------------------------------------------


def test_a_database_from_a_newer_duckdb_still_gets_files_state_and_rules(da, workspace):
    assert duckdb.__version__.startswith("2."), duckdb.__version__
    da.database.parent.mkdir(parents=True)
    con = duckdb.connect(str(da.database))
    con.execute("CREATE TABLE notebook AS SELECT 42 AS answer")
    con.close()
    before = da.database.read_bytes()

    result = da("sync")
    assert result.returncode == 0 and result.stderr == ""
    says = (
        f"Views: {da.database} was written by a newer DuckDB than {DUCKDB_CLI} (v1.5.6) can open "
        "(its storage version is 69, this duckdb reads 64 to 68); the files, state and rules are synced, "
        "but no views were made in it: run da with a duckdb as new as the one that wrote it "
        "(--duckdb PATH or AGNES_DUCKDB=PATH), or run agnes_sync() in that DuckDB\n"
    )
    assert result.stdout == "Downloaded: 4 tables\nSkipped (unchanged): 0\nSkipped (remote-mode): 1\n" + says
    for table in TABLES:
        assert (workspace / "server" / "parquet" / f"{table}.parquet").is_file()
    assert (workspace / ".claude" / "rules" / "km_sql-style.md").is_file()
    assert da.database.read_bytes() == before

    quiet = da("sync", "--quiet")
    assert (quiet.returncode, quiet.stdout) == (0, "")
    assert quiet.stderr == "da sync: " + says[len("Views: "):]
    assert "newer DuckDB" in json.loads(da("sync", "--json").stdout)["views_pending"]
    assert "newer DuckDB" in finished(workspace, "da sync")["notes"][-1]

    # Done as it says: the newer DuckDB makes the views from what was synced.
    con = duckdb.connect(str(da.database), config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    con.execute("SELECT * FROM agnes_sync(offline := true, workspace := ?, server := ?)",
                [str(workspace), da.env["AGNES_SERVER"]]).fetchall()
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 5000
    assert con.execute("SELECT answer FROM notebook").fetchone()[0] == 42
    con.close()


def read_only_mount(workspace: Path, *command) -> list:
    """`command` with `workspace` mounted read-only in a private mount
    namespace (a read-only file system is what root cannot write either)."""
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && cd "$0" && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, str(workspace), *command]


def test_a_read_only_workspace_says_it_is_read_only(da, workspace):
    assert da("sync", "--quiet").returncode == 0
    probe = subprocess.run(read_only_mount(workspace, "true"), capture_output=True)
    if probe.returncode != 0 or shutil.which("unshare") is None:
        pytest.skip(f"cannot mount read-only here: {probe.stderr!r}")
    for args in (["sync"], ["sync", "--quiet"], ["sync", "--upload-only", "--detach", "--wait", "0"]):
        result = subprocess.run(read_only_mount(workspace, str(DA_BIN), *args), env=da.env,
                                capture_output=True, text=True, timeout=60)
        assert (result.returncode, result.stdout) == (1, ""), args
        assert result.stderr == (
            f"da: the workspace {workspace} is read-only (read-only file system): da keeps the tables, "
            "the database and its run reports there; make it writable, or pass --workspace DIR for one that is\n"
        ), args


# -- the record of every run, and da status ---------------------------------


def jwt(claims: dict) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_every_run_leaves_a_report(da, offline_env, workspace):
    assert da("sync").returncode == 0
    assert da("sync", "--upload-only").returncode == 0
    assert da("sync", "--dry-run").returncode == 0  # writes nothing, no report either
    down = Da(offline_env, workspace)("sync", "--quiet")
    assert down.returncode == 1
    runs = reports(workspace)
    assert [(r["command"], r["outcome"], r["detached"]) for r in runs] == [
        ("da sync", "done", False), ("da sync --upload-only", "done", False), ("da sync", "failed", False),
    ]
    assert runs[0]["did"] == [
        "tables: 4 downloaded, 0 unchanged, 1 remote, 0 removed, 0 failed", "rules: written (3 files)",
    ]
    assert "Connection refused" in runs[2]["errors"][0]
    for run in runs:
        assert run["started"] <= run["finished"] and run["seconds"] >= 0


@pytest.fixture
def offline_env(da_env):
    return dict(da_env, AGNES_SERVER=f"http://127.0.0.1:{closed_port()}", AGNES_TOKEN="demo-token")


def status(da: Da, *args, env=None):
    result = da("status", *args, env=env)
    doc = json.loads(da("status", "--json", *args, env=env).stdout)
    return result, doc


def line(result, label: str) -> str:
    (found,) = [l for l in result.stdout.splitlines() if l.startswith(f"{label:<10} ")]
    return found[11:]


def test_status_of_a_healthy_workspace(da, server, workspace, sample_dir):
    token = jwt({"sub": "u-1", "email": "ana@example.com", "exp": 4102444800})
    catalog = json.loads((sample_dir / "catalog.json").read_text())
    catalog["users"][token] = {"name": "ana", "tables": "*"}
    (sample_dir / "catalog.json").write_text(json.dumps(catalog))
    da.env["AGNES_TOKEN"] = token
    assert da("sync", "--quiet").returncode == 0
    assert da("hooks", "install").returncode == 0

    result, doc = status(da)
    assert result.returncode == 0 and result.stderr == ""
    assert line(result, "da") == f"{VERSION}  {DA_BIN}"
    assert line(result, "extension") == f"{VERSION}  {EXTENSION}"
    assert line(result, "duckdb") == f"v1.5.6 (Variegata) 069cc9f9b5  {DUCKDB_CLI}"
    assert line(result, "server") == f"{server.url}: answers; 5 tables for this token, 0 to download"
    assert line(result, "token") == "accepted (from AGNES_TOKEN); ana@example.com, expires 2100-01-01T00:00:00Z"
    assert line(result, "workspace").startswith(f"{workspace}: 4 tables here, database {da.database} (")
    assert line(result, "hooks") == f"installed in {workspace / '.claude' / 'settings.json'}"
    assert f"  da sync: done in " in result.stdout
    assert token not in result.stdout + json.dumps(doc)

    assert doc["ok"] is True
    assert (doc["server"]["state"], doc["server"]["tables"], doc["server"]["to_download"]) == ("answers", 5, 0)
    assert (doc["token"]["state"], doc["token"]["source"], doc["token"]["owner"]) == ("accepted", "AGNES_TOKEN", "ana@example.com")
    assert doc["extension"]["version"] == VERSION and doc["duckdb"]["version"].startswith("v1.5.6")
    assert doc["hooks"]["session_start"] == doc["hooks"]["session_end"] == "installed"
    assert [r["command"] for r in doc["runs"]] == ["da sync"] and doc["runs"][0]["outcome"] == "done"
    assert doc["workspace"]["tables"] == 4


def test_status_with_a_refused_token(da, workspace):
    secret = "s3cret-refused-token"
    result, doc = status(da, env={"AGNES_TOKEN": secret})
    assert result.returncode == 1
    assert line(result, "token").startswith("REFUSED (from AGNES_TOKEN): ")
    assert "refused the token (401)" in line(result, "token")
    assert line(result, "server").endswith(": answers")
    assert (doc["ok"], doc["token"]["state"], doc["server"]["state"]) == (False, "refused", "answers")
    assert secret not in result.stdout + result.stderr + json.dumps(doc)


def test_status_with_the_server_down_and_no_hooks(offline_env, workspace):
    da = Da(offline_env, workspace)
    started = time.monotonic()
    result, doc = status(da)
    assert time.monotonic() - started < 20
    assert result.returncode == 1 and result.stderr == ""
    assert "DOES NOT ANSWER" in line(result, "server") and "Connection refused" in line(result, "server")
    assert line(result, "token") == "not checked (from AGNES_TOKEN)"
    assert line(result, "hooks") == (
        f"NOT INSTALLED (no {workspace / '.claude' / 'settings.json'}): run `da hooks install`"
    )
    assert (doc["ok"], doc["server"]["state"], doc["token"]["state"]) == (False, "down", "unchecked")
    assert doc["hooks"]["session_start"] == "missing" and doc["runs"] == []


def test_status_tells_old_hooks_and_the_agnes_cli_hooks(da, workspace):
    settings = workspace / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"hooks": {
        "SessionStart": [{"hooks": [{"type": "command", "command": "da sync --quiet 2>/dev/null || true"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "agnes push --quiet"}]}],
    }}))
    result, doc = status(da)
    assert line(result, "hooks").startswith("SessionStart an earlier version, SessionEnd missing in ")
    assert "also the Agnes CLI's hooks (Stop: agnes push --quiet)" in result.stdout
    assert doc["hooks"]["session_start"] == "outdated"
    assert doc["hooks"]["agnes_cli"] == [{"event": "Stop", "command": "agnes push --quiet"}]


# -- hooks install and the Agnes CLI, config folders, completions -----------


def test_hooks_install_recognises_the_agnes_cli_hooks_and_replaces_them_on_request(da, workspace):
    settings = workspace / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"hooks": {
        "SessionStart": [{"hooks": [{"type": "command", "command": "agnes pull --quiet || true"}]}],
        "SessionEnd": [{"hooks": [{"type": "command", "command": "agnes push"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "echo pre"}]}],
    }}))
    result = da("hooks", "install")
    assert result.returncode == 0
    assert (
        "Also there: the Agnes CLI's hooks, which sync this same workspace, so both would sync it:\n"
        "  SessionStart: agnes pull --quiet || true\n  SessionEnd: agnes push\n"
        "Run `da hooks install --replace-agnes-hooks` to remove them.\n"
    ) in result.stdout
    kept = json.loads(settings.read_text())["hooks"]
    assert [e["hooks"][0]["command"] for e in kept["SessionStart"]] == [
        "agnes pull --quiet || true", "da sync --upload-first --detach --quiet 2>/dev/null || true"]

    replaced = da("hooks", "install", "--replace-agnes-hooks")
    assert replaced.returncode == 0
    assert "Removed the Agnes CLI's hooks:\n  SessionStart: agnes pull --quiet || true\n" in replaced.stdout
    hooks = json.loads(settings.read_text())["hooks"]
    assert [e["hooks"][0]["command"] for e in hooks["SessionStart"]] == [
        "da sync --upload-first --detach --quiet 2>/dev/null || true"]
    assert [e["hooks"][0]["command"] for e in hooks["SessionEnd"]] == [
        "da sync --upload-only --detach --wait 0 --quiet 2>/dev/null || true"]
    assert hooks["PreToolUse"][0]["hooks"][0]["command"] == "echo pre"


@pytest.mark.parametrize("where", ["home", "xdg"])
def test_config_in_the_agnes_cli_folder_is_read(da_env, server, workspace, tmp_path, where):
    base = Path(da_env["HOME"]) / ".config" if where == "home" else tmp_path / "xdg"
    folder = base / "agnes"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"server: {server.url}\n")
    (folder / "token.json").write_text(json.dumps({"access_token": "demo-token"}))
    env = {"AGNES_CONFIG_DIR": None, "XDG_CONFIG_HOME": str(tmp_path / "xdg") if where == "xdg" else None}
    da = Da(da_env, workspace)
    result = da("sync", "--quiet", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert views(da.database) == TABLES
    doc = json.loads(da("status", "--json", env=env).stdout)
    assert doc["config_dir"] == str(folder)
    assert doc["token"]["source"] == str(folder / "token.json")


def test_completions(da_env, workspace):
    da = Da(da_env, workspace)
    bash = da("completions", "bash")
    assert bash.returncode == 0
    script = workspace / "da.bash"
    script.write_text(bash.stdout)
    # Bash completes `da st` and `da sync --upl` with it.
    complete = (f"source {script} && COMP_WORDS=(da $0) && COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )) && "
                "COMP_LINE=\"da $0\" && COMP_POINT=${#COMP_LINE} && _da da \"${COMP_WORDS[-1]}\" && "
                "printf '%s\\n' \"${COMPREPLY[@]}\"")
    for typed, offered in [("st", ["status"]), ("sync --upl", ["--upload-only", "--upload-first"])]:
        check = subprocess.run(["bash", "-c", complete, typed], capture_output=True, text=True)
        assert check.returncode == 0, check
        assert sorted(check.stdout.split()) == sorted(offered), check
    assert da("completions", "zsh").stdout.startswith("#compdef da")
    assert "complete -c da " in da("completions", "fish").stdout
    assert da("completions", "tcsh").returncode == 1
