"""Interrupting agnes in a Jupyter kernel, cell after cell (issue 23).

ipykernel gives SIGINT to Python's handler around each cell and ignores it
between cells, so whatever handler agnes puts in front of Python's must be
put there again in every cell. This starts a real kernel (ipykernel and
jupyter_client from PyPI, `make configure`) on DuckDB 2.0.0, stalls a
download, a scan and an upload on the local server, and interrupts each
with `interrupt_kernel()`, the notebook's "Interrupt" button, in the first
agnes cell and in later ones. Each cell must end within 2 s, leave the
kernel answering and no `.agnes-*.part` file; then the next sync works.
Between agnes calls, Ctrl-C keeps its usual meaning (a `KeyboardInterrupt`),
and a process's SIGINT disposition is what it was before the call (none
stays none).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from jupyter_client.manager import KernelManager

from agnes_testkit import LocalServer, make_sample

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
TOKEN = "demo-token"
ORDERS_ROWS = 200_000
# What the notebook's user may wait for after pressing "Interrupt".
BOUND = 2.0


class Kernel:
    """A running ipykernel and a client that runs cells on it."""

    def __init__(self, env: dict, cwd: Path):
        # The connection file in the test's folder, not the user's runtime dir.
        self.manager = KernelManager(kernel_name="python3", connection_file=str(cwd / "kernel.json"))
        self.manager.start_kernel(env=env, cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def start(self, code: str) -> str:
        return self.client.execute(code)

    def reply(self, msg_id: str, timeout: float) -> tuple[dict, float]:
        """The cell's execute_reply and the time it came."""
        until = time.monotonic() + timeout
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply within {timeout} s")
            try:
                msg = self.client.get_shell_msg(timeout=left)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"], time.monotonic()

    def output(self, msg_id: str) -> str:
        """What the cell printed, once it has replied."""
        text = []
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                return "".join(text)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(text)

    def run(self, code: str, timeout: float = 60) -> str:
        """Runs a cell that must succeed; what it printed."""
        msg_id = self.start(code)
        content, _ = self.reply(msg_id, timeout)
        assert content["status"] == "ok", content
        return self.output(msg_id)

    def interrupted(self, code: str, stalled) -> tuple[dict, float]:
        """Runs a cell, waits until `stalled()` says the work is stuck, presses
        "Interrupt"; the cell's reply and how long after the interrupt it came."""
        msg_id = self.start(code)
        until = time.monotonic() + 30
        while not stalled():
            assert time.monotonic() < until, "the agnes call never got stuck"
            time.sleep(0.05)
        time.sleep(0.3)
        sent = time.monotonic()
        self.manager.interrupt_kernel()
        content, at = self.reply(msg_id, timeout=60)
        self.output(msg_id)
        return content, at - sent


class Setup:
    def __init__(self, tmp: Path, server: LocalServer, data: Path):
        self.tmp, self.server, self.data = tmp, server, data
        self.ws = tmp / "ws"
        self.parquet = self.ws / "server" / "parquet"
        sessions = self.ws / "user" / "sessions"
        sessions.mkdir(parents=True)
        (sessions / "s1.jsonl").write_text('{"turn": 1}\n')
        home = tmp / "home"
        home.mkdir()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AGNES_", "DA_", "JPY_")) and "proxy" not in k.lower()
        }
        self.env.update(
            HOME=str(home),
            # The kernel's own files (connection file, runtime) stay in the test's folder.
            JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
            IPYTHONDIR=str(tmp / "ipython"),
            AGNES_CONFIG_DIR=str(tmp / "config"),
            AGNES_LOCAL_DIR=str(self.ws),
            AGNES_SERVER=server.url,
            AGNES_TOKEN=TOKEN,
        )

    def temporaries(self) -> list[str]:
        return sorted(p.name for p in self.parquet.glob(".agnes-*"))

    def requested(self, path: str) -> bool:
        return any(r["path"] == path for r in self.server.requests())

    def download_stalled(self) -> bool:
        return self.requested("/api/data/orders/download") and any(
            p.stat().st_size > 0 for p in self.parquet.glob(".agnes-*.part")
        )


@pytest.fixture
def setup(tmp_path):
    data = make_sample(tmp_path / "data")
    # An `orders` large enough that a download stalled halfway has bytes on disk.
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT i AS id, md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS pad "
        f"FROM range({ORDERS_ROWS}) t(i)) TO '{data / 'orders.parquet'}' (FORMAT parquet)"
    )
    con.close()
    with LocalServer(data) as server:
        yield Setup(tmp_path, server, data)


