"""Start, steer and stop ``agnes-server`` (crates/server) for tests and demos.

The server prints one line, ``listening on http://127.0.0.1:PORT``, once it
is bound; ``LocalServer`` reads the port from it (port 0, so parallel test
runs never collide), then waits until ``/api/health`` answers. Faults and the
request log are driven through the server's loopback-only admin API.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Never route loopback traffic through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    """The server did not start, or an admin call failed."""


def default_binary() -> Path:
    """``$AGNES_SERVER_BIN``, else the debug build in this repository."""
    env = os.environ.get("AGNES_SERVER_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "agnes-server"


class LocalServer:
    """A running ``agnes-server`` over ``data_dir``; a context manager.

    ``faults`` is a list of fault objects active from the start (see
    crates/server/README.md); ``uploads`` defaults to ``data_dir/_uploads``;
    ``request_log``, the file the server appends each request to as a JSON
    line (``--request-log``), defaults to ``data_dir/_requests.jsonl``.
    ``addr`` is the address to listen on (any of 127.0.0.0/8 makes a second
    "host" on this machine, e.g. ``127.0.0.2`` as a redirect target).
    ``mode`` is the Agnes server to behave as: ``"0.84"`` (today's, the
    default: partitioned and server-only tables, signed URLs on an object
    store, subscriptions, the upload name rule, gzip uploads) or
    ``"may2026"`` (CONTRACT.md sections 1-6 only). ``$AGNES_TEST_SERVER_MODE``
    sets the default.
    """

    def __init__(
        self,
        data_dir,
        binary=None,
        faults=None,
        uploads=None,
        request_log=None,
        *,
        addr: str = "127.0.0.1",
        mode: str | None = None,
        startup_timeout: float = 10.0,
    ):
        self.data_dir = Path(data_dir)
        self.binary = Path(binary) if binary else default_binary()
        self.uploads_dir = Path(uploads) if uploads else self.data_dir / "_uploads"
        self.request_log = Path(request_log) if request_log else self.data_dir / "_requests.jsonl"
        self.startup_timeout = startup_timeout
        self.addr = addr
        self.mode = mode or os.environ.get("AGNES_TEST_SERVER_MODE") or "0.84"
        self._faults = faults
        self._faults_file = None
        self._stderr = None
        self._stderr_text = ""
        self.proc = None
        self.url = None
        self.port = None

    # -- life cycle -------------------------------------------------------

    def __enter__(self) -> "LocalServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "LocalServer":
        """Starts the process and returns once ``/api/health`` answers."""
        if not self.binary.is_file():
            raise ServerError(
                f"agnes-server binary not found at {self.binary}: build it with "
                "`cargo build -p agnes-server` or set AGNES_SERVER_BIN"
            )
        cmd = [str(self.binary), "--data", str(self.data_dir), "--addr", self.addr, "--port", "0"]
        cmd += ["--uploads", str(self.uploads_dir), "--request-log", str(self.request_log)]
        cmd += ["--mode", self.mode]
        if self._faults is not None:
            fd, name = tempfile.mkstemp(prefix="agnes-faults-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(self._faults, f)
            self._faults_file = name
            cmd += ["--faults", name]
        # stderr goes to a file: a pipe nobody reads could fill and block it.
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        line = self._first_line()
        match = re.fullmatch(r"listening on (http://\S+:(\d+))", line.strip())
        if not match:
            self.stop()
            raise ServerError(f"agnes-server said {line!r} instead of 'listening on ...'")
        self.url, self.port = match.group(1), int(match.group(2))
        self._wait_healthy()
        return self

    def _first_line(self) -> str:
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(
            target=lambda: lines.put(self.proc.stdout.readline().decode("utf-8", "replace")),
            daemon=True,
        )
        reader.start()
        try:
            line = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            line = None
        if not line:
            self.stop()
            raise ServerError(
                f"agnes-server did not report its port within {self.startup_timeout} s "
                f"(exit status {self.proc.returncode}); its stderr:\n{self.stderr()}"
            )
        return line

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with _OPENER.open(self.url + "/api/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as err:
                last = err
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"agnes-server at {self.url} never answered /api/health: {last}")

    def stop(self, timeout: float = 5.0) -> None:
        """Terminates the server (killed if it does not exit in ``timeout``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if self._faults_file:
            os.unlink(self._faults_file)
            self._faults_file = None
        if self._stderr is not None:
            self._stderr_text = self._read_stderr()
            self._stderr.close()
            self._stderr = None

    def stderr(self) -> str:
        """What the server wrote to stderr so far (kept after ``stop``)."""
        return self._stderr_text if self._stderr is None else self._read_stderr()

    def _read_stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def env(self, token: str | None = "demo-token") -> dict:
        """Environment variables that point a client at this server."""
        env = {"AGNES_SERVER": self.url}
        if token is not None:
            env["AGNES_TOKEN"] = token
        return env

    # -- admin API --------------------------------------------------------

    def _admin(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(req, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise ServerError(f"{method} {path}: HTTP {err.code}: {err.read()!r}") from None

    def set_faults(self, faults: list) -> None:
        """Replaces the admin-set faults (start-up and catalog ones stay)."""
        self._admin("POST", "/admin/faults", faults)

    def clear_faults(self) -> None:
        self._admin("DELETE", "/admin/faults")

    def faults(self) -> list:
        """The faults that can still fire, with ``source`` and ``remaining``."""
        return self._admin("GET", "/admin/faults")

    def requests(self) -> list:
        """Logged requests in arrival order: peer, method, path, query,
        authorization, if_none_match, range, status, bytes_sent. Requests to
        the object store are logged too (path ``/objects/...``)."""
        return self._admin("GET", "/admin/requests")

    def clear_requests(self) -> None:
        self._admin("DELETE", "/admin/requests")

    def store_url(self) -> str | None:
        """The object store's URL (signed URLs point there); None in may2026 mode."""
        return self._admin("GET", "/admin/store")["url"]


def main(argv=None) -> int:
    """``python -m agnes_testkit.server DIR [--sample]``: serve DIR until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("data_dir")
    parser.add_argument("--sample", action="store_true", help="write the sample data first")
    args = parser.parse_args(argv)
    if args.sample:
        from .sample import make_sample

        make_sample(args.data_dir)
    # SIGTERM unwinds like Ctrl-C, so the server is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with LocalServer(args.data_dir) as server:
        print(f"AGNES_SERVER={server.url}", flush=True)
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
