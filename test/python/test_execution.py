"""When agnes works, and how it stops (issue 11): in the hosts users have.

- Binding does no work and an execution works once: a Python relation shown
  once syncs once (the SQL side is test/sql/bind_does_nothing.test).
- An interrupt stops a sync stalled mid-download within 2 s, in Python
  (SIGINT, on every DuckDB host of `make configure`) and in the interactive
  duckdb CLI (Ctrl-C on a pty): no temporary file left, the old view intact.
- A trickling manifest and a trickling download end within their bounds.
- An idle process with agnes loaded costs (almost) no CPU.
- A DuckDB older than agnes supports (1.3) refuses it at LOAD with a clear
  message, and the session goes on.

Each host runs as a child process against agnes-server on loopback.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agnes_testkit import LocalServer, make_sample

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
CONFIGURE = REPO / "configure"
# Every Python host `make configure` installs, newest first.
HOSTS = {
    "2.0.0": CONFIGURE / "venv" / "bin" / "python",
    "1.5.6": CONFIGURE / "venv-1.5.6" / "bin" / "python",
    "1.4.4": CONFIGURE / "venv-1.4.4" / "bin" / "python",
}
# The CLI's own binary, not its Python launcher (a signal must reach the host).
CLI = next(
    iter(sorted((CONFIGURE / "venv" / "lib").glob("python*/site-packages/duckdb_cli/duckdb"))),
    CONFIGURE / "venv" / "bin" / "duckdb",
)
# Older than agnes supports (src/entry.rs, MIN_DUCKDB).
REFUSED_HOST = CONFIGURE / "venv-1.3.2" / "bin" / "python"
TOKEN = "demo-token"
ORDERS_ROWS = 5000

# Opens the database, loads agnes, says "ready", runs the SQL given and
# prints one JSON line: how it ended and how long after a SIGINT (if any),
# then the rows of `orders` as the session sees them.
HOST_SCRIPT = r"""
import duckdb, json, signal, sys, time
db, extension, sql = sys.argv[1:4]
con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
con.execute("SET enable_progress_bar = false")
con.execute(f"LOAD '{extension}'")
print("ready", flush=True)
outcome = "finished"
try:
    try:
        rows = con.execute(sql).fetchall()
        outcome = "finished: " + json.dumps([list(map(str, r)) for r in rows])
    except Exception as e:
        outcome = f"error: {e}"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
print(json.dumps({"outcome": outcome, "at": time.monotonic()}), flush=True)
try:
    print(json.dumps({"orders": con.execute("SELECT count(*) FROM orders").fetchone()[0]}), flush=True)
except Exception as e:
    print(json.dumps({"orders": str(e)}), flush=True)
"""


class Workspace:
    """A workspace synced once from a local server, ready to be broken."""

    def __init__(self, tmp: Path, server: LocalServer, data: Path):
        self.tmp, self.server, self.data = tmp, server, data
        self.ws = tmp / "ws"
        self.db = self.ws / "user" / "duckdb" / "analytics.duckdb"
        self.db.parent.mkdir(parents=True)
        self.parquet = self.ws / "server" / "parquet"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AGNES_", "DA_")) and "proxy" not in k.lower()
        }
        (tmp / "home").mkdir()
        self.env.update(
            HOME=str(tmp / "home"),
            AGNES_CONFIG_DIR=str(tmp / "config"),
            AGNES_LOCAL_DIR=str(self.ws),
            AGNES_SERVER=server.url,
            AGNES_TOKEN=TOKEN,
        )

    def host(self, python: Path, sql: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [str(python), "-c", HOST_SCRIPT, str(self.db), str(EXTENSION), sql],
            env=self.env,
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        return proc

    def run(self, python: Path, sql: str) -> tuple[dict, dict]:
        proc = self.host(python, sql)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert len(lines) == 2, (out, err)
        return lines[0], lines[1]

    def first_sync(self, python: Path) -> None:
        first, _ = self.run(python, "SELECT action FROM agnes_sync() WHERE table_id = 'orders'")
        assert first["outcome"] == 'finished: [["downloaded"]]', first
        self.server.clear_requests()

    def temporaries(self) -> list[str]:
        return sorted(p.name for p in self.parquet.glob(".agnes-*"))

    def state(self) -> dict:
        files = list((self.ws / ".agnes").glob("sync-state-*.json"))
        assert len(files) == 1, files
        return json.loads(files[0].read_text())

    def offer_new_orders(self) -> None:
        """The server offers a new, larger `orders` (a new MD5)."""
        import duckdb

        tmp = self.data / ".orders.new"
        con = duckdb.connect()
        con.execute(
            "COPY (SELECT i AS id, md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS pad "
            f"FROM range(200000) t(i)) TO '{tmp}' (FORMAT parquet)"
        )
        con.close()
        os.replace(tmp, self.data / "orders.parquet")

    def wait_for_partial_download(self, table: str, timeout: float = 30) -> None:
        """Until `table`'s download is under way with bytes on disk."""
        until = time.monotonic() + timeout
        path = f"/api/data/{table}/download"
        while time.monotonic() < until:
            started = any(r["path"] == path for r in self.server.requests())
            if started and any(p.stat().st_size > 0 for p in self.parquet.glob(".agnes-*.part")):
                return
            time.sleep(0.05)
        raise AssertionError(f"the download of {table} never started")