SYNC = "print(con.execute(\"SELECT list(action ORDER BY table_id) FROM agnes_sync() WHERE kind = 'table'\").fetchone()[0])"
SCAN = "print(con.execute(\"SELECT count(*), sum(length(pad)) FROM agnes_scan('orders')\").fetchone())"
UPLOAD = "print(con.execute('SELECT list(action) FROM agnes_upload()').fetchone()[0])"


def stall(setup: Setup, kind: str):
    """Makes the server stall `kind`; returns the cell and when it is stuck."""
    setup.server.clear_requests()
    if kind == "sync":
        setup.server.set_faults([{"table": "orders", "kind": "stall", "ms": 60000, "at": "middle"}])
        return SYNC, setup.download_stalled
    if kind == "scan":
        setup.server.set_faults(
            [{"endpoint": "scan", "kind": "stall", "ms": 60000, "at": "middle", "times": 1}]
        )
        return SCAN, lambda: setup.requested("/api/v2/scan")
    setup.server.set_faults([{"endpoint": "upload", "kind": "stall", "ms": 60000}])
    return UPLOAD, lambda: setup.requested("/api/upload/sessions")


# The first and the third agnes cell of a kernel interrupt each kind of
# call: a handler installed once per process would be gone by the second.
@pytest.mark.parametrize(
    "kinds",
    [["sync", "scan", "sync", "upload", "scan"], ["scan", "sync", "scan", "upload", "sync"]],
    ids=["sync-first", "scan-first"],
)
def test_interrupt_kernel_stops_agnes_in_every_cell(setup, kinds):
    kernel = Kernel(setup.env, setup.tmp)
    try:
        kernel.run(
            "import duckdb, time\n"
            "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
            f"con.execute(\"LOAD '{EXTENSION}'\")\n"
        )
        latencies = []
        for cell, kind in enumerate(kinds, start=1):
            code, stalled = stall(setup, kind)
            content, after = kernel.interrupted(code, stalled)
            latencies.append(f"{kind} {after:.2f} s")
            print(f"agnes cell {cell}: {kind} ended {after:.2f} s after the interrupt")
            assert content["status"] == "error", (cell, kind, content)
            assert after < BOUND, (cell, kind, after)
            assert setup.temporaries() == [], (cell, kind)
            # The kernel answers, and Ctrl-C between agnes calls is Python's.
            setup.server.clear_faults()
            assert kernel.run("print(6 * 7)", timeout=10) == "42\n"
            content, after = kernel.interrupted("time.sleep(30)", lambda: True)
            assert (content["status"], content["ename"]) == ("error", "KeyboardInterrupt"), content
            assert after < BOUND, ("time.sleep", after)
        print("latencies:", ", ".join(latencies))

        # The next sync works: every table is there, orders whole.
        out = kernel.run(SYNC + "\nprint(con.execute('SELECT count(*) FROM orders').fetchone()[0])")
        actions, orders = out.splitlines()
        assert "failed" not in actions and "downloaded" in actions, actions
        assert int(orders) == ORDERS_ROWS
        assert setup.temporaries() == []
        assert kernel.run(SCAN) == f"({ORDERS_ROWS}, {ORDERS_ROWS * 64})\n"
    finally:
        kernel.close()


# Reads SIGINT's disposition as the kernel holds it (Linux x86-64 and arm64:
# the handler is the first field of struct sigaction), runs an agnes call,
# reads it again.
DISPOSITION_SCRIPT = r"""
import ctypes, duckdb, json, signal, sys
libc = ctypes.CDLL(None, use_errno=True)

def handler():
    action = ctypes.create_string_buffer(256)
    assert libc.sigaction(signal.SIGINT, None, action) == 0
    return ctypes.c_void_p.from_buffer(action).value or 0

if sys.argv[2] == "default":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{sys.argv[1]}'")
before = handler()
actions = con.execute("SELECT list(action) FROM agnes_sync() WHERE kind = 'table'").fetchone()[0]
print(json.dumps({"before": before, "after": handler(), "actions": actions}))
"""


@pytest.mark.parametrize("host_handler", ["python", "default"])
def test_agnes_leaves_the_host_s_sigint_disposition_as_it_found_it(setup, host_handler):
    out = subprocess.run(
        [sys.executable, "-c", DISPOSITION_SCRIPT, str(EXTENSION), host_handler],
        env=setup.env, cwd=setup.tmp, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert "downloaded" in seen["actions"], seen
    # Python's own handler before and after; none (SIG_DFL, 0) stays none.
    assert seen["after"] == seen["before"], seen
    assert (seen["before"] == 0) == (host_handler == "default"), seen
