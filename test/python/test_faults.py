"""The fault suite (issue 7): faults, bad input and attacks, over real sockets
and real processes. Nothing lost, nothing crashed, nothing leaked.

Every case runs ``agnes_sync`` in a real DuckDB host, the duckdb CLI 1.5.6 as
a child process (``duckdb -unsigned -json DB -c "LOAD ...; SELECT * FROM
agnes_sync(...)"``), against ``agnes-server`` on loopback, steered through
its fault injection (crates/server/README.md). Each case first syncs a good
copy of the sample data, then breaks something, syncs again and checks, on top
of its own expectations, the invariants of the issue:

1. the previous good parquet files and their views still answer queries with
   the old rows (or the new rows, where the case is meant to succeed);
2. the state file parses and matches the files: every ``*.parquet`` has a
   state entry and the other way round, sizes agree, and an MD5 hash in the
   state is the MD5 of the file; no temporary ``.agnes-*.part`` is left;
3. the error names the table (its row) or the endpoint, and the cause;
4. the host process returned normally: exit status 0 or 1, no crash, no
   abort, no panic message;
5. the token (a distinctive string, given only through ``token.json``)
   appears in no output, no error, and no file of the workspace, the config
   folder or the home folder other than ``token.json``.

Each case records what it observed; ``test_reliability_doc`` (last in this
file) renders the table of ``docs/RELIABILITY.md`` from those records and
fails when the file differs. ``AGNES_UPDATE_DOCS=1`` rewrites it.

Two cases need root (a tmpfs and a read-only bind mount); they are skipped
without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from agnes_testkit import LocalServer, write_catalog

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
# The CLI's own binary: `configure/venv/bin/duckdb` is a Python wrapper that
# runs it as a child, so a signal sent to the wrapper would miss the host.
CLI = next(
    iter(sorted((REPO / "configure" / "venv" / "lib").glob("python*/site-packages/duckdb_cli/duckdb"))),
    REPO / "configure" / "venv" / "bin" / "duckdb",
)
DOC = REPO / "docs" / "RELIABILITY.md"
DA = REPO / "target" / "debug" / "da"

# Distinctive, so that a leak anywhere is found by a plain substring search.
TOKEN = "agnes-faults-SECRET-7f3a9c1e52d84b60"
# A token the server does not know (the 401 case): it must not leak either.
STALE_TOKEN = "agnes-faults-STALE-0b1d2e3f4a5b6c7d"
SECRETS = (TOKEN, STALE_TOKEN)

# The sample's local tables and their rows (agnes_testkit.sample).
BASE = {"customers": 500, "in.c-crm.people": 300, "orders": 5000, "products": 120}
# Rows of the new version of a table that a case makes the server offer.
NEW_ROWS = 4321

ROOT = os.geteuid() == 0


# -- the cases and what they observed: docs/RELIABILITY.md -----------------

CASES: dict[str, tuple[str, str]] = {}
OBSERVED: dict[str, str] = {}


def case(title: str, how: str):
    """Registers a test as a case of the reliability table, in file order."""

    def register(fn):
        CASES[fn.__name__] = (title, how)
        return fn

    return register


@pytest.fixture
def record(request):
    """``record(text)``: what this case observed; call it last, once every
    assertion has passed."""

    def save(text: str) -> None:
        OBSERVED[request.node.originalname] = " ".join(text.split())

    return save


# -- helpers ---------------------------------------------------------------


def lit(text) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def sql_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return lit(value)


def code(text: str) -> str:
    """``text`` as a Markdown code span, even when it holds backticks."""
    text = " ".join(str(text).split())
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def escaped(text: str) -> str:
    """``text`` as agnes shows server text: control characters escaped
    (issue 13)."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = ""
    for c in text:
        if c in named:
            out += named[c]
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out += f"\\x{ord(c):02x}"
        elif 0x80 <= ord(c) < 0xA0:
            out += f"\\u{{{ord(c):x}}}"
        else:
            out += c
    return out


def under(value: float, bounds) -> str:
    """The first of ``bounds`` above ``value``: a measurement coarse enough
    to be the same on every run."""
    return str(next((b for b in bounds if value < b), f"over {bounds[-1]}"))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def child_env(config: Path, home: Path, extra: dict | None = None) -> dict:
    """The host's environment: nothing of the caller's agnes settings or
    proxies, the config folder (with token.json) and a private HOME."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGNES_", "DA_")) and "proxy" not in k.lower()
    }
    env.update(
        AGNES_CONFIG_DIR=str(config),
        HOME=str(home),
        # LOAD would attach views from the state file; off, so that what a
        # check sees is what the sync left, not what a LOAD repaired.
        AGNES_ATTACH_ON_LOAD="0",
    )
    env.update(extra or {})
    return env


class Run:
    """One finished host process."""

    def __init__(self, args, returncode, stdout, stderr, elapsed):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    @property
    def rows(self) -> list[dict]:
        text = self.stdout.strip()
        return json.loads(text) if text else []

    def table(self, table_id: str) -> dict:
        found = [r for r in self.rows if r["kind"] == "table" and r["table_id"] == table_id]
        assert len(found) == 1, f"no single row for {table_id!r}: {self.rows}"
        return found[0]

    def actions(self) -> dict[str, str]:
        return {r["table_id"]: r["action"] for r in self.rows if r["kind"] == "table"}

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.rows if r["kind"] == kind]

    @property
    def error(self) -> str:
        """The SQL error the host printed (the CLI prints it on stderr)."""
        return self.stderr.strip()

    def assert_alive(self) -> None:
        """Returned normally: a result or a SQL error, never a crash."""
        assert self.returncode in (0, 1), (
            f"host ended with status {self.returncode}: {self.stderr[-2000:]}"
        )
        for sign in ("INTERNAL Error", "panicked", "Segmentation fault", "Aborted", "FATAL"):
            assert sign not in self.stderr and sign not in self.stdout, self.stderr[-2000:]

    def assert_ok(self) -> "Run":
        self.assert_alive()
        assert self.returncode == 0, self.stderr
        return self

    def assert_sql_error(self) -> str:
        self.assert_alive()
        assert self.returncode == 1 and self.error, (self.returncode, self.stdout)
        assert self.stdout.strip() in ("", "[]"), self.stdout
        return self.error


class World:
    """A server with the sample data, a config folder holding the token, a
    workspace and the analyst's database; everything a case touches."""

    def __init__(self, tmp: Path, sample_template: Path, workspace_name: str = "ws"):
        self.tmp = tmp
        self.data = Path(shutil.copytree(sample_template, tmp / "data"))
        catalog = json.loads((self.data / "catalog.json").read_text())
        catalog["users"] = {TOKEN: {"name": "analyst", "tables": "*"}}
        self.catalog = catalog
        write_catalog(self.data, catalog)
        self.config = tmp / "config"
        self.config.mkdir()
        self.token_file = self.config / "token.json"
        self.token_file.write_text(json.dumps({"access_token": TOKEN}))
        self.token_file.chmod(0o600)
        # The server the token is for (CONTRACT.md §2): a stored token goes
        # nowhere else.
        self.config_yaml = self.config / "config.yaml"
        self.home = tmp / "home"
        self.home.mkdir()
        self.ws = tmp / workspace_name
        self.parquet = self.ws / "server" / "parquet"
        self.db = self.ws / "user" / "duckdb" / "analytics.duckdb"
        self.db.parent.mkdir(parents=True)
        self.outputs: list[str] = []
        self.servers: list[LocalServer] = []
        self.mounts: list[Path] = []
        self.aliases: dict[str, str] = {}
        self.server = self.start_server(self.data)
        self.server_url = self.server.url
        self.config_yaml.write_text(f"server: {self.server_url}\n")

    # -- life cycle --

    def start_server(self, data: Path, addr: str = "127.0.0.1") -> LocalServer:
        server = LocalServer(data, addr=addr).start()
        self.servers.append(server)
        return server

    def close(self) -> None:
        for mount in reversed(self.mounts):
            subprocess.run(["umount", str(mount)], capture_output=True)
            if os.path.ismount(mount):
                subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        for server in self.servers:
            server.stop()

    # -- the host --

    def sync_sql(self, **params) -> str:
        values = {"server": self.server_url, "workspace": str(self.ws)}
        values.update(params)
        named = ", ".join(f'"{k}" := {sql_value(v)}' for k, v in values.items())
        return f"LOAD {lit(EXTENSION)}; SELECT * FROM agnes_sync({named});"

    def start_sync(self, db: Path | None = None, env: dict | None = None, **params):
        """Starts a sync in the duckdb CLI; ``finish`` collects it."""
        return self.start_sql(self.sync_sql(**params), db=db, env=env)

    def run_sql(self, sql: str, db: Path | None = None, env: dict | None = None, wait: float = 60) -> Run:
        """Any SQL in the duckdb CLI, as the analyst's host runs it."""
        return self.finish(self.start_sql(sql, db=db, env=env), wait)

    def start_sql(self, sql: str, db: Path | None = None, env: dict | None = None):
        args = [str(CLI), "-unsigned", "-json", str(db or self.db), "-c", sql]
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.tmp,
            env=child_env(self.config, self.home, {"AGNES_LOCAL_DIR": str(self.ws), **(env or {})}),
        )
        proc.started = time.monotonic()
        proc.agnes_args = args
        return proc

    def da(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """``da`` as the hooks run it, on this workspace, with the token
        in token.json."""
        extra = {
            "AGNES_LOCAL_DIR": str(self.ws),
            "AGNES_EXTENSION": str(EXTENSION),
            "AGNES_DUCKDB": str(CLI),
            **(env or {}),
        }
        result = subprocess.run(
            [str(DA), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.tmp,
            env=child_env(self.config, self.home, extra),
        )
        self.outputs += [result.stdout, result.stderr]
        return result

    def finish(self, proc, wait: float = 60) -> Run:
        try:
            out, err = proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"the host hung for {wait} s: {err[-2000:]}") from None
        run = Run(proc.agnes_args, proc.returncode, out, err, time.monotonic() - proc.started)
        self.outputs += [out, err]
        return run

    def sync(self, wait: float = 60, db: Path | None = None, env: dict | None = None, **params) -> Run:
        """A whole sync; ``params`` are agnes_sync's named parameters."""
        return self.finish(self.start_sync(db=db, env=env, **params), wait)

    def query(self, sql: str, db: Path | None = None) -> list[dict]:
        """A query in a fresh CLI without agnes: what the database holds."""
        result = subprocess.run(
            [str(CLI), "-readonly", "-json", str(db or self.db), "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.tmp,
            env=child_env(self.config, self.home),
        )
        self.outputs += [result.stdout, result.stderr]
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else []

    def view_rows(self, tables=BASE) -> dict[str, int]:
        """Rows each table's view answers with, in one query."""
        cols = ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)
        return self.query(f"SELECT {cols}")[0]

    def agnes_views(self) -> list[str]:
        rows = self.query(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal "
            # Views over downloaded files, marked in their definition (the
            # remote live_orders has one over agnes_scan(), marked by a comment).
            "AND sql LIKE '% AS \"agnes: %' ORDER BY view_name"
        )
        return [r["view_name"] for r in rows]

    # -- the workspace --

    def state_path(self) -> Path:
        found = list((self.ws / ".agnes").glob("sync-state-*.json"))
        assert len(found) == 1, found
        return found[0]

    def state(self) -> dict:
        return json.loads(self.state_path().read_text())

    def temporaries(self) -> list[Path]:
        return sorted(self.parquet.glob(".agnes-*.part"))

    def files(self) -> set[Path]:
        """Every file under the test's folder, but the server's data."""
        return {
            p for p in self.tmp.rglob("*") if p.is_file() and self.data not in p.parents
        }

    def assert_state_matches_files(self) -> None:
        state = self.state()
        assert state.get("version") == 1 and isinstance(state.get("tables"), dict), state
        on_disk = {p.name[: -len(".parquet")] for p in self.parquet.glob("*.parquet")}
        assert on_disk == set(state["tables"]), "a file without state, or state without a file"
        for table_id, entry in state["tables"].items():
            path = self.parquet / f"{table_id}.parquet"
            assert path.stat().st_size == entry["size_bytes"], table_id
            body = path.read_bytes()
            if re.fullmatch(r"[0-9a-f]{32}", entry["hash"]):
                assert md5(path) == entry["hash"], f"{table_id}: file and state disagree"
            else:
                assert body[:4] == body[-4:] == b"PAR1", table_id

    def assert_no_leak(self) -> None:
        for text in self.outputs:
            for secret in SECRETS:
                assert secret not in text, f"the token leaked into output: {text[-500:]}"
        for root in (self.ws, self.config, self.home):
            for path in root.rglob("*"):
                if path.is_file() and path != self.token_file:
                    data = path.read_bytes()
                    for secret in SECRETS:
                        assert secret.encode() not in data, f"the token leaked into {path}"

    def check(self, run: Run, rows: dict[str, int], temporaries_ok: bool = False) -> None:
        """The invariants every case checks (module docstring)."""
        run.assert_alive()
        assert self.view_rows(rows) == rows
        self.assert_state_matches_files()
        if not temporaries_ok:
            assert self.temporaries() == []
        # Links to the previous files, kept while a sync runs (case 17).
        assert list(self.parquet.glob(".agnes-*.keep")) == []
        self.assert_no_leak()

    # -- the server --

    def change(self, table: str, rows: int = NEW_ROWS, wide: bool = False) -> None:
        """Makes the server offer a new version of ``table`` (new MD5)."""
        pad = ", md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS pad" if wide else ""
        tmp = self.data / f".{table}.new"
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT i AS id, i * 2 AS amount{pad} FROM range({rows}) t(i)) "
            f"TO {lit(tmp)} (FORMAT parquet)"
        )
        con.close()
        os.replace(tmp, self.data / f"{table}.parquet")

    def set_catalog(self, **changes) -> None:
        self.catalog.update(changes)
        write_catalog(self.data, self.catalog)

    def manifest(self) -> dict:
        """The manifest as the server really serves it, to build bad ones from."""
        import urllib.request

        req = urllib.request.Request(
            self.server_url + "/api/sync/manifest", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=120) as resp:
            return json.loads(resp.read())

    def downloads(self, table: str, server: LocalServer | None = None) -> list[dict]:
        path = f"/api/data/{table}/download"
        return [r for r in (server or self.server).requests() if r["path"] == path]

    # -- for the table --

    def norm(self, text: str) -> str:
        """An observation without what differs between runs: folders, ports,
        random temporary names."""
        for server in self.servers:
            text = text.replace(server.url, "<server>" if server is self.servers[0] else "<other host>")
        for url, label in self.aliases.items():
            text = text.replace(url, label)
        text = text.replace(str(self.tmp), "<tmp>")
        text = re.sub(r"\.agnes-[A-Za-z0-9]+\.part", ".agnes-XXXXXX.part", text)
        text = re.sub(r"sync-state-[A-Za-z0-9._-]+\.json", "sync-state-<server>.json", text)
        return text

    def first_line(self, error: str) -> str:
        """A SQL error without the query excerpt DuckDB appends."""
        return self.norm(error.split("\n\nLINE")[0].strip())