@pytest.fixture
def workspace(tmp_path):
    data = make_sample(tmp_path / "data")
    with LocalServer(data) as server:
        yield Workspace(tmp_path, server, data)


def test_a_relation_shown_once_syncs_once(workspace):
    workspace.first_sync(HOSTS["2.0.0"])
    script = (
        "import duckdb, sys\n"
        "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
        f"con.execute(\"LOAD '{EXTENSION}'\")\n"
        "rel = con.sql(\"SELECT table_id, action FROM agnes_sync(new_workspace := true, workspace := "
        f"'{workspace.tmp / 'ws2'}') WHERE kind = 'table' ORDER BY table_id\")\n"
        "rel.show()\n"
    )
    (workspace.tmp / "ws2").mkdir()
    out = subprocess.run(
        [str(HOSTS["2.0.0"]), "-c", script], env=workspace.env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    manifests = [r for r in workspace.server.requests() if r["path"] == "/api/sync/manifest"]
    assert len(manifests) == 1, manifests
    assert "downloaded" in out.stdout and "unchanged" not in out.stdout, out.stdout


def test_a_forked_notebook_syncs_with_a_client_of_its_own(workspace):
    """agnes keeps one HTTP client per process (http.rs, shared_client). A
    child forked after a sync (Python's multiprocessing) must not use the
    parent's, whose thread it does not have, nor hang dropping it."""
    workspace.first_sync(HOSTS["2.0.0"])
    (workspace.tmp / "child").mkdir()
    script = (
        "import duckdb, os, sys\n"
        "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
        f"con.execute(\"LOAD '{EXTENSION}'\")\n"
        "sync = \"SELECT list(action ORDER BY table_id) FROM agnes_sync(workspace := '{}'{}) WHERE kind = 'table'\"\n"
        f"ws = '{workspace.tmp / 'ws2'}'\n"
        "print('parent', con.execute(sync.format(ws, ', new_workspace := true')).fetchone()[0], flush=True)\n"
        "print('again', con.execute(sync.format(ws, '')).fetchone()[0], flush=True)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    child = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
        f"    child.execute(\"LOAD '{EXTENSION}'\")\n"
        f"    rows = child.execute(sync.format('{workspace.tmp / 'child'}', ', new_workspace := true')).fetchone()[0]\n"
        "    print('child', rows, flush=True)\n"
        "    os._exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print('child exit', os.waitstatus_to_exitcode(status), flush=True)\n"
    )
    (workspace.tmp / "ws2").mkdir()
    out = subprocess.run(
        [str(HOSTS["2.0.0"]), "-c", script], env=workspace.env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("parent [") and "downloaded" in lines[0], out.stdout
    assert lines[1].startswith("again [") and "downloaded" not in lines[1], out.stdout
    assert lines[2].startswith("child [") and "downloaded" in lines[2], out.stdout
    assert lines[3] == "child exit 0", out.stdout


@pytest.mark.parametrize("version", list(HOSTS))
def test_sigint_stops_a_stalled_download_in_python(workspace, version):
    workspace.first_sync(HOSTS[version])
    old_hash = workspace.state()["tables"]["orders"]["hash"]
    workspace.offer_new_orders()
    workspace.server.set_faults([{"table": "orders", "kind": "stall", "ms": 60000, "at": "middle"}])
    proc = workspace.host(HOSTS[version], "SELECT * FROM agnes_sync()")
    try:
        workspace.wait_for_partial_download("orders")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        ended = json.loads(proc.stdout.readline())
        orders = json.loads(proc.stdout.readline())["orders"]
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert not ended["outcome"].startswith("finished"), ended
    assert ended["at"] - sent < 2.0, (ended, sent)
    assert workspace.temporaries() == []
    # The old view answers with the old file; the state still names it.
    assert orders == ORDERS_ROWS
    assert workspace.state()["tables"]["orders"]["hash"] == old_hash


def test_ctrl_c_stops_a_stalled_download_in_the_cli(workspace):
    # The CLI is 1.5.6: its database file must not be written by 2.0.
    workspace.first_sync(HOSTS["1.5.6"])
    workspace.offer_new_orders()
    workspace.server.set_faults([{"table": "orders", "kind": "stall", "ms": 60000, "at": "middle"}])
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(workspace.tmp)
        # A plain terminal: no colour or cursor queries for the test to answer.
        env = dict(workspace.env, TERM="dumb")
        os.execve(str(CLI), [str(CLI), "-unsigned", "-dark-mode", str(workspace.db)], env)
    screen = b""

    def read_until(marker: bytes, timeout: float, start: int = 0) -> float:
        nonlocal screen
        until = time.monotonic() + timeout
        while marker not in screen[start:]:
            left = until - time.monotonic()
            assert left > 0, screen.decode(errors="replace")
            if select.select([fd], [], [], left)[0]:
                screen += os.read(fd, 65536)
        return time.monotonic()

    try:
        os.write(fd, f"LOAD '{EXTENSION}';\r".encode())
        os.write(fd, b"SELECT table_id, action FROM agnes_sync();\r")
        workspace.wait_for_partial_download("orders")
        # Everything printed so far (the echo, earlier prompts) is read first.
        while select.select([fd], [], [], 0.2)[0]:
            screen += os.read(fd, 65536)
        assert b"orders" not in screen.split(b"agnes_sync();")[-1], screen
        sent, seen = time.monotonic(), len(screen)
        os.write(fd, b"\x03")
        # The query ends and the prompt comes back.
        answered = read_until(b"D ", 10, start=seen)
        assert answered - sent < 2.0, screen.decode(errors="replace")
        os.write(fd, b"SELECT 'rows=' || count(*) FROM orders;\r")
        read_until(f"rows={ORDERS_ROWS}".encode(), 10)
        os.write(fd, b".quit\r")
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status), status
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(fd)
    assert workspace.temporaries() == []


def test_a_trickling_manifest_ends_at_its_deadline(workspace):
    workspace.first_sync(HOSTS["2.0.0"])
    workspace.server.set_faults(
        [{"endpoint": "manifest", "kind": "trickle", "bytes": 1, "every_ms": 100}]
    )
    started = time.monotonic()
    ended, _ = workspace.run(HOSTS["2.0.0"], "SELECT * FROM agnes_sync(total_timeout := 2)")
    elapsed = time.monotonic() - started
    assert ended["outcome"].startswith("error: "), ended
    assert "not done within" in ended["outcome"], ended
    # The 2 s deadline, the host's start and a margin for a loaded machine.
    assert elapsed < 15, elapsed


def test_a_trickling_download_is_given_up_and_tried_again(workspace):
    workspace.first_sync(HOSTS["2.0.0"])
    workspace.offer_new_orders()
    workspace.server.set_faults(
        [{"table": "orders", "kind": "trickle", "bytes": 512, "every_ms": 100, "times": 1}]
    )
    ended, orders = workspace.run(
        HOSTS["2.0.0"],
        "SELECT action, error FROM agnes_sync(min_rate := 100000, min_rate_window := 1) "
        "WHERE table_id = 'orders'",
    )
    assert ended["outcome"] == 'finished: [["downloaded", "None"]]', ended
    assert orders["orders"] == 200000
    downloads = [r for r in workspace.server.requests() if r["path"] == "/api/data/orders/download"]
    assert len(downloads) == 2, downloads
    assert workspace.temporaries() == []


def test_idle_agnes_costs_no_cpu(tmp_path):
    script = (
        "import duckdb, resource, time\n"
        "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
        f"con.execute(\"LOAD '{EXTENSION}'\")\n"
        "cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])\n"
        "before = cpu()\n"
        "time.sleep(10)\n"
        "print(cpu() - before)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "DA_"))}
    env.update(HOME=str(tmp_path), AGNES_CONFIG_DIR=str(tmp_path / "config"))
    out = subprocess.run(
        [str(HOSTS["2.0.0"]), "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    cpu = float(out.stdout)
    print(f"\nidle with agnes loaded: {cpu:.3f} s of CPU in 10 s")
    assert cpu < 0.1, cpu


def test_an_older_duckdb_refuses_agnes_cleanly(tmp_path):
    script = (
        "import duckdb\n"
        "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
        "try:\n"
        f"    con.execute(\"LOAD '{EXTENSION}'\")\n"
        "    print('loaded')\n"
        "except duckdb.Error as e:\n"
        "    print('refused:', e)\n"
        "print(con.execute('SELECT 41 + 1').fetchone()[0])\n"
    )
    out = subprocess.run(
        [str(REFUSED_HOST), "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    refused, after = out.stdout.strip().splitlines()
    assert "agnes needs DuckDB 1.4.0 or newer; this is DuckDB v1.3.2" in refused, refused
    assert after == "42"
