#!/usr/bin/env python3
"""Run `test/sql/*.test` files, DuckDB's sqllogictest dialect, on the `duckdb`
Python package of the interpreter that runs this script.

Supported records (as in DuckDB's own runner):

    # comment
    require agnes                   load the extension under test
    require-env VAR [VALUE]         skip the file unless VAR is set (to VALUE)
    statement ok                    the SQL must succeed
    statement error                 the SQL must fail; after `----` the message
                                    it must contain (`<REGEX>:pattern` for a regex)
    query ITR [nosort|rowsort|valuesort]
                                    one letter per column (I integer, R real,
                                    T anything); expected rows after `----`,
                                    values separated by tabs; a value
                                    `<REGEX>:pattern` must match whole
    load PATH [readonly]            reopen the session on a database file,
                                    deleted first unless `readonly` (then
                                    opened read-only, as it is)
    restart                         reopen the session on the same database
    mode skip / mode unskip         ignore the records in between
    halt                            stop the file here

As in DuckDB's runner, a one-line record (require, require-env, load, ...)
is followed by an empty line or a comment.

`${VAR}` is replaced by the value of a variable the file declared with
`require-env VAR` (DuckDB's runner replaces nothing else; using one
undeclared fails here), `__TEST_DIR__` by a fresh directory per file. Values
print as DuckDB's runner prints them: NULL, true/false, `(empty)` for the
empty string.

Files run from the repository root, as under DuckDB's runner. Each file
runs in a fresh in-memory database, hermetically: the AGNES_* and
DA_* variables of the caller are removed, AGNES_CONFIG_DIR points at
`__TEST_DIR__/config` and AGNES_LOCAL_DIR at `__TEST_DIR__/ws`. That
workspace exists with the folders a real one has (`user/sessions/`,
`user/duckdb/`, `.claude/`) and no files, since `COPY ... TO` cannot create
folders. The extension runs in this process, so it sees exactly that
environment. When a file needs the local Agnes server
(`require-env AGNES_TEST_SERVER`), the runner starts one per file on fresh
sample data and exports AGNES_TEST_SERVER (URL), AGNES_TEST_DATA (its
folder), AGNES_TEST_ADMIN, AGNES_TEST_REQUESTS (the server's request log, one
JSON line per request: `read_json('${AGNES_TEST_REQUESTS}')`),
AGNES_TEST_STORE (its object store's URL, empty in may2026 mode), and
AGNES_SERVER / AGNES_TOKEN so that a plain `agnes_sync()` talks to it.

The server behaves as today's Agnes (0.84) or as May 2026's (`may2026`):
`--server-mode` sets the default for the run (make test-sql runs one DuckDB
version against each). Two variables are set by a file rather than checked,
when it names them with a value before the server starts:
`require-env AGNES_TEST_SERVER_MODE may2026` pins the file's server mode, and
`require-env AGNES_TEST_ALLOW_LOOPBACK_SIGNED_URLS 1` opts the file in to
signed URLs on the loopback object store (nothing else may set it).

A skipped file is a failure under --strict (what `make test` uses): a test
that did not run proves nothing.

The community build runs DuckDB's own runner from the repository root
with the variables of description.yml's `test_config` set
(scripts/community_test_env.py): they point agnes at a synced workspace
checked in under test/fixtures/synced/, which the files that test agnes
without a server read. A file names each with its value
(`require-env AGNES_LOCAL_DIR test/fixtures/synced/workspace`), and this
runner then sets it for that file too. Those files only read the fixture:
a file that changes anything under test/fixtures/synced/ fails.

With --plain the runner sees a file as DuckDB's own runner does in the
community build: it starts no server and sets only the community build's
variables (the caller's AGNES_* variables are removed all the same), so
every file that needs the server must skip, and the others must pass.
`--min-passed N` fails the run unless at least N files passed: how many
files the community build really runs is checked on every change.

Exit status 0 when every file passed, 1 otherwise. The last line reads
`sqllogictest: N passed, N failed, N skipped`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "scripts"))

import community_test_env  # noqa: E402


# Variables that tell the runner where its tools are, not the client what to do.
INFRASTRUCTURE = {"AGNES_SERVER_BIN"}

# Variables a file sets with `require-env NAME VALUE` instead of checking them.
SET_BY_FILE = {"AGNES_TEST_SERVER_MODE", "AGNES_TEST_ALLOW_LOOPBACK_SIGNED_URLS"}

# The folders of a real workspace (CONTRACT.md section 3), made before each file.
WORKSPACE_FOLDERS = ("user/sessions", "user/duckdb", ".claude")

# The synced workspace the server-free files read, never write.
FIXTURE = REPO / "test" / "fixtures" / "synced"


class Skip(Exception):
    """The file asked to be skipped (e.g. a missing `require-env`)."""


class Failure(Exception):
    """A record did not behave as expected."""


@dataclass
class Record:
    line: int
    kind: str  # statement_ok, statement_error, query, require, require_env, load, restart, halt
    args: list[str]
    sql: str = ""
    expected: list[str] = field(default_factory=list)
    has_expected: bool = False


def parse(text: str) -> list[Record]:
    """Splits a .test file into records: a header line, SQL, `----`, expectation."""
    records: list[Record] = []
    lines = text.splitlines()
    i = 0
    skipping = False
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        words = stripped.split()
        head, args, start = words[0], words[1:], i + 1
        i += 1
        if head not in ("statement", "query") and i < len(lines):
            following = lines[i].strip()
            if following and not following.startswith("#"):
                # DuckDB's runner refuses the file otherwise.
                raise ValueError(f"line {start + 1}: records must be separated by an empty line")
        if head == "mode":
            skipping = args[:1] == ["skip"]
            continue
        if head in ("statement", "query"):
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != "----" and lines[i].strip():
                body.append(lines[i])
                i += 1
            expected: list[str] = []
            has_expected = False
            if i < len(lines) and lines[i].strip() == "----":
                has_expected = True
                i += 1
                while i < len(lines) and lines[i].strip():
                    expected.append(lines[i])
                    i += 1
            if head == "statement":
                if args[:1] not in (["ok"], ["error"]):
                    raise ValueError(f"line {start}: statement must be 'ok' or 'error', got {args}")
                kind = "statement_" + args[0]
            else:
                if not args:
                    raise ValueError(f"line {start}: query needs its column types, e.g. 'query IT'")
                kind = "query"
            rec = Record(start, kind, args, "\n".join(body), expected, has_expected)
        elif head in ("require", "require-env", "load", "restart", "halt"):
            rec = Record(start, head.replace("-", "_"), args)
        else:
            raise ValueError(f"line {start}: unknown record {head!r}")
        if not skipping:
            records.append(rec)
    return records


def substitute(text: str, env: dict[str, str], declared: set[str]) -> str:
    def var(m: re.Match) -> str:
        name = m.group(1)
        if name not in declared:
            raise Failure(f"${{{name}}} is used but not declared: add `require-env {name}` before it")
        return env[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", var, text).replace("__TEST_DIR__", env["__TEST_DIR__"])


def render(value) -> str:
    """A value as DuckDB's sqllogictest prints it."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "(empty)"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def check_types(types: str, row: tuple, rec: Record) -> None:
    for letter, value in zip(types, row):
        if value is None:
            continue
        if letter == "I" and not isinstance(value, int):
            raise Failure(f"column type I expects an integer, got {value!r}")
        if letter == "R" and not isinstance(value, (int, float, Decimal)):
            raise Failure(f"column type R expects a number, got {value!r}")