def mount(world: World, *args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not permitted here: {result.stderr.strip()}")


# -- fixtures --------------------------------------------------------------


@pytest.fixture
def make_world(tmp_path, sample_template):
    """``make_world(name)``: a World, not yet synced; closed after the test,
    and checked once more for leaks."""
    worlds = []

    def make(workspace_name: str = "ws") -> World:
        world = World(tmp_path, sample_template, workspace_name)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()
    for world in worlds:
        world.assert_no_leak()


def baseline(world: World) -> Run:
    """The good first sync every case starts from."""
    run = world.sync().assert_ok()
    assert {t: run.table(t)["action"] for t in BASE} == {t: "downloaded" for t in BASE}
    world.check(run, BASE)
    return run


@pytest.fixture
def world(make_world) -> World:
    """A World whose workspace holds a good sync of the sample."""
    w = make_world()
    baseline(w)
    return w


def with_new(table: str, rows: int = NEW_ROWS) -> dict[str, int]:
    return {**BASE, table: rows}


# == server faults =========================================================


@case("Server down", "the server process is stopped; nothing listens on its port")
def test_server_down(world, record):
    before = world.state_path().read_bytes()
    world.server.stop()
    run = world.sync()
    error = run.assert_sql_error()
    assert "manifest fetch from" in error and "/api/sync/manifest" in error
    assert "Connection refused" in error
    assert run.elapsed < 6, f"a dead server must cost seconds: {run.elapsed:.1f} s"
    world.check(run, BASE)
    assert world.state_path().read_bytes() == before
    record(f"SQL error, within seconds: {code(world.first_line(error))}; nothing written")


@case("401: the token is refused", "the server's users no longer include the token")
def test_unauthorized(world, record):
    before = world.state_path().read_bytes()
    world.set_catalog(users={STALE_TOKEN: {"name": "someone-else", "tables": "*"}})
    world.server.clear_requests()
    run = world.sync()
    error = run.assert_sql_error()
    assert "refused the token (401)" in error and "da login" in error
    world.check(run, BASE)
    assert world.state_path().read_bytes() == before
    assert [r["path"] for r in world.server.requests()] == ["/api/sync/manifest"], "not retried"
    record(f"SQL error, not retried: {code(world.first_line(error))}; nothing written")


PY_SYNC = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], config={"allow_unsigned_extensions": "true"})
con.execute("LOAD '" + sys.argv[2].replace("'", "''") + "'")
try:
    con.execute(sys.argv[3]).fetchall()
except duckdb.Error as e:
    print(type(e).__name__ + ": " + str(e))
