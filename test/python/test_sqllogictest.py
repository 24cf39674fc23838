"""The sqllogictest runner must fail on a wrong expectation and say where."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "test" / "sqllogictest.py"


def run(tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    test = tmp_path / "case.test"
    test.write_text(text)
    return subprocess.run(
        [sys.executable, str(RUNNER), *extra, str(test)],
        capture_output=True,
        text=True,
        env=dict(os.environ, SLT_VAR="forty-two"),
    )


GOOD = """
# a comment
require-env SLT_VAR

statement ok
CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a', NULL), (2, '', 2.5)) v(i, s, r)

query ITR rowsort
SELECT i, s, r FROM t
----
2	(empty)	2.5
1	a	NULL

query T
SELECT '${SLT_VAR}'
----
forty-two

query I
SELECT true
----
true

query TI
SELECT md5('x'), 12
----
<REGEX>:^[0-9a-f]{32}$	12

statement error
SELECT * FROM missing_table
----
missing_table

statement error
SELECT 1/'x'
----
<REGEX>:Could not convert.*x
"""


def test_passing_file_passes(tmp_path):
    result = run(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed, 0 skipped" in result.stdout


@pytest.mark.parametrize(
    "bad, shown",
    [
        ("query I\nSELECT 41 + 1\n----\n41\n", ["expected:", "41", "actual:", "42"]),
        ("query II\nSELECT 1\n----\n1\t1\n", ["returned 1 columns", "declares 2"]),
        ("query T\nSELECT 'abc'\n----\n<REGEX>:^b.*\n", ["expected:", "<REGEX>:^b.*", "abc"]),
        ("query I\nSELECT 'text'\n----\ntext\n", ["column type I expects an integer"]),
        ("statement ok\nSELECT * FROM nowhere\n", ["statement failed", "nowhere"]),
        ("statement error\nSELECT 1\n----\nanything\n", ["succeeded but an error was expected"]),
        ("statement error\nSELECT * FROM nowhere\n----\nsome other message\n", ["some other message"]),
        ("query T\nSELECT '${SLT_VAR}'\n----\nforty-two\n", ["SLT_VAR", "not declared", "require-env SLT_VAR"]),
        ("query T\nSELECT '${SLT_UNSET}'\n----\nx\n", ["SLT_UNSET", "not declared"]),
    ],
)
def test_wrong_expectation_fails_and_says_where(tmp_path, bad, shown):
    result = run(tmp_path, "statement ok\nSELECT 1\n\n" + bad)
    assert result.returncode == 1
    assert "0 passed, 1 failed" in result.stdout
    assert "case.test:4:" in result.stdout, result.stdout
    for text in shown:
        assert text in result.stdout, result.stdout


def test_a_variable_declared_twice_fails(tmp_path):
    # DuckDB's runner stops on an assertion there; say so plainly here.
    result = run(tmp_path, "require-env SLT_VAR\n\nrequire-env SLT_VAR\n\nquery I\nSELECT 1\n----\n1\n")
    assert result.returncode == 1
    assert "case.test:3: require-env SLT_VAR is declared twice" in result.stdout, result.stdout


def test_one_line_records_need_an_empty_line_after_them(tmp_path):
    # DuckDB's runner refuses such a file, so agnes's does too.
    result = run(tmp_path, "require-env SLT_VAR\nrequire-env HOME\n\nquery I\nSELECT 1\n----\n1\n")
    assert result.returncode == 1
    assert "line 2: records must be separated by an empty line" in result.stdout, result.stdout
    commented = run(tmp_path, "require-env SLT_VAR\n# why HOME\nrequire-env HOME\n\nquery I\nSELECT 1\n----\n1\n")
    assert commented.returncode == 0, commented.stdout


def test_skip_is_a_failure_when_strict(tmp_path):
    text = "require-env SLT_NEVER_SET\n\nquery I\nSELECT 1\n----\n1\n"
    lenient = run(tmp_path, text)
    assert lenient.returncode == 0 and "0 passed, 0 failed, 1 skipped" in lenient.stdout
    strict = run(tmp_path, text, "--strict")
    assert strict.returncode == 1


def test_restart_keeps_a_file_database(tmp_path):
    text = """
load __TEST_DIR__/db.duckdb

statement ok
CREATE TABLE kept AS SELECT 7 AS v

restart