class Session:
    """One DuckDB database for a test file, reopened by `load` / `restart`."""

    def __init__(self, extension: Path):
        self.extension = extension
        self.path = ":memory:"
        self.read_only = False
        self.loaded_agnes = False
        self.con = self._connect()

    def _connect(self):
        return duckdb.connect(self.path, read_only=self.read_only, config={"allow_unsigned_extensions": "true"})

    def reopen(self, path: str | None = None, read_only: bool = False) -> None:
        self.con.close()
        if path is not None:
            self.path, self.read_only = path, read_only
            if not read_only and path != ":memory:":
                # As DuckDB's runner: `load` starts from an empty file.
                for stale in (Path(path), Path(path + ".wal")):
                    stale.unlink(missing_ok=True)
        self.con = self._connect()
        if self.loaded_agnes:
            self.load_agnes()

    def load_agnes(self) -> None:
        self.con.execute(f"LOAD '{self.extension}'")
        self.loaded_agnes = True

    def close(self) -> None:
        self.con.close()


def run_record(session: Session, rec: Record, env: dict[str, str], declared: set[str]) -> None:
    sql = substitute(rec.sql, env, declared)
    if rec.kind == "statement_ok":
        try:
            session.con.execute(sql)
        except duckdb.Error as e:
            raise Failure(f"statement failed: {e}")
    elif rec.kind == "statement_error":
        try:
            session.con.execute(sql)
        except duckdb.Error as e:
            expect = substitute("\n".join(rec.expected), env, declared).strip()
            message = str(e)
            if expect.startswith("<REGEX>:"):
                if not re.search(expect[len("<REGEX>:"):], message, re.S):
                    raise Failure(f"error does not match\n  expected: {expect}\n  actual:   {message}")
            elif expect not in message:
                raise Failure(f"error does not contain the expected text\n  expected: {expect}\n  actual:   {message}")
            return
        raise Failure("statement succeeded but an error was expected")
    elif rec.kind == "query":
        run_query(session, rec, sql, env, declared)