"""


@case(
    "The token passed in SQL, and the sync fails",
    "`token := '...'` instead of token.json, the server down; in the CLI and in Python (duckdb 2.0.0)",
)
def test_token_parameter_not_echoed(world, record):
    world.server.stop()
    run = world.sync(token=TOKEN)
    error = run.assert_sql_error()
    assert "LINE 1" not in error and "Connection refused" in error
    sql = world.sync_sql(token=TOKEN).split("; ", 1)[1]
    py = subprocess.run(
        [sys.executable, "-c", PY_SYNC, str(world.tmp / "py.duckdb"), str(EXTENSION), sql],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(world.config, world.home),
    )
    world.outputs += [py.stdout, py.stderr]
    assert py.returncode == 0 and "Connection refused" in py.stdout, py.stderr
    world.check(run, BASE)
    record(
        "the error is raised when the scan starts, so DuckDB does not quote the query "
        f"under it: {code(world.first_line(error))}; Python: {code(world.norm(py.stdout.strip().split(': ', 1)[0]))} "
        "with the same message; the token in neither"
    )


def one_table_fails(world: World, status: int, record) -> None:
    world.change("orders")
    world.server.set_faults([{"kind": "status", "status": status, "table": "orders"}])
    world.server.clear_requests()
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and f"HTTP {status}" in orders["error"], orders
    assert all(run.table(t)["action"] == "unchanged" for t in BASE if t != "orders")
    assert len(world.downloads("orders")) == 1, "a 4xx is never retried"
    world.check(run, BASE)
    world.server.clear_faults()
    again = world.sync().assert_ok()
    assert again.table("orders")["action"] == "downloaded"
    world.check(again, with_new("orders"))
    record(
        f"row `orders` failed, not retried: {code(world.norm(orders['error']))}; the other tables "
        "unchanged; old `orders` kept; the next sync downloads it"
    )


@case("403 on one table", "`status` 403 on the download of `orders`, whose server copy changed")
def test_forbidden_table(world, record):
    one_table_fails(world, 403, record)


@case("404 on one table", "`status` 404 on the download of `orders`, whose server copy changed")
def test_missing_table(world, record):
    one_table_fails(world, 404, record)


@case("5xx twice, then fine", "`status` 503 twice on the download of `orders`, then normal")
def test_5xx_twice_then_fine(world, record):
    world.change("orders")
    world.server.set_faults([{"kind": "status", "status": 503, "table": "orders", "times": 2}])
    world.server.clear_requests()
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "downloaded" and orders["rows"] == NEW_ROWS, orders
    statuses = [r["status"] for r in world.downloads("orders")]
    assert statuses == [503, 503, 200], statuses
    world.check(run, with_new("orders"))
    record(
        f"retried after 0.3 s and 1 s; the third attempt succeeds: `orders` downloaded "
        f"({orders['rows']} rows), statuses seen by the server {statuses}"
    )


@case("5xx forever", "`status` 500 on every download of `orders`, whose server copy changed")
def test_5xx_forever(world, record):
    world.change("orders")
    world.server.set_faults([{"kind": "status", "status": 500, "table": "orders"}])
    world.server.clear_requests()
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and "HTTP 500" in orders["error"], orders
    assert "after 4 attempts" in orders["error"]
    assert len(world.downloads("orders")) == 4
    # Backoff 0.3 + 1 + 3 s: bounded, not a hang.
    assert 4.2 < run.elapsed < 10, run.elapsed
    world.check(run, BASE)
    record(
        f"row `orders` failed after 4 attempts (0.3 + 1 + 3 s of backoff, under 10 s): "
        f"{code(world.norm(orders['error']))}; old `orders` kept"
    )


@case("Body cut short", "`cut` after 1000 bytes on every download of `orders` (full Content-Length sent)")
def test_body_cut_short(world, record):
    world.change("orders")
    world.server.set_faults([{"kind": "cut", "after_bytes": 1000, "table": "orders"}])
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and "after 4 attempts" in orders["error"], orders
    assert "1000" in orders["error"], orders
    world.check(run, BASE)
    record(
        f"retried like any transient failure, then row `orders` failed: "
        f"{code(world.norm(orders['error']))}; old `orders` kept, no partial file left"
    )


@case("Wrong bytes (hash mismatch)", "`corrupt` on the download of `orders` (16 bytes flipped mid-file)")
def test_hash_mismatch(world, record):
    world.change("orders")
    world.server.set_faults([{"kind": "corrupt", "table": "orders"}])
    world.server.clear_requests()
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and "hash mismatch" in orders["error"], orders
    assert len(world.downloads("orders")) == 1
    world.check(run, BASE)
    record(
        f"row `orders` failed, not retried: {code(world.norm(orders['error']))}; "
        "the bad bytes never replace the old file"
    )


@case(
    "Empty-hash table answered by an HTML error page",
    "`customers` served with hash `\"\"`; a `body` fault answers its download 200 with an HTML page",
)
def test_html_instead_of_parquet(world, record):
    tables = dict(world.catalog["tables"])
    tables["customers"] = {**tables["customers"], "hash": "empty"}
    world.set_catalog(tables=tables)
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    world.server.set_faults([{"kind": "body", "table": "customers", "body": page}])
    run = world.sync().assert_ok()
    customers = run.table("customers")
    assert customers["action"] == "failed" and "not a parquet file" in customers["error"], customers
    assert "502 Bad Gateway" in customers["error"]
    world.check(run, BASE)
    world.server.clear_faults()
    again = world.sync().assert_ok()
    assert again.table("customers")["action"] == "unchanged"  # a 304: the ETag still matches
    world.check(again, BASE)
    record(
        f"row `customers` failed: {code(world.norm(customers['error']))}; old file kept; "
        "after the fault the next sync gets a 304"
    )


@case(
    "Stall longer than the read timeout",
    "`stall` of 5 s after half the body of `orders`, every time; `timeout := 1`",
)
def test_stall(world, record):
    world.change("orders")
    world.server.set_faults([{"kind": "stall", "ms": 5000, "at": "middle", "table": "orders"}])
    run = world.sync(timeout=1)
    run.assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and "after 4 attempts" in orders["error"], orders
    assert "timed out" in orders["error"], orders
    # 4 attempts of 1 s plus 4.3 s of backoff: bounded by the timeout.
    assert run.elapsed < 14, run.elapsed
    world.check(run, BASE)
    error = re.sub(r"after \d+ bytes", "after N bytes", world.norm(orders["error"]))
    record(
        f"each attempt gives up after 1 s without data, 4 attempts: row `orders` failed: "
        f"{code(error)}; old `orders` kept"
    )


@case(
    "Redirect to another host",
    "`redirect` (302) of the `orders` download to a second agnes-server on 127.0.0.2",
)
def test_redirect_to_other_host(world, record):
    other_data = Path(shutil.copytree(world.data, world.tmp / "other-data"))
    try:
        other = world.start_server(other_data, addr="127.0.0.2")
    except Exception as err:  # noqa: BLE001 - a machine without 127.0.0.2
        pytest.skip(f"no second loopback address: {err}")
    world.change("orders")
    target = f"{other.url}/api/data/orders/download"
    world.server.set_faults([{"kind": "redirect", "table": "orders", "location": target}])
    world.server.clear_requests()
    run = world.sync().assert_ok()
    orders = run.table("orders")
    seen = [r for r in other.requests() if r["path"] != "/api/health"]
    assert [r["path"] for r in seen] == ["/api/data/orders/download"], "the redirect was followed"
    assert all(not r["authorization"] for r in seen), f"the token went to another host: {seen}"
    assert all(
        r["authorization"] == f"Bearer {TOKEN}"
        for r in world.server.requests()
        if r["path"] != "/api/health"
    )
    assert orders["action"] == "failed" and "401" in orders["error"], orders
    world.check(run, BASE)
    record(
        "followed without the `Authorization` header (the other host's log shows none), "
        f"so that host refuses it: row `orders` failed: {code(world.norm(orders['error']))}; old file kept"
    )


# == bad manifests =========================================================


def serve_manifest(world: World, body, content_type: str = "application/json") -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    world.server.set_faults(
        [{"kind": "body", "endpoint": "manifest", "body": text, "content_type": content_type}]
    )


@case("Manifest is not JSON", "a `body` fault answers the manifest 200 with an HTML page")
def test_manifest_not_json(world, record):
    before = world.state_path().read_bytes()
    serve_manifest(world, "<html><body>Service temporarily unavailable</body></html>", "text/html")
    run = world.sync()
    error = run.assert_sql_error()
    assert "is not valid: not JSON" in error and "Service temporarily unavailable" in error
    world.check(run, BASE)
    assert world.state_path().read_bytes() == before
    record(f"SQL error: {code(world.first_line(error))}; nothing written")


@case(
    "Manifest is huge",
    "100 000 extra tables in the catalog (a 10 MB manifest; remote tables, nothing to download)",
)
def test_manifest_huge(world, record):
    n = 100_000
    tables = dict(world.catalog["tables"])
    tables.update({f"t{i:06d}": {"query_mode": "remote", "rows": i} for i in range(n)})
    world.set_catalog(tables=tables)
    # Peak memory of the host process alone: measured by a wrapper process
    # whose only child it is.
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout, 'err': p.stderr,\n"
        "  'secs': time.monotonic() - t,\n"
        "  'kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    args = [str(CLI), "-unsigned", "-json", str(world.db), "-c", world.sync_sql()]
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(world.config, world.home),
        cwd=world.tmp,
    )
    measured = json.loads(result.stdout)
    run = Run(args, measured["rc"], measured["out"], measured["err"], measured["secs"])
    world.outputs += [run.stdout, run.stderr]
    run.assert_ok()
    actions = run.actions()
    # Remote tables are not downloaded; 100 of them (agnes_sync's
    # scan_views) get a new view over agnes_scan(), the rest are only
    # listed; the sample's live_orders keeps the view its first sync made.
    assert sum(1 for a in actions.values() if a == "scan_view") == 101
    assert sum(1 for a in actions.values() if a in ("skipped_remote", "scan_view")) == n + 1
    assert all(actions[t] == "unchanged" for t in BASE)
    mib = measured["kib"] / 1024
    print(f"\nhuge manifest: {n} tables: {run.elapsed:.2f} s, host peak {mib:.0f} MiB")
    assert run.elapsed < 30 and mib < 1024, (run.elapsed, mib)
    world.check(run, BASE)
    record(
        f"parsed and reported: {n + len(BASE) + 1} table rows, the {n} extra ones "
        f"remote (100 given a view over agnes_scan(), the rest `skipped_remote`), the local "
        f"tables unchanged; the host process (debug build) "
        f"peaked under {under(mib, (128, 256, 512, 1024))} MiB and finished within the "
        "test's 30 s bound (its time is printed by `pytest -s`)"
    )


@case(
    "Manifest has wrong types",
    "a `body` manifest: `orders` with `hash: 5`, `rows: \"many\"`, `size_bytes: -1`; "
    "`customers` a list; then, one at a time, `tables` a list, `{}`, `{\"detail\": ...}` and "
    "`{\"tables\": null}`, all with 200",
)
def test_manifest_wrong_types(world, record):
    before = world.state_path().read_bytes()
    manifest = world.manifest()
    manifest["tables"]["orders"] = {"hash": 5, "rows": "many", "size_bytes": -1, "query_mode": 7}
    manifest["tables"]["customers"] = [1, 2]
    manifest["server_time"] = {"not": "a time"}
    serve_manifest(world, manifest)
    run = world.sync().assert_ok()
    orders, customers = run.table("orders"), run.table("customers")
    assert orders["action"] == "failed"
    for field in ("`hash` must be a string", "`rows` must be a non-negative integer", "`size_bytes`"):
        assert field in orders["error"], orders
    assert customers["action"] == "failed" and "must be an object" in customers["error"]
    assert run.table("products")["action"] == "unchanged"
    world.check(run, BASE)

    outcomes = []
    for body in ({"tables": [1, 2]}, {}, {"detail": "Internal Server Error"}, {"tables": None}):
        serve_manifest(world, body)
        bad = world.sync()
        error = bad.assert_sql_error()
        assert "is not valid" in error, error
        world.check(bad, BASE)
        outcomes.append(code(world.first_line(error).split(": ", 2)[-1]))
    world.server.clear_faults()
    assert world.sync().assert_ok().actions()["orders"] == "unchanged"
    assert world.state()["tables"] == json.loads(before)["tables"]
    record(
        f"only the bad entries fail, each with its reasons: `orders`: {code(orders['error'])}; "
        f"`customers`: {code(customers['error'])}; the others unchanged. A manifest whose `tables` "
        f"is not an object, or missing, is a SQL error and nothing is removed: "
        + "; ".join(outcomes)
    )


HOSTILE_IDS = [
    "../x",
    "a/b",
    "..",
    ".",
    "../../../../tmp/agnes-escape",
    "/etc/passwd",
    "a\\b",
    "it's",
    'a"b',
    "orders; DROP VIEW customers",
    "x'); DROP TABLE t; --",
    "SELECT * FROM orders",
    "a\nb",
    "a\u0000b",
    "%2e%2e%2fx",
    "x" * 129,
]


@case(
    "Manifest ids try path traversal, quotes, semicolons, SQL",
    f"a `body` manifest with the real tables plus {len(HOSTILE_IDS)} hostile ids (`../x`, `a/b`, "
    "`..`, `.`, absolute paths, `'`, `\"`, `;`, SQL, newline, NUL, 129 characters), each with an MD5",
)
def test_manifest_hostile_ids(world, record):
    manifest = world.manifest()
    for table_id in HOSTILE_IDS:
        manifest["tables"][table_id] = {"hash": "0" * 32, "rows": 1, "size_bytes": 10}
    serve_manifest(world, manifest)
    files_before = world.files()
    views_before = world.agnes_views()
    world.server.clear_requests()
    run = world.sync().assert_ok()
    for table_id in HOSTILE_IDS:
        row = run.table(escaped(table_id))
        assert row["action"] == "failed" and "refused" in row["error"], row
        assert row["view_name"] is None
    assert all(run.table(t)["action"] == "unchanged" for t in BASE)
    assert [r["path"] for r in world.server.requests() if "/api/data/" in r["path"]] == []
    assert world.agnes_views() == views_before
    new_files = world.files() - files_before
    assert all(world.ws / ".agnes" in p.parents or p.parent == world.db.parent for p in new_files), new_files
    assert not Path("/tmp/agnes-escape.parquet").exists()
    assert set(world.state()["tables"]) == set(BASE)
    world.check(run, BASE)
    record(
        f"every hostile id is a failed row (`refused`), never a request, a file or a view; "
        f"e.g. {code(run.table('../x')['error'])}; control characters in ids are shown escaped "
        f"({code(run.table(escaped('a' + chr(10) + 'b'))['table_id'])}); the real tables unchanged"
    )


class EndlessServer:
    """A raw HTTP server whose every answer is 200 with a chunked JSON body
    that never ends."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sent = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        chunk = b" " * (1 << 20)
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        try:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
            )
            while True:
                conn.sendall(frame)
                self.sent += len(chunk)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


