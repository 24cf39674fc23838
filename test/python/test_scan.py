"""agnes_scan() stops when the user interrupts it (issue 15), in every
Python host of `make configure`: a scan whose server stalls before its
answer, or halfway through the Arrow stream, ends within 2 s of SIGINT,
and the session goes on (the next scan works).

The SQL side of agnes_scan (types, rows, errors, views) is in
test/sql/scan_*.test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from agnes_testkit import LocalServer, make_sample

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
CONFIGURE = REPO / "configure"
HOSTS = {
    "2.0.0": CONFIGURE / "venv" / "bin" / "python",
    "1.5.6": CONFIGURE / "venv-1.5.6" / "bin" / "python",
    "1.4.4": CONFIGURE / "venv-1.4.4" / "bin" / "python",
}

# Loads agnes, binds the scan (the schema read), says "ready", waits for
# "go" on stdin, runs it and prints how it ended; then runs a small scan to
# show the session still works.
HOST_SCRIPT = r"""
import duckdb, json, sys, time
extension = sys.argv[1]
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute("SET enable_progress_bar = false")
con.execute(f"LOAD '{extension}'")
con.execute("PREPARE big AS SELECT count(*), sum(id) FROM agnes_scan('big')")
print("ready", flush=True)
sys.stdin.readline()
try:
    try:
        outcome = "finished: " + str(con.execute("EXECUTE big").fetchall())
    except Exception as e:
        outcome = f"error: {type(e).__name__}: {e}"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
print(json.dumps({"outcome": outcome, "at": time.monotonic()}), flush=True)
try:
    after = con.execute("SELECT count(*) FROM agnes_scan('orders', \"limit\" := 7)").fetchone()[0]
except Exception as e:
    after = f"error: {e}"
print(json.dumps({"after": after}), flush=True)
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    data = make_sample(tmp_path_factory.mktemp("scan") / "data")
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT i AS id, md5(i::VARCHAR) AS pad FROM range(400000) t(i)) "
        f"TO '{data / 'big.parquet'}' (FORMAT parquet)"
    )
    con.close()
    return data


def env_for(server: LocalServer, tmp: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGNES_", "DA_")) and "proxy" not in k.lower()
    }
    (tmp / "home").mkdir(exist_ok=True)
    (tmp / "ws").mkdir(exist_ok=True)
    env.update(
        HOME=str(tmp / "home"),
        AGNES_CONFIG_DIR=str(tmp / "config"),
        AGNES_LOCAL_DIR=str(tmp / "ws"),
        AGNES_SERVER=server.url,
        AGNES_TOKEN="demo-token",
    )
    return env


@pytest.mark.parametrize(
    "version,at", [(v, "middle") for v in HOSTS] + [("2.0.0", "before")]
)
def test_sigint_stops_a_stalled_scan(data, tmp_path, version, at):
    with LocalServer(data) as server:
        proc = subprocess.Popen(
            [str(HOSTS[version]), "-c", HOST_SCRIPT, str(EXTENSION)],
            env=env_for(server, tmp_path),
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            # Binding read the schema only; now the scan itself stalls.
            server.clear_requests()
            server.set_faults([{"endpoint": "scan", "kind": "stall", "ms": 60000, "at": at, "times": 1}])
            proc.stdin.write("go\n")
            proc.stdin.flush()
            until = time.monotonic() + 30
            while not any(r["path"] == "/api/v2/scan" for r in server.requests()):
                assert time.monotonic() < until, (server.requests(), proc.poll())
                time.sleep(0.05)
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            ended = json.loads(proc.stdout.readline())
            after = json.loads(proc.stdout.readline())["after"]
            proc.wait(timeout=10)
        finally:
            proc.kill()
        assert not ended["outcome"].startswith("finished"), ended
        assert ended["at"] - sent < 2.0, (ended, sent)
        assert after == 7, after
        scans = [r for r in server.requests() if r["path"] == "/api/v2/scan"]
        # The stalled scan was cut short by the client, not completed.
        assert scans[0]["bytes_sent"] < 400000 * 8, scans[0]
