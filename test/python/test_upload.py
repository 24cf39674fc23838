"""agnes_upload() against agnes-server misbehaving on purpose: what the SQL
tests cannot set up (server faults, unreadable files). The happy paths are in
test/sql/upload_*.test."""

import os
from pathlib import Path

import duckdb
import pytest

from agnes_testkit import DEMO_TOKEN

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    (ws / "user" / "sessions").mkdir(parents=True)
    (ws / ".claude").mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (ws / "user" / "sessions" / name).write_text(f'{{"file": "{name}"}}\n')
    (ws / ".claude" / "CLAUDE.local.md").write_text("notes\n")
    return ws


@pytest.fixture
def con():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    yield con
    con.close()


def upload(con, server, ws, **params):
    args = {"server": server.url, "token": DEMO_TOKEN, "workspace": str(ws), "new_workspace": True, **params}
    sql = "SELECT parse_filename(path), action, error FROM agnes_upload(" + ", ".join(
        f"{k} := ?" for k in args) + ")"
    return con.execute(sql, list(args.values())).fetchall()


def uploads(server):
    return [r for r in server.requests() if r["path"].startswith("/api/upload/")]


def test_a_413_from_the_server_fails_that_file_alone_and_is_not_retried(con, server, workspace):
    server.set_faults([{"endpoint": "upload", "kind": "status", "status": 413, "times": 1}])
    rows = upload(con, server, workspace)
    assert [r[:2] for r in rows] == [("a.jsonl", "failed"), ("b.jsonl", "uploaded"),
                                     ("CLAUDE.local.md", "uploaded")]
    assert "HTTP 413" in rows[0][2]
    assert len(uploads(server)) == 3
    # Not recorded as sent: the next run tries it again.
    assert [r[:2] for r in upload(con, server, workspace)] == [
        ("a.jsonl", "uploaded"), ("b.jsonl", "unchanged"), ("CLAUDE.local.md", "unchanged")]


def test_a_5xx_is_retried_and_the_file_goes(con, server, workspace):
    server.set_faults([{"endpoint": "upload", "kind": "status", "status": 503, "times": 2}])
    rows = upload(con, server, workspace)
    assert [r[1] for r in rows] == ["uploaded"] * 3
    assert [r["status"] for r in uploads(server)] == [503, 503, 200, 200, 200]
    stored = server.uploads_dir / "analyst" / "sessions" / "a.jsonl"
    assert stored.read_bytes() == (workspace / "user" / "sessions" / "a.jsonl").read_bytes()


def test_other_4xx_are_not_retried(con, server, workspace):
    server.set_faults([{"endpoint": "upload", "kind": "status", "status": 422, "times": 1}])
    rows = upload(con, server, workspace)
    assert [r[1] for r in rows] == ["failed", "uploaded", "uploaded"]
    assert "HTTP 422" in rows[0][2]
    assert len(uploads(server)) == 3


def test_a_server_failing_for_good_costs_one_file_of_retries(con, server, workspace):
    server.set_faults([{"endpoint": "upload", "kind": "status", "status": 500}])
    rows = upload(con, server, workspace)
    assert [r[1] for r in rows] == ["failed"] * 3
    assert "HTTP 500" in rows[0][2] and "after 4 attempts" in rows[0][2]
    assert all(r[2].startswith("not sent: the upload of a.jsonl failed before") for r in rows[1:])
    assert len(uploads(server)) == 4


def test_a_200_that_is_not_the_confirmation_is_not_taken_as_stored(con, server, workspace):
    server.set_faults([{"endpoint": "upload", "kind": "body", "body": "<html>proxy login</html>",
                        "times": 1}])
    rows = upload(con, server, workspace)
    assert rows[0][1] == "failed" and "proxy login" in rows[0][2], rows
    assert [r[1] for r in upload(con, server, workspace)] == ["uploaded", "unchanged", "unchanged"]


def test_a_symlinked_transcript_is_skipped_alone_and_never_followed(con, server, workspace):
    sessions = workspace / "user" / "sessions"
    os.symlink(sessions / "gone", sessions / "broken.jsonl")
    secret = workspace / "secret.txt"
    secret.write_text("ssh key\n")
    os.symlink(secret, sessions / "leak.jsonl")
    (sessions / "folder.jsonl").mkdir()
    rows = con.execute(
        "SELECT parse_filename(path), action, note FROM agnes_upload(server := ?, token := ?, workspace := ?, new_workspace := true)",
        [server.url, DEMO_TOKEN, str(workspace)]).fetchall()
    assert [r[:2] for r in rows] == [("a.jsonl", "uploaded"), ("b.jsonl", "uploaded"),
                                     ("broken.jsonl", "skipped"), ("leak.jsonl", "skipped"),
                                     ("CLAUDE.local.md", "uploaded")]
    assert rows[2][2] == rows[3][2] == "a symbolic link: skipped, never followed"
    stored = sorted(p.name for p in (server.uploads_dir / "analyst" / "sessions").iterdir())
    assert stored == ["a.jsonl", "b.jsonl"]
    assert len([r for r in uploads(server) if r["path"] == "/api/upload/sessions"]) == 2


def test_a_401_on_the_notes_stops_the_call(con, server, workspace):
    server.set_faults([{"endpoint": "upload", "kind": "status", "status": 401,
                        "body": '{"detail": "Missing or invalid Authorization header"}',
                        "content_type": "application/json", "times": 1}])
    (workspace / "user" / "sessions" / "a.jsonl").unlink()
    (workspace / "user" / "sessions" / "b.jsonl").unlink()
    with pytest.raises(duckdb.Error, match=r"local-md refused the token \(401\)"):
        upload(con, server, workspace)
    assert len(uploads(server)) == 1


def test_lock_timeout_bounds_the_wait_for_another_run(con, server, workspace):
    """`lock_timeout` (seconds) as in agnes_sync(): `da`'s detached runs wait
    longer; anyone may wait less."""
    import fcntl
    import time

    lock = workspace / ".agnes" / "lock"
    lock.parent.mkdir()
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(duckdb.Error, match=r"another agnes sync is running .* \(waited 0\.5 s\)"):
            upload(con, server, workspace, lock_timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 5
    assert uploads(server) == []
    with pytest.raises(duckdb.Error, match="lock_timeout must be a number of seconds between 0 and 86400"):
        upload(con, server, workspace, lock_timeout=-1)
    assert [r[1] for r in upload(con, server, workspace, lock_timeout=0)] == ["uploaded"] * 3


def test_the_notes_leave_without_jwts_or_the_token(con, server, workspace):
    # CONTRACT.md §7.9: CLAUDE.local.md is scrubbed as transcripts are.
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmFseXN0In0.c2lnbmF0dXJlLXBhcnQ"
    notes = f"# notes\npasted: {jwt}\nmy token: {DEMO_TOKEN}\nkept: a line\n"
    (workspace / ".claude" / "CLAUDE.local.md").write_text(notes)
    rows = upload(con, server, workspace)
    assert ("CLAUDE.local.md", "uploaded") in [r[:2] for r in rows], rows
    stored = [p.read_text() for p in server.uploads_dir.rglob("CLAUDE.local.md")]
    assert len(stored) == 1, stored
    assert jwt not in stored[0] and DEMO_TOKEN not in stored[0], stored
    assert "[REDACTED_JWT]" in stored[0] and "kept: a line" in stored[0], stored
    # The file on disk is the user's, untouched; unchanged, it is not sent again.
    assert (workspace / ".claude" / "CLAUDE.local.md").read_text() == notes
    assert ("CLAUDE.local.md", "unchanged") in [r[:2] for r in upload(con, server, workspace)]