@case(
    "Manifest body without end",
    "a raw HTTP server answers the manifest 200 with a chunked JSON body that never ends",
)
def test_manifest_endless(world, record):
    endless = EndlessServer()
    world.aliases[endless.url] = "<endless>"
    try:
        run = world.sync(server=endless.url, env={"AGNES_SERVER": endless.url})
    finally:
        endless.close()
    error = run.assert_sql_error()
    assert "over the 256 MiB allowed" in error, error
    assert run.elapsed < 20, run.elapsed
    world.check(run, BASE)
    record(f"SQL error once 256 MiB are read, not an exhausted memory: {code(world.first_line(error))}")


@case(
    "Memory items with unsafe ids",
    "a `body` bundle: mandatory items with ids `../../escape`, `a/b`, `..`, `/tmp/abs`, `x.md`, "
    "`approved`, empty, missing, plus one good item",
)
def test_bundle_unsafe_ids(world, record):
    bad_ids = ["../../escape", "a/b", "..", "/tmp/agnes-abs", "x.md", "approved", ""]
    items = [{"id": i, "title": "evil", "content": "x"} for i in bad_ids]
    items += [{"title": "no id"}, {"id": "good-item", "title": "Good", "content": "kept"}]
    bundle = {"mandatory": items, "approved": [{"id": "../a", "title": "A", "content": "a"}]}
    world.server.set_faults(
        [{"kind": "body", "endpoint": "bundle", "body": json.dumps(bundle), "content_type": "application/json"}]
    )
    files_before = world.files()
    run = world.sync().assert_ok()
    rules = run.of_kind("rules")
    assert rules[0]["action"] == "written" and rules[0]["rows"] == 2, rules
    warnings = [r["note"] for r in rules[1:]]
    assert len(warnings) == len(bad_ids) + 1, warnings
    rules_dir = world.ws / ".claude" / "rules"
    assert sorted(p.name for p in rules_dir.iterdir()) == ["km_approved.md", "km_good-item.md"]
    new_files = world.files() - files_before
    assert all(p.parent in (rules_dir, world.ws / ".agnes", world.db.parent) for p in new_files), new_files
    assert not Path("/tmp/agnes-abs").exists() and not (world.ws / "escape").exists()
    world.check(run, BASE)
    record(
        f"rules written from the good items only (`km_good-item.md`, `km_approved.md`); "
        f"{len(warnings)} warning rows, e.g. {code(warnings[0])}; no file outside `.claude/rules`"
    )


# == local faults ===========================================================


@case(
    "Host killed (SIGKILL) in the middle of a download",
    "`stall` after half of a 15 MB `orders`; SIGKILL once its temporary file holds data; "
    "then a normal sync",
)
def test_sigkill_mid_download(world, record):
    world.change("orders", rows=200_000, wide=True)
    world.server.set_faults([{"kind": "stall", "ms": 30_000, "at": "middle", "table": "orders"}])
    old_orders = (world.parquet / "orders.parquet").read_bytes()
    proc = world.start_sync()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        parts = [p for p in world.temporaries() if p.stat().st_size > 0]
        if parts:
            break
        time.sleep(0.02)
    else:
        proc.kill()
        raise AssertionError("the download never started")
    proc.send_signal(signal.SIGKILL)
    killed = world.finish(proc)
    assert killed.returncode == -signal.SIGKILL
    part_bytes = parts[0].stat().st_size
    # Killed: the old file is intact under its name, the half file is a temporary.
    assert (world.parquet / "orders.parquet").read_bytes() == old_orders
    world.assert_state_matches_files()
    assert world.view_rows() == BASE
    world.server.clear_faults()
    run = world.sync().assert_ok()
    notices = [r["note"] for r in run.of_kind("notice")]
    assert any("removed 1 temporary file" in n for n in notices), notices
    assert run.table("orders")["action"] == "downloaded"
    world.check(run, with_new("orders", 200_000))
    record(
        f"the killed host left the old `orders` intact and one temporary "
        f"(`.agnes-XXXXXX.part`, {'non-empty' if part_bytes else 'empty'}), never a half file under "
        f"the real name; the next sync: {code(notices[0])}, `orders` downloaded"
    )


@case(
    "Disk full while writing",
    "the parquet folder is a 1 MiB tmpfs (`mount -t tmpfs -o size=1m`, root only); "
    "the server offers a 15 MB `orders`",
)
def test_disk_full(make_world, record):
    if not ROOT:
        pytest.skip("a tmpfs mount needs root")
    world = make_world()
    world.parquet.mkdir(parents=True)
    mount(world, "-t", "tmpfs", "-o", "size=1m", "agnes-full", str(world.parquet))
    world.mounts.append(world.parquet)
    baseline(world)
    world.change("orders", rows=200_000, wide=True)
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and "No space left on device" in orders["error"], orders
    assert "orders.parquet" in orders["error"], orders
    assert all(run.table(t)["action"] == "unchanged" for t in BASE if t != "orders")
    world.check(run, BASE)
    record(f"row `orders` failed, not retried: {code(world.norm(orders['error']))}; temporary removed, old file kept")


@case(
    "Parquet folder read-only",
    "a read-only bind mount of `server/parquet` onto itself (root bypasses chmod)",
)
def test_read_only_folder(world, record):
    if not ROOT:
        pytest.skip("a bind mount needs root")
    mount(world, "--bind", str(world.parquet), str(world.parquet))
    world.mounts.append(world.parquet)
    mount(world, "-o", "remount,bind,ro", str(world.parquet))
    world.change("orders")
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and "Read-only file system" in orders["error"], orders
    world.check(run, BASE)
    subprocess.run(["umount", str(world.parquet)], check=True)
    world.mounts.remove(world.parquet)
    again = world.sync().assert_ok()
    assert again.table("orders")["action"] == "downloaded"
    world.check(again, with_new("orders"))
    record(
        f"row `orders` failed: {code(world.norm(orders['error']))}; the other tables unchanged; "
        "writable again, the next sync downloads it"
    )