def run_query(session: Session, rec: Record, sql: str, env: dict[str, str], declared: set[str]) -> None:
    types, sort = rec.args[0], (rec.args[1] if len(rec.args) > 1 else "nosort")
    try:
        rows = session.con.execute(sql).fetchall()
    except duckdb.Error as e:
        raise Failure(f"query failed: {e}")
    if rows and len(rows[0]) != len(types):
        raise Failure(f"query returned {len(rows[0])} columns, the record declares {len(types)} ({types})")
    for row in rows:
        check_types(types, row, rec)
    actual = [[render(v) for v in row] for row in rows]
    expected = [substitute(line, env, declared).split("\t") for line in rec.expected]
    if sort == "rowsort":
        actual.sort()
        expected.sort()
    elif sort == "valuesort":
        actual = [[v] for v in sorted(v for row in actual for v in row)]
        expected = [[v] for v in sorted(v for row in expected for v in row)]
    if not rows_match(actual, expected):
        show = lambda table: "\n".join("    " + "\t".join(r) for r in table) or "    (no rows)"
        raise Failure(f"wrong result\n  expected:\n{show(expected)}\n  actual:\n{show(actual)}")


def cell_matches(actual: str, expected: str) -> bool:
    """A value matches literally, or `<REGEX>:pattern` matches it whole."""
    if expected.startswith("<REGEX>:"):
        return re.fullmatch(expected[len("<REGEX>:"):], actual, re.S) is not None
    return actual == expected


def rows_match(actual: list[list[str]], expected: list[list[str]]) -> bool:
    return len(actual) == len(expected) and all(
        len(a) == len(e) and all(cell_matches(x, y) for x, y in zip(a, e)) for a, e in zip(actual, expected)
    )


def fixture_snapshot() -> dict[str, tuple[int, int]]:
    """Every path under the fixture with its size and modification time."""
    return {
        p.relative_to(FIXTURE).as_posix(): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
        for p in FIXTURE.rglob("*")
    }


def run_file(path: Path, extension: Path, plain: bool = False, server_mode: str = "0.84") -> str:
    """Runs one file; returns 'passed' or 'skipped', raises Failure."""
    before = fixture_snapshot()
    try:
        return run_records(path, extension, plain, server_mode)
    finally:
        changed = sorted(set(before.items()) ^ set(fixture_snapshot().items()))
        if changed:
            names = sorted({name for name, _ in changed})
            raise Failure(f"{path}: changed the checked-in fixture {FIXTURE.relative_to(REPO)}: {', '.join(names)}")