query I
SELECT v FROM kept
----
7
"""
    result = run(tmp_path, text)
    assert result.returncode == 0, result.stdout


def test_no_files_is_a_failure(tmp_path):
    result = subprocess.run([sys.executable, str(RUNNER), str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1


def test_plain_starts_no_server_and_sets_only_the_community_variables(tmp_path):
    """--plain is DuckDB's own runner as the community build runs it: no
    agnes server, no workspace of the runner's own, only the variables of
    description.yml's test_config (the synced fixture); without --plain the
    runner provides a fresh workspace, and the fixture to a file that names it."""
    needs_workspace = "require-env AGNES_LOCAL_DIR\n\nquery T\nSELECT '${AGNES_LOCAL_DIR}'\n----\n<REGEX>:.*agnes-slt-.*ws\n"
    provided = run(tmp_path, needs_workspace, "--strict")
    assert provided.returncode == 0 and "1 passed, 0 failed, 0 skipped" in provided.stdout, provided.stdout
    plain = run(tmp_path, needs_workspace, "--plain")
    assert "0 passed, 1 failed" in plain.stdout and "test/fixtures/synced/workspace" in plain.stdout, plain.stdout

    names_fixture = (
        "require-env AGNES_LOCAL_DIR test/fixtures/synced/workspace\n\n"
        "query T\nSELECT '${AGNES_LOCAL_DIR}'\n----\ntest/fixtures/synced/workspace\n"
    )
    for mode in ("--plain", "--strict"):
        result = run(tmp_path, names_fixture, mode)
        assert "1 passed, 0 failed, 0 skipped" in result.stdout, (mode, result.stdout)

    needs_server = "require-env AGNES_TEST_SERVER\n\nquery I\nSELECT 1\n----\n1\n"
    plain = run(tmp_path, needs_server, "--plain")
    assert "0 passed, 0 failed, 1 skipped" in plain.stdout, plain.stdout
    pinned = "require-env AGNES_TEST_SERVER_MODE\n\nquery I\nSELECT 1\n----\n1\n"
    assert "1 skipped" in run(tmp_path, pinned, "--plain").stdout


def test_a_file_that_changes_the_fixture_fails(tmp_path):
    """The synced fixture is read by every runner; a file that writes there
    (here an online sync, which takes the workspace's lock) fails, and says what changed."""
    extension = REPO / "build" / "debug" / "agnes.duckdb_extension"
    lock = REPO / "test" / "fixtures" / "synced" / "workspace" / ".agnes" / "lock"
    text = (
        "require-env AGNES_LOCAL_DIR test/fixtures/synced/workspace\n\n"
        "require-env AGNES_CONFIG_DIR test/fixtures/synced/config\n\n"
        "require agnes\n\n"
        "statement error\nSELECT * FROM agnes_sync(server := 'http://127.0.0.1:9', token := 't')\n----\nmanifest fetch\n"
    )
    try:
        result = run(tmp_path, text, "--plain", "--extension", str(extension))
    finally:
        lock.unlink(missing_ok=True)
    assert result.returncode == 1
    assert "changed the checked-in fixture test/fixtures/synced: workspace/.agnes" in result.stdout, result.stdout
    assert "workspace/.agnes/lock" in result.stdout


def test_min_passed_fails_a_run_with_fewer(tmp_path):
    one = "query I\nSELECT 1\n----\n1\n"
    assert run(tmp_path, one, "--min-passed", "1").returncode == 0
    short = run(tmp_path, one, "--min-passed", "2")
    assert short.returncode == 1
    assert "only 1 files passed, at least 2 must" in short.stdout, short.stdout


def test_load_readonly_reopens_a_file_as_it_is(tmp_path):
    """`load PATH` starts from an empty file, as in DuckDB's runner;
    `load PATH readonly` opens the one there, read-only."""
    text = """
load __TEST_DIR__/db.duckdb

statement ok
CREATE TABLE kept AS SELECT 7 AS v

load __TEST_DIR__/db.duckdb readonly

query I
SELECT v FROM kept
----
7

statement error
CREATE TABLE other AS SELECT 1
----
read-only

load __TEST_DIR__/db.duckdb

statement error
SELECT v FROM kept
----
kept
"""
    result = run(tmp_path, text)
    assert result.returncode == 0, result.stdout


SQL_TESTS = REPO / "test" / "sql"


def community_variables() -> dict[str, str]:
    sys.path.insert(0, str(REPO / "scripts"))
    import community_test_env

    return community_test_env.read()


def declared_variables(test: Path) -> list[tuple[str, ...]]:
    return [tuple(line.split()[1:]) for line in test.read_text().splitlines() if line.startswith("require-env ")]


def test_sql_suite_as_the_community_build_runs_it(tmp_path):
    """The SQL tests as DuckDB's runner sees them in the community build:
    each file that needs agnes's server (any variable but the community
    build's own, with its value) skips, the rest pass, none fails, and
    nothing is written where the runner was started."""
    extension = REPO / "build" / "debug" / "agnes.duckdb_extension"
    community = set(community_variables().items())
    files = sorted(SQL_TESTS.glob("*.test"))
    needing = [f for f in files if not set(declared_variables(f)) <= community]
    assert needing and len(needing) < len(files)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "DA_"))}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run(
        [sys.executable, str(RUNNER), "--plain", "--extension", str(extension), str(SQL_TESTS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = f"{len(files) - len(needing)} passed, 0 failed, {len(needing)} skipped"
    assert expected in result.stdout, result.stdout
    for f in needing:
        assert f"SKIPPED {f.relative_to(REPO)}" in result.stdout, f
    assert list(cwd.iterdir()) == []