@case(
    "Two syncs at once",
    "sync A holds the workspace lock (a 3 s `stall` before `orders`); sync B, in another "
    "database on the same workspace, runs with `lock_timeout := 0.5`",
)
def test_two_syncs(world, record):
    world.change("orders")
    world.server.set_faults([{"kind": "stall", "ms": 3000, "table": "orders", "times": 1}])
    world.server.clear_requests()
    first = world.start_sync()
    deadline = time.monotonic() + 10
    while not any(r["path"] == "/api/sync/manifest" for r in world.server.requests()):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    second = world.sync(db=world.tmp / "second.duckdb", lock_timeout=0.5)
    error = second.assert_sql_error()
    assert "another agnes sync is running" in error and "waited 0.5 s" in error, error
    assert 0.5 <= second.elapsed < 3
    a = world.finish(first).assert_ok()
    assert first.poll() is not None and a.elapsed >= 3
    assert a.table("orders")["action"] == "downloaded"
    world.check(a, with_new("orders"))
    record(
        f"B waits 0.5 s, then a SQL error: {code(world.first_line(error))}; A completes "
        "(`orders` downloaded); state and files consistent"
    )


@case(
    "Workspace path with spaces and quotes",
    "workspace `it's a \"quoted\"; folder`, given as `workspace := '...'`",
)
def test_workspace_with_spaces_and_quotes(make_world, record):
    world = make_world("it's a \"quoted\"; folder")
    baseline(world)
    assert world.agnes_views() == sorted(BASE)
    world.change("orders")
    run = world.sync().assert_ok()
    assert run.table("orders")["action"] == "downloaded"
    world.check(run, with_new("orders"))
    offline = world.sync(offline=True).assert_ok()
    assert {r["view_name"] for r in offline.rows} == set(BASE)
    record(
        "syncs, views over the quoted paths answer, a changed table is replaced, "
        "offline attach works"
    )


@case("State file damaged", "the workspace's `sync-state-*.json` is replaced by a truncated JSON")
def test_state_damaged(world, record):
    path = world.state_path()
    path.write_text('{"version": 1, "tables": {"orders": {"hash": ')
    run = world.sync().assert_ok()
    notices = [r["note"] for r in run.of_kind("notice")]
    assert any("damaged" in n for n in notices), notices
    # The files in place are checked again against the manifest (adopt.rs):
    # those with its MD5 are kept, products' version token checks nothing.
    actions = {t: (run.table(t)["action"], (run.table(t)["note"] or "")[:8]) for t in BASE}
    assert actions == {"customers": ("unchanged", "adopted:"), "in.c-crm.people": ("unchanged", "adopted:"),
                       "orders": ("unchanged", "adopted:"), "products": ("downloaded", "")}, actions
    assert any(n.startswith("adopted 3 table(s)") for n in notices), notices
    assert path.with_name(path.name + ".damaged").exists()
    world.check(run, BASE)
    record(
        "the damaged file is set aside (`.damaged`) with a notice row; every file in place is checked "
        "again: those with the manifest's MD5 are read, found equal and kept (`adopted`), `products` "
        "(a version token, nothing to check against) is downloaded again and verified; nothing wrong is trusted"
    )


# == issue 13: hostile servers, shared databases, odd workspaces ===========

LOAD = f"LOAD {lit(EXTENSION)}; "


@case(
    "Shared database: a view sends the token elsewhere (issue 13, case 1)",
    "a database file made by someone else holds views `agnes_sync(server := <other host>)` "
    "and `agnes_sync(workspace := <victim folder>)`; the analyst, token in token.json, selects from them; "
    "then `SET enable_external_access = false` and a plain `agnes_sync()`",
)
def test_shared_database_token_stays_home(world, record):
    elsewhere = world.start_server(world.data, addr="127.0.0.2")
    world.aliases[elsewhere.url] = "<other host>"
    victim = world.tmp / "victim"
    victim.mkdir()
    shared = world.tmp / "shared.duckdb"
    nobody = {"AGNES_CONFIG_DIR": str(world.tmp / "nobody")}
    made = world.run_sql(
        LOAD
        + f"CREATE VIEW report AS SELECT * FROM agnes_sync(server := {lit(elsewhere.url)}); "
        + f"CREATE VIEW notes AS SELECT * FROM agnes_sync(workspace := {lit(victim)});",
        db=shared,
        env=nobody,
    ).assert_ok()
    assert made.returncode == 0
    world.server.clear_requests()
    to_elsewhere = world.run_sql(LOAD + "SELECT * FROM report;", db=shared).assert_sql_error()
    assert "is not the configured server" in to_elsewhere and "token := " in to_elsewhere, to_elsewhere
    into_victim = world.run_sql(LOAD + "SELECT * FROM notes;", db=shared).assert_sql_error()
    assert "is not an agnes workspace" in into_victim and "new_workspace := true" in into_victim, into_victim
    assert [r for r in elsewhere.requests() if r["path"] != "/api/health"] == [], "the other host was asked"
    assert world.server.requests() == [], "nothing may start before the refusal"
    assert list(victim.iterdir()) == [], "something was written into the victim's folder"
    no_access = world.run_sql(LOAD + "SET enable_external_access = false; SELECT * FROM agnes_sync();")
    error = no_access.assert_sql_error()
    assert "enable_external_access is false" in error, error
    assert world.server.requests() == []
    world.check(no_access, BASE)
    record(
        f"nothing sent, nothing written: the view to another host is a SQL error, {code(world.first_line(to_elsewhere))}; "
        f"the view into another folder, {code(world.first_line(into_victim))}; with external access off, "
        f"{code(world.first_line(error))}; neither server saw a request"
    )


def echo_of_token(pad: int = 0) -> str:
    """What a proxy that echoes the request headers sends back."""
    return "x" * pad + f"Authorization: Bearer {TOKEN}"


@case(
    "The server echoes the token (issue 13, case 2)",
    "the `Authorization` header echoed in a 403 body (at character 190, where error texts are cut), in an HTML "
    "manifest, in a 401 read by `da sync` (plain, `--quiet`, `--json`) and in a memory item",
)
def test_server_echoes_token(world, record):
    world.change("orders")
    world.server.set_faults([{"kind": "status", "status": 403, "table": "orders", "body": echo_of_token(190)}])
    run = world.sync().assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "failed" and "HTTP 403" in orders["error"], orders
    assert TOKEN[:12] not in orders["error"], orders
    world.server.set_faults(
        [{"kind": "body", "endpoint": "manifest", "body": f"<html><pre>{echo_of_token()}</pre></html>"}]
    )
    manifest_error = world.sync().assert_sql_error()
    assert "<redacted>" in manifest_error, manifest_error
    world.server.set_faults([{"kind": "status", "status": 401, "endpoint": "manifest", "body": echo_of_token()}])
    da_runs = {flags: world.da("sync", *flags.split()) for flags in ("", "--quiet", "--json")}
    for flags, result in da_runs.items():
        assert result.returncode == 1, (flags, result.stderr)
        assert "<redacted>" in result.stderr, (flags, result.stderr)
    assert len(da_runs["--quiet"].stderr.strip().splitlines()) == 1
    bundle = {"mandatory": [{"id": "echo", "title": "Echo", "content": echo_of_token()}], "approved": []}
    world.server.set_faults(
        [{"kind": "body", "endpoint": "bundle", "body": json.dumps(bundle), "content_type": "application/json"}]
    )
    rules = world.sync().assert_ok()
    written = (world.ws / ".claude" / "rules" / "km_echo.md").read_text()
    assert "Bearer <redacted>" in written, written
    world.server.clear_faults()
    world.check(rules, with_new("orders"))
    record(
        f"the token is replaced by `<redacted>` everywhere, before any text is cut short (row `orders` ends "
        f"{code(world.norm(orders['error'])[-24:])}, no part of the token); "
        f"the manifest's SQL error; `da sync` ({code(world.norm(da_runs['--quiet'].stderr.strip())[-80:])} with `--quiet`); "
        "the rules file; no output or file holds it"
    )


OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"


@case(
    "Terminal escapes in server text (issue 13, case 3)",
    "a 403 body on `orders` with OSC 52 (clipboard write), `\\r`, BEL and a screen clear; `da sync` on a terminal-bound "
    "stdout and the SQL row",
)
def test_terminal_escapes(world, record):
    world.change("orders")
    body = f"denied{OSC52}\rall good\x1b[2J\x07"
    world.server.set_faults([{"kind": "status", "status": 403, "table": "orders", "body": body}])
    run = world.sync().assert_ok()
    error = run.table("orders")["error"]
    assert "\\x1b]52;c;" in error and "\x1b" not in error and "\r" not in error, repr(error)
    result = world.da("sync")
    assert result.returncode == 2, result.stderr
    for text in (result.stdout, result.stderr):
        for raw in ("\x1b", "\x07", "\r"):
            assert raw not in text, repr(text)
    assert "\\x1b]52;c;" in result.stdout + result.stderr
    world.check(run, BASE)
    record(f"shown escaped, in SQL and by `da`: row `orders` {code(error)}; `da sync` prints the same text")