def run_records(path: Path, extension: Path, plain: bool, server_mode: str) -> str:
    records = parse(path.read_text(encoding="utf-8"))
    test_dir = Path(tempfile.mkdtemp(prefix="agnes-slt-"))
    saved_environ = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("AGNES_", "DA_")) and name not in INFRASTRUCTURE:
            del os.environ[name]
    community = community_test_env.read()
    if plain:
        os.environ.update(community)
    else:
        workspace = test_dir / "ws"
        for folder in WORKSPACE_FOLDERS:
            (workspace / folder).mkdir(parents=True)
        os.environ.update(AGNES_CONFIG_DIR=str(test_dir / "config"), AGNES_LOCAL_DIR=str(workspace))
    env = dict(os.environ, __TEST_DIR__=str(test_dir))
    if not plain:
        env["AGNES_TEST_SERVER_MODE"] = server_mode
    declared: set[str] = set()
    servers = []
    session = Session(extension)
    current: Record | None = None
    try:
        for current in records:
            if current.kind == "halt":
                break
            if current.kind == "require_env":
                name, value = current.args[0], (current.args[1] if len(current.args) > 1 else None)
                if name in declared:
                    # DuckDB's runner stops with an assertion error on this.
                    raise Failure(f"require-env {name} is declared twice")
                if name in SET_BY_FILE and value is not None and not plain:
                    if name == "AGNES_TEST_SERVER_MODE" and servers:
                        raise Failure("AGNES_TEST_SERVER_MODE must come before AGNES_TEST_SERVER")
                    env[name] = value
                    if name != "AGNES_TEST_SERVER_MODE":
                        os.environ[name] = value
                if not plain and value is not None and community.get(name) == value:
                    # As the community build sets it (the synced fixture).
                    env[name] = os.environ[name] = value
                if name == "AGNES_TEST_SERVER" and name not in env and not plain:
                    servers.append(start_server(test_dir, env))
                if name not in env or (value is not None and env[name] != value):
                    raise Skip(f"require-env {' '.join(current.args)}")
                declared.add(name)
            elif current.kind == "require":
                if current.args == ["agnes"]:
                    session.load_agnes()
                else:
                    session.con.execute(f"LOAD {current.args[0]}")
            elif current.kind == "load":
                path = substitute(current.args[0], env, declared) if current.args else ":memory:"
                session.reopen(path, read_only=current.args[1:] == ["readonly"])
            elif current.kind == "restart":
                session.reopen()
            else:
                run_record(session, current, env, declared)
        return "passed"
    except Skip:
        raise
    except Failure as e:
        rec = current
        raise Failure(f"{path}:{rec.line}: {e}\n  SQL:\n" + "\n".join("    " + l for l in rec.sql.splitlines()))
    except duckdb.Error as e:
        raise Failure(f"{path}:{current.line}: {e}")
    except Skip:
        raise
    except Exception as e:  # a server that does not start, a bad fixture
        raise Failure(f"{path}:{current.line if current else 0}: {type(e).__name__}: {e}")
    finally:
        session.close()
        for server in servers:
            server.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
        shutil.rmtree(test_dir, ignore_errors=True)


def start_server(test_dir: Path, env: dict[str, str]):
    """A local Agnes server on fresh sample data, for this file only."""
    from agnes_testkit.sample import make_sample
    from agnes_testkit.server import LocalServer

    data = test_dir / "server-data"
    make_sample(data)
    server = LocalServer(data, mode=env["AGNES_TEST_SERVER_MODE"])
    server.start()
    exported = dict(
        AGNES_TEST_SERVER=server.url,
        AGNES_TEST_STORE=server.store_url() or "",
        AGNES_TEST_DATA=str(data),
        AGNES_TEST_ADMIN=server.url + "/admin",
        AGNES_TEST_REQUESTS=str(server.request_log),
        AGNES_SERVER=server.url,
        AGNES_TOKEN="demo-token",
    )
    env.update(exported)
    os.environ.update(exported)
    return server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path, help=".test files or folders of them")
    ap.add_argument("--extension", type=Path, default=REPO / "build/debug/agnes.duckdb_extension")
    ap.add_argument("--strict", action="store_true", help="count skipped files as failures")
    ap.add_argument(
        "--plain",
        action="store_true",
        help="as DuckDB's own runner in the community build: no local server, "
        "only description.yml's test variables set",
    )
    ap.add_argument(
        "--server-mode",
        choices=["0.84", "may2026"],
        default="0.84",
        help="the Agnes server the local server behaves as, unless a file pins it",
    )
    ap.add_argument(
        "--min-passed",
        type=int,
        default=0,
        metavar="N",
        help="fail unless at least N files passed (not skipped)",
    )
    args = ap.parse_args()

    extension = args.extension.resolve()
    found = sorted(f.resolve() for p in args.paths for f in (p.rglob("*.test") if p.is_dir() else [p]))
    # From the repository root, where DuckDB's runner runs too: the files
    # name the fixture by paths relative to it.
    os.chdir(REPO)
    files = [f.relative_to(REPO) if f.is_relative_to(REPO) else f for f in found]
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    print(
        f"sqllogictest: DuckDB {duckdb.__version__}, {len(files)} files, extension {extension}, "
        f"server mode {args.server_mode}"
    )
    for f in files:
        try:
            outcome = run_file(f, extension, plain=args.plain, server_mode=args.server_mode)
            print(f"  ok      {f}")
        except Skip as e:
            outcome = "skipped"
            print(f"  SKIPPED {f}: {e}")
        except (Failure, ValueError) as e:
            outcome = "failed"
            print(f"  FAILED  {f}\n{e}")
        counts[outcome] += 1
    print(f"sqllogictest: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    if counts["passed"] < args.min_passed:
        print(f"sqllogictest: only {counts['passed']} files passed, at least {args.min_passed} must")
    bad = counts["failed"] or not files or (args.strict and counts["skipped"]) or counts["passed"] < args.min_passed
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
