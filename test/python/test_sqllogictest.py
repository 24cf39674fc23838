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
        ("query T\nSELECT '${SLT_UNSET}'\n----\nx\n", ["SLT_UNSET", "is not set"]),
    ],
)
def test_wrong_expectation_fails_and_says_where(tmp_path, bad, shown):
    result = run(tmp_path, "statement ok\nSELECT 1\n\n" + bad)
    assert result.returncode == 1
    assert "0 passed, 1 failed" in result.stdout
    assert "case.test:4:" in result.stdout, result.stdout
    for text in shown:
        assert text in result.stdout, result.stdout


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