@case(
    "Uploads follow symbolic links (issue 13, case 4)",
    "`user/sessions/x.jsonl -> ~/.ssh/id_rsa` and `.claude/CLAUDE.local.md` a link to a private file, beside a real "
    "transcript; then the sessions folder itself a link to a folder outside",
)
def test_upload_skips_links(world, record):
    ssh = world.home / ".ssh"
    ssh.mkdir()
    key = ssh / "id_rsa"
    key.write_text("-----BEGIN PRIVATE KEY----- agnes-private-5e1f\n")
    private_notes = world.home / "private.md"
    private_notes.write_text("agnes-private-notes\n")
    sessions = world.ws / "user" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "real.jsonl").write_text('{"a": 1}\n')
    (sessions / "x.jsonl").symlink_to(key)
    (world.ws / ".claude").mkdir(exist_ok=True)
    (world.ws / ".claude" / "CLAUDE.local.md").symlink_to(private_notes)
    run = world.run_sql(LOAD + "SELECT kind, parse_filename(path) AS name, action, error, note FROM agnes_upload();")
    run.assert_ok()
    files = [(r["name"], r["action"]) for r in run.rows if r["kind"] != "notice"]
    notices = [r["note"] for r in run.rows if r["action"] == "skipped"]
    assert files == [("real.jsonl", "uploaded"), ("x.jsonl", "skipped"), ("CLAUDE.local.md", "skipped")], run.rows
    assert len(notices) == 2 and all("symbolic link" in n for n in notices), notices
    outside = world.tmp / "outside"
    outside.mkdir()
    (outside / "y.jsonl").write_text("agnes-private-outside\n")
    shutil.rmtree(sessions)
    sessions.symlink_to(outside)
    linked = world.run_sql(LOAD + "SELECT kind, action, error, note FROM agnes_upload();").assert_ok()
    assert [r["action"] for r in linked.rows if r["kind"] == "session"] == ["skipped"], linked.rows
    sent = b"".join(p.read_bytes() for p in world.server.uploads_dir.rglob("*") if p.is_file())
    assert b"agnes-private" not in sent and b'{"a": 1}' in sent
    world.check(linked, BASE)
    record(
        f"only the real transcript is sent; each link is a `skipped` row, its note {code(world.norm(notices[0]))}; "
        "a file in a linked sessions folder is `skipped` (its folder is outside the workspace): nothing sent"
    )


@case(
    "`da hooks install` on a linked settings.json with big numbers (issue 13, case 16)",
    "`.claude/settings.json` a link to `~/dotfiles/settings.json`, which holds `12345678901234567890123`, "
    "`0.10000000000000000000001` and `1.50E+3`",
)
def test_hooks_install_keeps_numbers_and_links(make_world, record):
    world = make_world()
    dotfiles = world.home / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "settings.json"
    numbers = ["12345678901234567890123", "0.10000000000000000000001", "1.50E+3"]
    target.write_text(
        '{\n  "big": %s,\n  "precise": %s,\n  "exp": %s,\n  "hooks": {}\n}\n' % tuple(numbers)
    )
    link = world.ws / ".claude" / "settings.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    result = world.da("hooks", "install")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == target
    text = target.read_text()
    assert all(n in text for n in numbers), text
    hooks = json.loads(text)["hooks"]
    assert hooks["SessionStart"][0]["hooks"][0]["command"].startswith("da sync")
    again = world.da("hooks", "install")
    assert "already installed" in again.stdout and target.read_text() == text
    record("the link stays a link and its target gets the hooks; every number is written back exactly as it was")


@case(
    "`LOAD agnes` from another workspace's folder (issue 13, case 6)",
    "the database's views point into workspace A; a second workspace B synced a newer `orders`; the database "
    "is opened with B as the current workspace and attach-at-load on",
)
def test_load_in_other_workspace_keeps_views(world, record):
    other = world.tmp / "other"
    world.change("orders")
    synced = world.sync(db=world.tmp / "other.duckdb", workspace=str(other), new_workspace=True).assert_ok()
    assert synced.table("orders")["rows"] == NEW_ROWS
    views_before = world.query(
        "SELECT view_name, sql FROM duckdb_views() WHERE sql LIKE '% AS \"agnes: %' ORDER BY 1"
    )
    run = world.run_sql(
        LOAD + "SELECT count(*) AS n FROM orders;",
        env={"AGNES_ATTACH_ON_LOAD": "1", "AGNES_LOCAL_DIR": str(other)},
    ).assert_ok()
    assert run.rows == [{"n": BASE["orders"]}], run.rows
    offline = world.run_sql(
        LOAD + "SELECT * FROM agnes_sync(offline := true);", env={"AGNES_LOCAL_DIR": str(other)}
    ).assert_ok()
    notes = [r["note"] for r in offline.rows]
    assert all(n and "a file of another workspace; left as is" in n for n in notes), notes
    assert world.query(
        "SELECT view_name, sql FROM duckdb_views() WHERE sql LIKE '% AS \"agnes: %' ORDER BY 1"
    ) == views_before
    world.check(run, BASE)
    record(
        "the views still read workspace A's files (`orders` answers 5000 rows, not B's 4321); "
        f"an offline attach from B says so on each row: {code(world.norm(offline.table('orders')['note']))}"
    )


@case(
    "Glob characters in the workspace path (issue 13, case 7)",
    "workspace `ws[12]*?`, beside a folder `ws1zz` (which that path matches as a glob) holding 7-row parquets "
    "under the same names",
)
def test_glob_characters_in_workspace(make_world, record):
    world = make_world("ws[12]*?")
    # DuckDB cannot commit to a database file whose path holds `?` (it cuts
    # the WAL's path there), so the database lives outside the workspace.
    world.db = world.tmp / "analytics.duckdb"
    decoy = world.tmp / "ws1zz" / "server" / "parquet"
    decoy.mkdir(parents=True)
    con = duckdb.connect()
    for table in BASE:
        con.execute(f"COPY (SELECT range AS id FROM range(7)) TO {lit(decoy / (table + '.parquet'))} (FORMAT parquet)")
    con.close()
    run = baseline(world)
    assert all(run.table(t)["rows"] == n for t, n in BASE.items())
    world.change("orders")
    again = world.sync().assert_ok()
    assert again.table("orders")["action"] == "downloaded"
    world.check(again, with_new("orders"))
    offline = world.sync(offline=True).assert_ok()
    assert {r["view_name"] for r in offline.rows} == set(BASE)
    world.check(offline, with_new("orders"))
    record(
        "every view reads its own file, never the decoy's: the paths handed to DuckDB escape `[`, `*` and `?` as "
        "one-character classes (`ws[[]12][*][?]`), matching exactly one file on DuckDB 1.5.6 and 2.0.0. "
        "(DuckDB itself cannot commit to a database file whose path holds `?`, so that file lives outside.)"
    )


@case(
    "Ids that differ only in case, and ids of DuckDB's own views (issue 13, cases 8 and 9)",
    "the server also offers `Orders` (77 rows) beside the synced `orders`, and tables `duckdb_tables`, "
    "`sqlite_master` and `pg_tables`",
)
def test_case_clash_and_system_names(world, record):
    world.change("Orders", rows=77)
    for name in ("duckdb_tables", "sqlite_master", "pg_tables"):
        world.change(name, rows=3)
    run = world.sync().assert_ok()
    clash = run.table("Orders")
    assert clash["action"] == "failed" and "only in case" in clash["error"], clash
    assert run.table("orders")["action"] == "unchanged"
    system = {n: run.table(n) for n in ("duckdb_tables", "sqlite_master", "pg_tables")}
    for row in system.values():
        assert row["action"] == "failed" and "shadow" in row["error"] and row["view_name"] is None, row
    # The system views still answer as DuckDB's own.
    found = world.query(
        "SELECT (SELECT count(*) FROM duckdb_tables WHERE table_name = 'id') AS t, "
        "(SELECT count(*) FROM sqlite_master WHERE name = 'orders') AS m"
    )
    assert found == [{"t": 0, "m": 1}], found
    assert not any((world.parquet / f"{n}.parquet").exists() for n in ("Orders", *system))
    world.check(run, BASE)
    record(
        f"one of `Orders`/`orders` is kept (the one already synced), the other fails: {code(clash['error'])}; "
        f"`duckdb_tables`, `sqlite_master`, `pg_tables` fail: {code(system['duckdb_tables']['error'])}; "
        "no file, no view, the system views answer as before"
    )


class EtagProxy:
    """A hostile front of the real server: passes every request through and
    adds a 64 KiB ``ETag`` to each download (with ``etag``); answers the
    manifest with ``self.manifest`` when set (raw bytes, which the server's
    `body` fault, a JSON string, cannot carry)."""

    def __init__(self, upstream: str, etag: bool = True):
        proxy = self
        self.manifest: bytes | None = None
        import http.server
        import threading
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                # Plain bodies: a manifest it replaces must not go out
                # under the server's gzip header.
                forward = {k: v for k, v in self.headers.items() if k.lower() != "accept-encoding"}
                req = urllib.request.Request(upstream + self.path, headers=forward)
                try:
                    resp = opener.open(req, timeout=30)
                    status, headers, body = resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as err:
                    status, headers, body = err.code, err.headers, err.read()
                if proxy.manifest is not None and self.path.startswith("/api/sync/manifest"):
                    body = proxy.manifest
                self.send_response(status)
                for key in ("Content-Type", "Content-Encoding"):
                    if headers.get(key):
                        self.send_header(key, headers[key])
                if etag and self.path.endswith("/download"):
                    self.send_header("ETag", '"' + "e" * 65536 + '"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@case(
    "A 304 for a table never downloaded, and a 64 KiB ETag (issue 13, case 12)",
    "the server offers a new table `fresh` and answers its download `304`; then a proxy in front of the "
    "server adds a 64 KiB `ETag` to every download (a fresh state and no files, so every table is downloaded)",
)
def test_304_without_copy_and_huge_etag(world, record):
    world.change("fresh", rows=10)
    world.server.set_faults([{"kind": "status", "status": 304, "table": "fresh"}])
    run = world.sync().assert_ok()
    fresh = run.table("fresh")
    assert fresh["action"] == "failed" and "304" in fresh["error"], fresh
    assert not (world.parquet / "fresh.parquet").exists() and "fresh" not in world.state()["tables"]
    world.check(run, BASE)
    world.server.clear_faults()
    (world.parquet / "fresh.parquet").unlink(missing_ok=True)
    proxy = EtagProxy(world.server_url)
    world.aliases[proxy.url] = "<proxy>"
    try:
        # A fresh state and no files, so every table is downloaded.
        shutil.rmtree(world.ws / ".agnes")
        shutil.rmtree(world.parquet)
        through = world.sync(server=proxy.url, env={"AGNES_SERVER": proxy.url}).assert_ok()
    finally:
        proxy.close()
    assert through.table("orders")["action"] == "downloaded", through.table("orders")
    state_text = world.state_path().read_text()
    assert "e" * 300 not in state_text and len(state_text) < 8192, len(state_text)
    world.check(through, {**BASE, "fresh": 10})
    record(
        f"the 304 is a failed row, no file and no state entry: {code(fresh['error'])}; the 64 KiB ETag is not "
        f"stored (the state file stays {under(len(state_text), [1024, 2048, 4096, 8192])} bytes or less); ETags "
        "over 256 bytes, or holding the token, are dropped"
    )


@case(
    "Memory bundle without `mandatory` or `approved` (issue 13, case 13)",
    "a `body` bundle `{\"detail\": \"rate limited\"}`, then `{}`, both with 200",
)
def test_bundle_without_lists(world, record):
    rules_dir = world.ws / ".claude" / "rules"
    before = {p.name: p.read_bytes() for p in rules_dir.glob("km_*.md")}
    assert before
    errors = []
    for body in ('{"detail": "rate limited"}', "{}"):
        world.server.set_faults(
            [{"kind": "body", "endpoint": "bundle", "body": body, "content_type": "application/json"}]
        )
        run = world.sync().assert_ok()
        rules = run.of_kind("rules")[0]
        assert rules["action"] == "failed" and "refused" in rules["error"], rules
        errors.append(rules["error"])
        assert {p.name: p.read_bytes() for p in rules_dir.glob("km_*.md")} == before
        world.check(run, BASE)
    record(f"the rules step fails and every `km_*.md` is kept: {code(errors[0])}")


@case(
    "A damaged local file (issue 13, case 11)",
    "after a good sync, `orders.parquet` emptied (0 bytes), `customers.parquet` cut to half and "
    "`products.parquet` overwritten in place with as many zero bytes (same size, new time); the state "
    "file untouched, nothing changed on the server; a plain sync, then another",
)
def test_damaged_local_file_is_fetched_again(world, record):
    (world.parquet / "orders.parquet").write_bytes(b"")
    cut = world.parquet / "customers.parquet"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    same = world.parquet / "products.parquet"
    size = same.stat().st_size
    time.sleep(0.01)
    same.write_bytes(b"\0" * size)
    world.server.clear_requests()
    run = world.sync().assert_ok()
    damaged = ("orders", "customers", "products")
    assert {t: run.table(t)["action"] for t in BASE} == {
        t: "downloaded" if t in damaged else "unchanged" for t in BASE
    }
    notes = {t: world.norm(run.table(t)["note"] or "") for t in damaged}
    assert all("no longer matched" in n for n in notes.values()), notes
    assert "modified after agnes put it in place" in notes["products"], notes
    world.check(run, BASE)
    # Repaired: the next sync is a no-op that downloads nothing.
    world.server.clear_requests()
    again = world.sync().assert_ok()
    assert all(again.table(t)["action"] == "unchanged" for t in BASE)
    assert not any("/download" in r["path"] for r in world.server.requests())
    world.check(again, BASE)
    record(
        f"each is fetched again, with a note on its row: `orders` {code(notes['orders'])}; `products` "
        f"{code(notes['products'])}; the untouched table unchanged; the next sync downloads nothing. "
        "The state records each file's size and modification time when it is put in place (on disk "
        "before the state is written: durable.rs), and every sync compares them with one stat per table"
    )


@case(
    "Disk full when the state is written (issue 13, case 17)",
    "the workspace's `.agnes` folder is a 64 KiB tmpfs (root only), filled up after the first sync; the server "
    "offers a changed `orders` and a new table `fresh`, whose downloads succeed; then the space is freed",
)
def test_state_write_fails(make_world, record):
    if not ROOT:
        pytest.skip("a tmpfs mount needs root")
    world = make_world()
    agnes_dir = world.ws / ".agnes"
    agnes_dir.mkdir(parents=True)
    mount(world, "-t", "tmpfs", "-o", "size=64k", "agnes-state-full", str(agnes_dir))
    world.mounts.append(agnes_dir)
    baseline(world)
    before = world.state_path().read_bytes()
    filler = agnes_dir / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    os.close(fd)
    world.change("orders")
    world.change("fresh", rows=10)
    run = world.sync().assert_ok()
    orders, fresh = run.table("orders"), run.table("fresh")
    for row in (orders, fresh):
        assert row["action"] == "failed" and "No space left on device" in row["error"], row
    assert "put the previous file back" in orders["error"] and "removed the new file" in fresh["error"]
    assert orders["rows"] == BASE["orders"], orders
    notices = [world.norm(r["note"]) for r in run.of_kind("notice")]
    assert any("sync state was not saved" in n for n in notices), notices
    assert run.of_kind("rules"), run.rows
    assert world.state_path().read_bytes() == before
    assert not (world.parquet / "fresh.parquet").exists()
    world.check(run, BASE)
    filler.unlink()
    again = world.sync().assert_ok()
    assert again.table("orders")["action"] == again.table("fresh")["action"] == "downloaded"
    world.check(again, {**with_new("orders"), "fresh": 10})
    record(
        f"the call returns its report; the rows of the downloaded tables fail, `orders`: "
        f"{code(world.norm(orders['error']))}; `fresh`: `... removed the new file`; a notice row "
        f"{code(notices[0])}; the state file unchanged and still describing the files (the old `orders` "
        "answers 5000 rows, no `fresh`); space freed, the next sync downloads both"
    )


@case(
    "Two servers, one workspace (issue 13, case 5)",
    "after a sync from server A, a sync of the same workspace from server B (its `orders` has 777 rows), "
    "then from A again; then B into a workspace of its own, and this workspace moved to B as the error says",
)
def test_second_server_in_one_workspace(world, record):
    data_b = Path(shutil.copytree(world.data, world.tmp / "data_b"))
    server_b = world.start_server(data_b, addr="127.0.0.2")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS id FROM range(777)) TO {lit(data_b / 'orders.parquet')} (FORMAT parquet)")
    con.close()
    state_a = world.state_path()
    before = state_a.read_bytes()
    b_env = {"AGNES_SERVER": server_b.url}
    server_b.clear_requests()
    refused = world.sync(server=server_b.url, env=b_env)
    error = refused.assert_sql_error()
    assert world.server_url in error and server_b.url in error and "new_workspace := true" in error, error
    assert [r["path"] for r in server_b.requests()] == ["/api/sync/manifest"]
    world.check(refused, BASE)
    assert list((world.ws / ".agnes").glob("sync-state-*.json")) == [state_a]
    assert state_a.read_bytes() == before
    # A again: its own rows, truly unchanged.
    again = world.sync().assert_ok()
    assert all(again.table(t)["action"] == "unchanged" for t in BASE)
    world.check(again, BASE)
    # The ways out the error names: a workspace of B's own ...
    ws_b = world.tmp / "ws_b"
    own = world.sync(server=server_b.url, env=b_env, workspace=str(ws_b), new_workspace=True).assert_ok()
    assert own.table("orders")["action"] == "downloaded" and own.table("orders")["rows"] == 777
    # ... or this one moved to B.
    state_a.unlink()
    for f in world.parquet.glob("*.parquet"):
        f.unlink()
    moved = world.sync(server=server_b.url, env=b_env).assert_ok()
    assert all(moved.table(t)["action"] == "downloaded" for t in BASE)
    world.check(moved, {**BASE, "orders": 777})
    record(
        f"B is refused once its manifest is read, before any download or write, a SQL error naming both "
        f"servers and the ways out: "
        f"{code(world.first_line(error))}; A's files and state untouched, and A's next sync is a true "
        "`unchanged`. A copy per server was not chosen: every server's table would share "
        "`server/parquet/<id>.parquet` (CONTRACT.md §3), which the rules, hooks and views rely on. "
        "Both ways out work: B into its own workspace, or this one after deleting A's state and files"
    )


@case(
    "One bad number or one byte that is not UTF-8 in the manifest (issue 13, case 14)",
    "a proxy in front of the server serves its manifest with `orders` holding `\"rows\": 1e400`, "
    "`customers` holding a 0xFF byte in `source_type`, and `1e400` in a top-level key agnes does not read",
)
def test_manifest_bad_number_and_bytes(make_world, record):
    world = make_world()
    proxy = EtagProxy(world.server_url, etag=False)
    world.aliases[proxy.url] = "<server>"
    world.server_url = proxy.url
    world.config_yaml.write_text(f"server: {proxy.url}\n")
    try:
        baseline(world)
        text = json.dumps(world.manifest())
        for table, key, value in (("orders", "rows", "1e400"), ("customers", "source_type", '"kbc\udcff"')):
            entry = json.dumps(world.manifest()["tables"][table])
            bad = json.loads(entry)
            bad[key] = "@@BAD@@"
            text = text.replace(entry, json.dumps(bad).replace('"@@BAD@@"', value))
        body = text.replace('{"tables"', '{"extra": 1e400, "tables"', 1).encode("utf-8", "surrogateescape")
        assert b"\xff" in body and b"1e400" in body
        with pytest.raises(ValueError):
            json.loads(body)
        proxy.manifest = body
        run = world.sync().assert_ok()
    finally:
        proxy.close()
    orders, customers = run.table("orders"), run.table("customers")
    assert orders["action"] == customers["action"] == "failed", (orders, customers)
    assert "`rows` must be a non-negative integer, got 1e400" in orders["error"], orders
    assert "not UTF-8" in customers["error"], customers
    assert all(run.table(t)["action"] == "unchanged" for t in BASE if t not in ("orders", "customers"))
    world.check(run, BASE)
    record(
        f"only the two entries fail, each with its reason: `orders`: {code(orders['error'])}; `customers`: "
        f"{code(customers['error'])}; the other tables unchanged, the old files and views kept. Each entry "
        "is parsed on its own from its raw text; bytes that are not UTF-8 are replaced and mark the entry holding them"
    )


def peak_sync(world: World) -> tuple[Run, float]:
    """A sync in the CLI and the peak memory (MiB) of that host process
    alone: measured by a wrapper process whose only child it is."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout, 'err': p.stderr,\n"
        "  'secs': time.monotonic() - t,\n"
        "  'kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    args = [str(CLI), "-unsigned", "-json", str(world.db), "-c", world.sync_sql()]
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(world.config, world.home),
        cwd=world.tmp,
    )
    measured = json.loads(result.stdout)
    run = Run(args, measured["rc"], measured["out"], measured["err"], measured["secs"])
    world.outputs += [run.stdout, run.stderr]
    return run.assert_ok(), measured["kib"] / 1024


@case(
    "Memory for a big manifest (issue 13, case 15)",
    "250 000 extra remote tables in the catalog, each with an MD5-like hash (a manifest of about 32 MiB); the host's "
    "peak memory beyond that of a sync of the sample alone, against the manifest's size",
)
def test_manifest_memory(world, record):
    _, base = peak_sync(world)
    n = 250_000
    tables = dict(world.catalog["tables"])
    tables.update(
        {f"t{i:08d}": {"query_mode": "remote", "rows": i, "hash": f"{i:032x}"} for i in range(n)}
    )
    world.set_catalog(tables=tables)
    size = len(json.dumps(world.manifest()).encode()) / 2**20
    run, peak = peak_sync(world)
    # Remote tables are not downloaded; at most scan_views of them get a
    # view over agnes_scan() per sync, the rest are only listed.
    remote = ("skipped_remote", "scan_view")
    assert sum(1 for a in run.actions().values() if a in remote) == n + 1
    world.check(run, BASE)
    ratio = (peak - base) / size
    print(f"\nmanifest {size:.0f} MiB: peak {peak:.0f} MiB, sample alone {base:.0f} MiB, x{ratio:.1f}")
    # Scan views (issue 15) plan over the remote tables too: a map of them.
    assert ratio < 4, (peak, base, size)
    record(
        f"the extra memory stays under {under(ratio, (4, 8, 12))} times the manifest's size (about 2 times "
        "in the debug build with the 0.84 subscription lists, where it was 10 to 13 times: 3.2 GB for a 249 MB "
        "manifest of 2 million entries, then 1.0 GB). Each entry, and each table object of the data packages, "
        "is parsed from its raw text, never a JSON tree; the "
        "manifest is freed once planned and the report row by row as its rows are made"
    )


@case(
    "After `USE other`, and inside `BEGIN … COMMIT` (issue 13, case 10)",
    "the analyst's database has `other` attached, which holds a table `orders` of its own (1 row), and "
    "runs `USE other` before `agnes_sync()`; then, in an in-memory database, `agnes_sync()` inside "
    "`BEGIN … COMMIT` (attach-at-load on, as by default)",
)
def test_views_after_use_and_in_transaction(world, record):
    other = world.tmp / "other.duckdb"
    use_other = f"ATTACH {lit(other)} AS other; USE other; "
    world.change("orders")
    run = world.run_sql(
        f"{LOAD}ATTACH {lit(other)} AS other; CREATE TABLE other.orders AS SELECT 1 AS x; USE other; "
        f"SELECT * FROM agnes_sync(server := {lit(world.server_url)}, workspace := {lit(world.ws)});"
    ).assert_ok()
    orders = run.table("orders")
    assert orders["action"] == "downloaded", orders
    view = orders["view_name"]
    assert view == '"analytics"."main"."orders"', orders
    # The name in the row finds agnes's view from `other`; the plain one is other's table.
    found = world.query(f"{use_other}SELECT (SELECT count(*) FROM {view}) AS view, (SELECT count(*) FROM orders) AS plain")
    assert found == [{"view": NEW_ROWS, "plain": 1}], found
    world.check(run, with_new("orders"))
    # One database of one schema: the plain name, as ever.
    alone = world.sync(db=world.tmp / "alone.duckdb").assert_ok()
    assert alone.table("orders")["view_name"] == "orders"
    # Inside a transaction the new view shows at COMMIT (agnes commits it on
    # its own connection); meanwhile the name answers the synced file.
    inside = world.run_sql(
        f"{LOAD}BEGIN; CREATE TEMP TABLE r AS SELECT * FROM agnes_sync(server := {lit(world.server_url)}, "
        f"workspace := {lit(world.ws)}); CREATE TEMP TABLE seen AS SELECT (SELECT count(*) FROM orders) AS n, "
        "(SELECT count(*) FROM duckdb_views() WHERE view_name = 'orders') AS views; COMMIT; "
        "SELECT n, views, (SELECT view_name FROM r WHERE table_id = 'orders') AS v, "
        "(SELECT count(*) FROM duckdb_views() WHERE view_name = 'orders') AS views_after FROM seen;",
        db=":memory:",
        # As analysts run it: the replacement scan on (the suite turns it off).
        env={"AGNES_ATTACH_ON_LOAD": "1"},
    ).assert_ok()
    assert inside.rows == [{"n": NEW_ROWS, "views": 0, "v": "orders", "views_after": 1}], inside.rows
    record(
        f"with more than one database or schema, `view_name` is the view's full name, {code(view)}: from "
        f"`other` it answers agnes's {NEW_ROWS} rows, where the plain `orders` is other's own table; with "
        "one database of one schema it stays `orders`. Views are made on agnes's own connection, in the "
        "database that loaded agnes (no API tells agnes which database the caller uses). Inside "
        "`BEGIN … COMMIT` the view appears at COMMIT, and meanwhile `orders` answers the synced file "
        "(agnes's replacement scan)"
    )


# == the table ==============================================================

DOC_HEAD = """# Reliability: faults, bad input and attacks

Generated by `test/python/test_faults.py`; do not edit by hand. A plain run of
the suite fails when this file differs from what it observed;
`AGNES_UPDATE_DOCS=1 configure/venv/bin/python -m pytest test/python/test_faults.py`
rewrites it.

Each case runs `agnes_sync` in the duckdb CLI 1.5.6 as a child process
against `agnes-server` on loopback, driven by its fault injection
(`crates/server/README.md`). Each starts from a good sync of the sample data
and checks, besides its own expectations:

1. the previous good parquet files and their views still answer queries with
   the old rows (the new ones where the case is meant to succeed);
2. the state file parses and matches the files (a state entry per parquet and
   the other way round, sizes, MD5), and no temporary `.agnes-*.part` is left;
3. the error names the table (its row) or the endpoint, and the cause;
4. the host process returned normally (exit status 0 or 1, no crash or panic);
5. the token appears in no output, error or file of the workspace, config or
   home folder other than `token.json`.

`<server>` is the server's URL, `<tmp>` the test's folder. "Disk full" and
"Parquet folder read-only" need root (a tmpfs, a read-only bind mount).

Parsers fuzzed by `proptest` (`crates/engine/tests/fuzz.rs`; `make fuzz` for a
longer run): the manifest, the memory bundle and the state file never panic.

| # | case | how it is produced | observed outcome |
| --- | --- | --- | --- |
"""


def doc_row(number: int, name: str) -> str:
    title, how = CASES[name]
    cells = [str(number), title, how, OBSERVED[name]]
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def test_reliability_doc():
    """docs/RELIABILITY.md is the table of what this run observed."""
    ran = [name for name in CASES if name in OBSERVED]
    if not ran:
        pytest.skip("no case ran")
    rows = {name: doc_row(i, name) for i, name in enumerate(CASES, 1) if name in OBSERVED}
    if len(ran) == len(CASES):
        text = DOC_HEAD + "\n".join(rows.values()) + "\n"
        if os.environ.get("AGNES_UPDATE_DOCS") == "1":
            DOC.parent.mkdir(exist_ok=True)
            DOC.write_text(text)
            return
        assert DOC.is_file() and DOC.read_text() == text, (
            "docs/RELIABILITY.md differs from what the suite observed; rerun with "
            "AGNES_UPDATE_DOCS=1 to rewrite it, and review the diff"
        )
    else:
        # Some cases were skipped or deselected: the rows of those that ran
        # must agree (or are rewritten, in place).
        current = DOC.read_text() if DOC.is_file() else ""
        if os.environ.get("AGNES_UPDATE_DOCS") == "1" and current:
            lines = current.splitlines()
            for row in rows.values():
                prefix = row.split(" | ", 2)[0] + " | " + row.split(" | ", 2)[1] + " | "
                if any(line.startswith(prefix) for line in lines):
                    lines = [row if line.startswith(prefix) else line for line in lines]
                else:
                    # A new case: its row goes after the last row numbered before it.
                    number = int(row.split(" | ")[0].lstrip("| "))
                    at = max(
                        (i + 1 for i, line in enumerate(lines)
                         if re.match(r"\| (\d+) \|", line) and int(line.split(" | ")[0].lstrip("| ")) < number),
                        default=len(lines),
                    )
                    lines.insert(at, row)
            DOC.write_text("\n".join(lines) + "\n")
            return
        stale = [name for name, row in rows.items() if row not in current]
        assert not stale, f"docs/RELIABILITY.md disagrees on {stale}; rerun with AGNES_UPDATE_DOCS=1"
