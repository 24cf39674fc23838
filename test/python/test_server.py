"""agnes-server over real sockets: every endpoint of the contract
(shared/CONTRACT.md section 1), every fault mode, and the admin API.

Standard library HTTP only (http.client, socket), so what is checked is what
goes over the wire: statuses, headers and bytes.
"""

import gzip
import hashlib
import http.client
import json
import os
import re
import time
import urllib.parse
from pathlib import Path

import duckdb
import pytest

from agnes_testkit import (
    DEMO_TOKEN,
    LIMITED_TOKEN,
    SAMPLE_CATALOG,
    LocalServer,
    ServerError,
    write_catalog,
    write_partitioned,
)
from agnes_testkit.arrow_stream import read_stream

MIB = 1024 * 1024


class Reply:
    def __init__(self, resp: http.client.HTTPResponse, body: bytes, elapsed: float):
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)


def request(server, method, path, token=DEMO_TOKEN, headers=None, body=None, conn=None):
    """One request; the body read whole. ``token=None`` sends no Authorization."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    reply = Reply(resp, data, time.monotonic() - started)
    if own:
        conn.close()
    return reply


def get(server, path, **kw):
    return request(server, "GET", path, **kw)


def manifest(server, token=DEMO_TOKEN):
    reply = get(server, "/api/sync/manifest", token=token)
    assert reply.status == 200, reply.body
    return reply.json()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def duckdb_catalog(data_dir: Path, select: str) -> None:
    """Writes catalog.json the way the tests of other components do: DuckDB's
    ``COPY (SELECT ...) TO ... (FORMAT json)``, one JSON object on one line."""
    path = str(data_dir / "catalog.json").replace("'", "''")
    duckdb.sql(f"COPY ({select}) TO '{path}' (FORMAT json)")


def multipart(filename: str, content: bytes, field="file"):
    boundary = "agnes-test-boundary-7d41"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
        f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


# -- health, manifest ------------------------------------------------------


def test_health_needs_no_token(server):
    reply = get(server, "/api/health", token=None)
    assert reply.status == 200
    assert reply.json()["status"] == "ok"
    assert reply.headers["content-type"] == "application/json"


def test_manifest_has_the_contract_shape_and_real_md5s(server, sample_dir):
    m = manifest(server)
    assert set(m) >= {"tables", "assets", "server_time"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", m["server_time"])
    assert isinstance(m["assets"]["docs"]["hash"], str) and m["assets"]["docs"]["hash"]
    tables = m["tables"]
    assert set(tables) == {"orders", "customers", "in.c-crm.people", "products", "live_orders"}
    rows = {"orders": 5000, "customers": 500, "in.c-crm.people": 300, "products": 120}
    for table_id, want_rows in rows.items():
        entry = tables[table_id]
        path = sample_dir / f"{table_id}.parquet"
        assert entry["size_bytes"] == path.stat().st_size
        assert entry["rows"] == want_rows
        assert entry["source_type"] == "keboola"
        # `updated` is UTC without an offset (contract)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?", entry["updated"])
    for table_id in ("orders", "customers", "in.c-crm.people"):
        assert tables[table_id]["hash"] == md5(sample_dir / f"{table_id}.parquet")
        assert tables[table_id]["query_mode"] == "local"
    assert tables["products"]["query_mode"] == "materialized"
    assert re.fullmatch(r"[0-9a-f]{12}", tables["products"]["hash"])
    live = tables["live_orders"]
    assert live["query_mode"] == "remote" and live["source_type"] == "bigquery"
    # As the real servers list a remote table: no hash, no size.
    assert live["hash"] == "" and live["size_bytes"] == 0


def test_manifest_is_filtered_per_token(server):
    assert set(manifest(server, LIMITED_TOKEN)["tables"]) == {"orders"}
    # The real servers' two 401s: an unknown token, no bearer token.
    for token, detail in (("no-such-token", "Invalid or expired token"),
                          (None, "Missing or invalid Authorization header")):
        reply = get(server, "/api/sync/manifest", token=token)
        assert reply.status == 401
        assert reply.json() == {"detail": detail}
    reply = get(server, "/api/sync/manifest", token=None, headers={"Authorization": "Basic x"})
    assert reply.status == 401


def test_without_users_any_token_is_dev(server, sample_dir):
    (sample_dir / "catalog.json").unlink()
    m = manifest(server, "whatever-token")
    assert "live_orders" not in m["tables"]  # it only existed in the catalog
    assert m["tables"]["products"]["hash"] == md5(sample_dir / "products.parquet")
    assert get(server, "/api/sync/manifest", token=None).status == 401
    reply = request(server, "POST", "/api/upload/local-md", token="t",
                    body=json.dumps({"content": "x"}), headers={"Content-Type": "application/json"})
    assert reply.json()["user"] == "dev"


def test_hash_follows_a_rewrite_by_duckdb(server, sample_dir):
    before = manifest(server)["tables"]["orders"]
    path = sample_dir / "orders.parquet"
    duckdb.sql(f"COPY (SELECT range AS order_id FROM range(77)) TO '{path}' (FORMAT parquet)")
    after = manifest(server)["tables"]["orders"]
    assert after["hash"] == md5(path) != before["hash"]
    assert after["rows"] == 77
    assert after["size_bytes"] == path.stat().st_size
    # the version token of `products` moves with its file too
    products = sample_dir / "products.parquet"
    old = manifest(server)["tables"]["products"]["hash"]
    duckdb.sql(f"COPY (SELECT 1 AS product_id) TO '{products}' (FORMAT parquet)")
    assert manifest(server)["tables"]["products"]["hash"] != old


def test_hash_modes_from_a_catalog_written_by_duckdb(server, sample_dir):
    duckdb_catalog(
        sample_dir,
        """SELECT {'orders': {'hash': 'empty', 'rows': NULL, 'query_mode': NULL},
                   'customers': {'hash': 'version', 'rows': NULL, 'query_mode': NULL},
                   'in.c-crm.people': {'hash': 'deadbeefdeadbeefdeadbeefdeadbeef', 'rows': 9,
                                       'query_mode': NULL},
                   'ghost': {'hash': NULL, 'rows': NULL, 'query_mode': 'remote'}} AS tables,
                  {'tok': {'name': 'carol', 'tables': ['orders', 'customers',
                                                       'in.c-crm.people', 'ghost']}} AS users""",
    )
    text = (sample_dir / "catalog.json").read_text()
    assert text.count("\n") <= 1  # one object on one line
    tables = manifest(server, "tok")["tables"]
    assert set(tables) == {"orders", "customers", "in.c-crm.people", "ghost"}
    assert tables["orders"]["hash"] == ""
    assert re.fullmatch(r"[0-9a-f]{12}", tables["customers"]["hash"])
    assert tables["in.c-crm.people"]["hash"] == "deadbeef" * 4
    assert tables["in.c-crm.people"]["rows"] == 9
    assert tables["ghost"]["query_mode"] == "remote"
    assert get(server, "/api/sync/manifest").status == 401  # demo-token is gone


def test_a_file_that_is_not_parquet_has_zero_rows(server, sample_dir):
    (sample_dir / "broken.parquet").write_bytes(b"<html>oops</html>")
    (sample_dir / "notes.txt").write_text("not a table")
    tables = manifest(server)["tables"]
    assert tables["broken"]["rows"] == 0
    assert tables["broken"]["hash"] == hashlib.md5(b"<html>oops</html>").hexdigest()
    assert "notes" not in tables and "_uploads" not in tables


def test_a_broken_catalog_is_a_500_that_names_it(server, sample_dir):
    (sample_dir / "catalog.json").write_text("{not json")
    reply = get(server, "/api/sync/manifest")
    assert reply.status == 500
    assert "catalog.json" in reply.json()["detail"]
    assert get(server, "/api/health").status == 200


def test_gzip_only_when_offered_and_only_for_big_json(server, sample_dir):
    # enough tables to push the manifest over 1 KiB
    for i in range(12):
        (sample_dir / f"extra_{i}.parquet").write_bytes(b"PAR1")
    plain = get(server, "/api/sync/manifest")
    assert "content-encoding" not in plain.headers
    assert len(plain.body) > 1024
    packed = get(server, "/api/sync/manifest", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) == len(packed.body) < len(plain.body)
    got, want = json.loads(gzip.decompress(packed.body)), plain.json()
    got.pop("server_time"), want.pop("server_time")
    assert got == want
    small = get(server, "/api/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
    # parquet is never compressed
    dl = get(server, "/api/data/orders/download", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in dl.headers
    assert dl.body == (sample_dir / "orders.parquet").read_bytes()


# -- download ----------------------------------------------------------------


def test_download_sends_the_file_with_its_headers(server, sample_dir):
    for table_id in ("orders", "in.c-crm.people", "products"):
        path = sample_dir / f"{table_id}.parquet"
        reply = get(server, f"/api/data/{table_id}/download")
        assert reply.status == 200
        assert reply.body == path.read_bytes()
        assert reply.headers["content-type"] == "application/octet-stream"
        assert int(reply.headers["content-length"]) == path.stat().st_size
        assert reply.headers["etag"] == f'"{path.stat().st_mtime_ns}"'
        assert reply.headers["content-disposition"] == (
            f'attachment; filename="{table_id}.parquet"'
        )


def test_if_none_match_gives_304_only_on_an_exact_match(server, sample_dir):
    etag = get(server, "/api/data/orders/download").headers["etag"]
    reply = get(server, "/api/data/orders/download", headers={"If-None-Match": etag})
    assert reply.status == 304 and reply.body == b""
    assert reply.headers["etag"] == etag
    for other in (etag.strip('"'), "W/" + etag, '"1"', "*"):
        reply = get(server, "/api/data/orders/download", headers={"If-None-Match": other})
        assert reply.status == 200, other
    # a rewrite changes the ETag, so the old one downloads again
    path = sample_dir / "orders.parquet"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    reply = get(server, "/api/data/orders/download", headers={"If-None-Match": etag})
    assert reply.status == 200 and reply.headers["etag"] != etag


def test_range_gives_206_with_content_range(server, sample_dir):
    data = (sample_dir / "orders.parquet").read_bytes()
    size = len(data)
    cases = {
        "bytes=10-99": (10, 99),
        "bytes=1000-": (1000, size - 1),
        "bytes=-8": (size - 8, size - 1),
        f"bytes=5-{size + 100}": (5, size - 1),
    }
    for header, (first, last) in cases.items():
        reply = get(server, "/api/data/orders/download", headers={"Range": header})
        assert reply.status == 206, header
        assert reply.body == data[first:last + 1]
        assert reply.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert int(reply.headers["content-length"]) == last - first + 1
    assert get(server, "/api/data/orders/download",
               headers={"Range": "bytes=-8"}).body[-4:] == b"PAR1"
    reply = get(server, "/api/data/orders/download", headers={"Range": f"bytes={size}-"})
    assert reply.status == 416 and reply.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize(
    "raw_id",
    ["..", ".", "%2E%2E", "a%2Fb", "..%2Fcatalog", ".hidden", "-x", "a%20b", "x" * 129,
     "caf%C3%A9", "catalog.json%00"],
)
def test_ids_outside_the_pattern_are_404(server, sample_dir, raw_id):
    (sample_dir / ".hidden.parquet").write_bytes(b"PAR1")
    reply = get(server, f"/api/data/{raw_id}/download")
    assert reply.status == 404
    assert "detail" in reply.json()


def test_missing_and_remote_tables_are_refused(server, sample_dir):
    """As the real servers: a missing table is 404 (for a user who reads
    everything); a remote one 403 on 0.84 and 404 on 0.29."""
    reply = get(server, "/api/data/nope/download")
    assert (reply.status, reply.json()) == (404, {"detail": "Table 'nope' not found"})
    reply = get(server, "/api/data/live_orders/download")
    assert reply.status == 403 and "query_mode='remote' and is not distributed" in reply.json()["detail"]
    server.stop()
    with LocalServer(sample_dir, mode="may2026") as may_server:
        reply = get(may_server, "/api/data/live_orders/download")
        assert (reply.status, reply.json()) == (404, {"detail": "Table 'live_orders' not found"})


def test_download_needs_a_token_and_a_grant(server):
    reply = get(server, "/api/data/orders/download", token=None)
    assert reply.status == 401
    assert reply.json() == {"detail": "Missing or invalid Authorization header"}
    assert get(server, "/api/data/orders/download", token=LIMITED_TOKEN).status == 200
    reply = get(server, "/api/data/customers/download", token=LIMITED_TOKEN)
    assert reply.status == 403 and reply.json()["detail"]


def test_head_is_405_and_unknown_paths_are_json_404(server):
    reply = request(server, "HEAD", "/api/data/orders/download")
    assert reply.status == 405
    reply = request(server, "POST", "/api/data/orders/download")
    assert reply.status == 405 and reply.json()["detail"]
    reply = get(server, "/api/nothing/here")
    assert reply.status == 404 and reply.json() == {"detail": "Not Found"}


def test_connections_are_kept_alive(server, sample_dir):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    get(server, "/api/sync/manifest", conn=conn)
    sock = conn.sock
    assert sock is not None
    reply = get(server, "/api/data/orders/download", conn=conn)
    assert reply.body == (sample_dir / "orders.parquet").read_bytes()
    get(server, "/api/data/nope/download", conn=conn)  # an error keeps it too
    get(server, "/api/memory/bundle", conn=conn)
    assert conn.sock is sock
    conn.close()


# -- memory bundle -----------------------------------------------------------


def test_bundle_has_the_catalog_memory(server):
    bundle = get(server, "/api/memory/bundle").json()
    assert [i["id"] for i in bundle["mandatory"]] == ["sql-style", "pii-handling"]
    assert len(bundle["approved"]) == 2
    for item in bundle["mandatory"] + bundle["approved"]:
        assert {"id", "title", "domain", "category", "content"} <= set(item)
    assert isinstance(bundle["token_estimate"], int) and bundle["token_estimate"] > 0
    assert isinstance(bundle["token_budget"], int)
    assert get(server, "/api/memory/bundle", token="bad").status == 401


# -- uploads -----------------------------------------------------------------


def test_session_upload_is_stored_per_user_under_its_base_name(server, sample_dir):
    content = b'{"type": "user", "text": "hello"}\n' * 100
    body, ctype = multipart("../../etc/evil/session-1.jsonl", content)
    # Today's server refuses a name outside [A-Za-z0-9._-]{1,200}; May's took
    # any and kept its last component.
    reply = request(server, "POST", "/api/upload/sessions", body=body,
                    headers={"Content-Type": ctype})
    assert reply.status == 400 and reply.json()["detail"] == "filename must match [A-Za-z0-9._-]{1,200}"
    server.stop()
    server = LocalServer(sample_dir, mode="may2026").start()
    reply = request(server, "POST", "/api/upload/sessions", body=body,
                    headers={"Content-Type": ctype})
    assert reply.status == 200
    assert reply.json() == {"status": "ok", "filename": "session-1.jsonl", "size": len(content)}
    stored = server.uploads_dir / "analyst" / "sessions" / "session-1.jsonl"
    assert stored.read_bytes() == content
    # overwrite, and another user's folder
    body, ctype = multipart("session-1.jsonl", b"v2")
    request(server, "POST", "/api/upload/sessions", body=body, headers={"Content-Type": ctype})
    assert stored.read_bytes() == b"v2"
    request(server, "POST", "/api/upload/sessions", token=LIMITED_TOKEN, body=body,
            headers={"Content-Type": ctype})
    assert (server.uploads_dir / "guest" / "sessions" / "session-1.jsonl").read_bytes() == b"v2"
    leftovers = [p.name for p in stored.parent.iterdir() if p.name.endswith(".part")]
    assert leftovers == []
    server.stop()


def test_uploads_are_never_served_as_a_partitioned_table(sample_dir):
    """A 0.84 server serves a folder's parts; the uploads folder is not a
    table, whoever asks and whatever part they name."""
    with LocalServer(sample_dir, mode="0.84") as server:
        body, ctype = multipart("session-1.jsonl", b'{"secret": 1}\n')
        reply = request(server, "POST", "/api/upload/sessions", body=body,
                        headers={"Content-Type": ctype})
        assert reply.status == 200, reply.body
        stored = next(server.uploads_dir.rglob("session-1.jsonl"))
        part = urllib.parse.quote(str(stored.relative_to(server.uploads_dir)), safe="")
        reply = get(server, f"/api/data/_uploads/download?part={part}")
        assert reply.status == 404, reply.body
        assert b"secret" not in reply.body


def test_session_upload_errors(server):
    body, ctype = multipart("s.jsonl", b"x", field="other")
    reply = request(server, "POST", "/api/upload/sessions", body=body,
                    headers={"Content-Type": ctype})
    assert reply.status == 422 and reply.json()["detail"][0]["loc"] == ["body", "file"]
    reply = request(server, "POST", "/api/upload/sessions", body=b"{}",
                    headers={"Content-Type": "application/json"})
    assert reply.status == 422
    body, ctype = multipart("s.jsonl", b"x")
    reply = request(server, "POST", "/api/upload/sessions", token=None, body=body,
                    headers={"Content-Type": ctype})
    assert reply.status == 401


def stream_upload(server, path: Path, filename: str):
    """Posts the file as multipart, streamed from disk in 1 MiB pieces."""
    boundary = "agnes-big-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.putrequest("POST", "/api/upload/sessions")
    conn.putheader("Authorization", f"Bearer {DEMO_TOKEN}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    conn.send(head)
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            conn.send(chunk)
    conn.send(tail)
    resp = conn.getresponse()
    reply = Reply(resp, resp.read(), 0)
    conn.close()
    return reply


def test_upload_over_50_mib_is_413_and_exactly_50_mib_is_fine(server, tmp_path):
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:
        f.truncate(50 * MIB + 1)
    reply = stream_upload(server, big, "big.jsonl")
    assert reply.status == 413
    assert "detail" in reply.json()
    sessions = server.uploads_dir / "analyst" / "sessions"
    assert not sessions.exists() or list(sessions.iterdir()) == []
    with big.open("r+b") as f:
        f.truncate(50 * MIB)
    reply = stream_upload(server, big, "big.jsonl")
    assert reply.status == 200 and reply.json()["size"] == 50 * MIB
    assert (sessions / "big.jsonl").stat().st_size == 50 * MIB


def test_local_md_size_counts_characters(server):
    content = "# Poznámky\nŽluťoučký kůň 🐎 — „quotes“\n"
    reply = request(server, "POST", "/api/upload/local-md",
                    body=json.dumps({"content": content}).encode(),
                    headers={"Content-Type": "application/json"})
    assert reply.status == 200
    assert reply.json() == {"status": "ok", "user": "analyst", "size": len(content)}
    assert len(content) < len(content.encode())
    stored = server.uploads_dir / "analyst" / "CLAUDE.local.md"
    assert stored.read_text(encoding="utf-8") == content
    reply = request(server, "POST", "/api/upload/local-md", body=b'{"text": 1}',
                    headers={"Content-Type": "application/json"})
    assert reply.status == 422


# -- faults ------------------------------------------------------------------


def test_status_fault_n_times_then_recovers(server):
    server.set_faults([{"kind": "status", "status": 503, "times": 2, "table": "orders"}])
    assert [f["remaining"] for f in server.faults()] == [2]
    codes = [get(server, "/api/data/orders/download").status for _ in range(3)]
    assert codes == [503, 503, 200]
    assert get(server, "/api/data/customers/download").status == 200
    assert server.faults() == []


def test_status_fault_with_a_body_and_on_any_endpoint(server):
    server.set_faults([{"kind": "status", "status": 502, "endpoint": "any",
                        "body": "Bad gateway", "content_type": "text/plain"}])
    for path in ("/api/sync/manifest", "/api/memory/bundle", "/api/data/orders/download"):
        reply = get(server, path)
        assert (reply.status, reply.body) == (502, b"Bad gateway"), path
    assert get(server, "/api/health").status == 200
    server.clear_faults()
    assert get(server, "/api/sync/manifest").status == 200


def test_cut_fault_promises_the_full_length_and_sends_k_bytes(server, sample_dir):
    data = (sample_dir / "orders.parquet").read_bytes()
    server.set_faults([{"kind": "cut", "after_bytes": 1000, "times": 1}])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/data/orders/download",
                 headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert int(resp.getheader("Content-Length")) == len(data)
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    assert cut.value.partial == data[:1000]
    conn.close()
    # the cut download resumes with a range
    reply = get(server, "/api/data/orders/download", headers={"Range": "bytes=1000-"})
    assert reply.status == 206 and data[:1000] + reply.body == data
    log = [r for r in server.requests() if r["path"] == "/api/data/orders/download"]
    assert log[0]["bytes_sent"] == 1000


def test_corrupt_fault_keeps_the_length_and_flips_16_middle_bytes(server, sample_dir):
    data = (sample_dir / "orders.parquet").read_bytes()
    server.set_faults([{"kind": "corrupt", "table": "orders"}])
    reply = get(server, "/api/data/orders/download")
    assert reply.status == 200 and len(reply.body) == len(data)
    assert hashlib.md5(reply.body).hexdigest() != md5(sample_dir / "orders.parquet")
    assert reply.body[:4] == reply.body[-4:] == b"PAR1"
    mid = len(data) // 2
    want = data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 16]) + data[mid + 16:]
    assert reply.body == want
    assert get(server, "/api/data/customers/download").body == (
        sample_dir / "customers.parquet").read_bytes()


def test_stall_before_delays_the_headers(server):
    server.set_faults([{"kind": "stall", "ms": 400, "at": "before", "endpoint": "manifest"}])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    started = time.monotonic()
    conn.request("GET", "/api/sync/manifest", headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    resp = conn.getresponse()
    assert time.monotonic() - started >= 0.4
    assert resp.status == 200 and json.loads(resp.read())["tables"]
    conn.close()


def test_stall_middle_delays_the_second_half_of_the_body(server, sample_dir):
    data = (sample_dir / "orders.parquet").read_bytes()
    server.set_faults([{"kind": "stall", "ms": 500, "at": "middle", "table": "orders"}])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    started = time.monotonic()
    conn.request("GET", "/api/data/orders/download",
                 headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    resp = conn.getresponse()
    headers_after = time.monotonic() - started
    first_half = resp.read(len(data) // 2)
    half_after = time.monotonic() - started
    rest = resp.read()
    total = time.monotonic() - started
    assert headers_after < 0.4 and half_after < 0.4
    assert total >= 0.5
    assert first_half + rest == data
    conn.close()


def test_redirect_fault_sends_location(server):
    target = f"http://127.0.0.2:{server.port}/api/data/orders/download"
    server.set_faults([{"kind": "redirect", "location": target, "times": 1}])
    reply = get(server, "/api/data/orders/download")
    assert reply.status == 302 and reply.headers["location"] == target
    server.set_faults([{"kind": "redirect", "location": "/elsewhere", "status": 307}])
    reply = get(server, "/api/data/orders/download")
    assert reply.status == 307 and reply.headers["location"] == "/elsewhere"


def test_body_fault_replaces_the_reply(server):
    html = "<html><body>Login required</body></html>"
    server.set_faults([{"kind": "body", "body": html, "endpoint": "manifest", "times": 1},
                       {"kind": "body", "body": html, "table": "orders"}])
    reply = get(server, "/api/sync/manifest")
    assert reply.status == 200 and reply.body.decode() == html
    assert reply.headers["content-type"].startswith("text/html")
    assert get(server, "/api/sync/manifest").json()["tables"]
    reply = get(server, "/api/data/orders/download")
    assert reply.status == 200 and reply.body.decode() == html


def test_upload_and_bundle_faults(server):
    server.set_faults([{"kind": "status", "status": 500, "endpoint": "upload", "times": 1},
                       {"kind": "status", "status": 503, "endpoint": "bundle", "times": 1}])
    reply = request(server, "POST", "/api/upload/local-md", body=b'{"content": "x"}',
                    headers={"Content-Type": "application/json"})
    assert reply.status == 500
    assert get(server, "/api/memory/bundle").status == 503
    assert get(server, "/api/memory/bundle").status == 200


def test_faults_from_the_start_up_file(sample_dir):
    faults = [{"kind": "status", "status": 503, "times": 1, "endpoint": "manifest"}]
    with LocalServer(sample_dir, faults=faults) as server:
        assert get(server, "/api/sync/manifest").status == 503
        assert get(server, "/api/sync/manifest").status == 200
        assert server.faults() == []


def test_faults_from_the_catalog_restart_when_it_changes(server, sample_dir):
    catalog = json.loads((sample_dir / "catalog.json").read_text())
    catalog["faults"] = [{"kind": "status", "status": 504, "times": 1, "table": "orders"}]
    write_catalog(sample_dir, catalog)
    assert get(server, "/api/data/orders/download").status == 504
    assert get(server, "/api/data/orders/download").status == 200
    catalog["faults"][0]["status"] = 503
    write_catalog(sample_dir, catalog)
    assert [f["source"] for f in server.faults()] == ["catalog"]
    assert get(server, "/api/data/orders/download").status == 503


def test_admin_rejects_invalid_faults(server):
    with pytest.raises(ServerError, match="after_bytes"):
        server.set_faults([{"kind": "cut"}])
    with pytest.raises(ServerError, match="unknown kind"):
        server.set_faults([{"kind": "explode"}])


# -- /api/v2 over a partitioned table (0.84) ------------------------------------

# Three parts, one in a sub-folder (not hive-style, so DuckDB adds no column).
_EVENT_ROWS = """
    SELECT i AS event_id,
           ['click', 'view', 'buy'][1 + i % 3] AS kind,
           DATE '2026-01-01' + CAST(i AS INTEGER) AS day,
           CAST((hash(i) % 10000) / 100.0 AS DECIMAL(12, 2)) AS amount
    FROM range({first}, {last}) t(i)"""
EVENT_PARTS = {
    "2026_01.parquet": _EVENT_ROWS.format(first=1, last=41),
    "2026_02.parquet": _EVENT_ROWS.format(first=41, last=71),
    "2026_03/part-0.parquet": _EVENT_ROWS.format(first=71, last=101),
}


def events_by_duckdb(folder: Path, tail: str = "") -> list:
    """The rows of every part as DuckDB reads them: what the server must send."""
    glob = str(folder / "**" / "*.parquet").replace("'", "''")
    query = f"SELECT * FROM read_parquet('{glob}', hive_partitioning = false) {tail}"
    return duckdb.sql(query).fetchall()


def v2_post(server, path, body, token=DEMO_TOKEN):
    return request(server, "POST", path, token=token, body=json.dumps(body),
                   headers={"Content-Type": "application/json"})


def v2_scan(server, body):
    """The column names and rows of a scan that must succeed."""
    reply = v2_post(server, "/api/v2/scan", body)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/vnd.apache.arrow.stream"
    return read_stream(reply.body)


def v2_catalog_ids(server):
    reply = get(server, "/api/v2/catalog")
    assert reply.status == 200, reply.body
    return [t["id"] for t in reply.json()["tables"]]


def test_v2_reads_a_partitioned_table_as_one_table(sample_dir):
    folder = write_partitioned(sample_dir, "events", EVENT_PARTS)
    with LocalServer(sample_dir, mode="0.84") as server:
        assert "events" in v2_catalog_ids(server)

        reply = get(server, "/api/v2/schema/events")
        assert reply.status == 200, reply.body
        described = duckdb.sql(
            f"DESCRIBE SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = false)"
        ).fetchall()
        columns = [(c["name"], c["type"]) for c in reply.json()["columns"]]
        assert columns == [(name, type_) for name, type_, *_ in described]
        assert reply.json()["partition_by"] is None  # no `key=value` folders

        names, rows = v2_scan(server, {"table_id": "events"})
        assert names == ["event_id", "kind", "day", "amount"]
        assert sorted(rows) == sorted(events_by_duckdb(folder))
        assert len(rows) == 100

        # Order and limit apply across the parts, not within each.
        names, rows = v2_scan(server, {"table_id": "events", "select": ["event_id", "amount"],
                                       "order_by": ["amount DESC", "event_id"], "limit": 7})
        assert names == ["event_id", "amount"]
        top = events_by_duckdb(folder, "ORDER BY amount DESC, event_id LIMIT 7")
        assert rows == [(r[0], r[3]) for r in top]
        names, rows = v2_scan(server, {"table_id": "events", "where": "kind = 'buy' AND event_id > 30",
                                       "order_by": ["day DESC"], "limit": 12})
        assert rows == events_by_duckdb(
            folder, "WHERE kind = 'buy' AND event_id > 30 ORDER BY day DESC LIMIT 12")
        part = {r[0]: 1 if r[0] <= 40 else 2 if r[0] <= 70 else 3 for r in rows}
        assert set(part.values()) == {2, 3}, "the top rows come from two parts"
        # Without an order, a limit longer than the first part reads on.
        names, rows = v2_scan(server, {"table_id": "events", "select": ["event_id"], "limit": 55})
        assert len(rows) == 55 and len(set(rows)) == 55

        reply = v2_post(server, "/api/v2/scan/estimate", {"table_id": "events"})
        # local: as the real server, nothing estimated
        assert reply.status == 200 and reply.json()["estimated_result_rows"] is None
        # The same folder as a remote table: the estimate covers every part.
        catalog = json.loads(json.dumps(SAMPLE_CATALOG))
        catalog["tables"]["events"] = {"query_mode": "remote", "source_type": "bigquery"}
        write_catalog(sample_dir, catalog)
        reply = v2_post(server, "/api/v2/scan/estimate", {"table_id": "events"})
        assert reply.status == 200, reply.body
        estimate = reply.json()
        assert estimate["estimated_result_rows"] == 100
        sizes = sum((folder / rel).stat().st_size for rel in EVENT_PARTS)
        assert estimate["estimated_scan_bytes"] == sizes


def test_v2_refuses_parts_whose_columns_differ_naming_the_part(sample_dir):
    write_partitioned(sample_dir, "events", {
        **EVENT_PARTS,
        "2026_04.parquet": "SELECT 'x' AS event_id, 'buy' AS kind, DATE '2026-04-01' AS day, "
                           "CAST(1 AS DECIMAL(12, 2)) AS amount",
    })
    with LocalServer(sample_dir, mode="0.84") as server:
        for reply in (get(server, "/api/v2/schema/events"),
                      v2_post(server, "/api/v2/scan", {"table_id": "events"}),
                      v2_post(server, "/api/v2/scan/estimate", {"table_id": "events"})):
            assert reply.status == 500, reply.body
            message = reply.json()["detail"]
            assert "'events'" in message and "part '2026_04.parquet'" in message, message
            assert "'event_id'" in message, message


def test_v2_sees_folders_only_on_a_current_server_and_a_file_wins(sample_dir):
    write_partitioned(sample_dir, "events", EVENT_PARTS)
    with LocalServer(sample_dir, mode="may2026") as server:
        assert "events" not in v2_catalog_ids(server)
        assert get(server, "/api/v2/schema/events").status == 404
        assert v2_post(server, "/api/v2/scan", {"table_id": "events"}).status == 404
    # A file and a folder of one id: the file is the table.
    write_partitioned(sample_dir, "orders", {"p1.parquet": "SELECT 1 AS order_id"})
    with LocalServer(sample_dir, mode="0.84") as server:
        assert v2_catalog_ids(server).count("orders") == 1
        names, rows = v2_scan(server, {"table_id": "orders", "select": ["order_id"]})
        assert len(rows) == 5000


# Hive-partitioned (DuckDB's COPY ... PARTITION_BY): `month=2/day=2026-01-02/tag=a%20b/`
# folders, the columns only in the paths unless written into the files too.
_VISIT_ROWS = """
    SELECT i AS visit_id,
           1 + i % 3 AS month,
           DATE '2026-01-01' + CAST(i % 2 AS INTEGER) AS day,
           ['a b', 'c'][1 + i % 5 // 3] AS tag,
           CAST(i * 1.25 AS DECIMAL(12, 2)) AS amount
    FROM range(60) t(i)"""


def write_hive(data_dir: Path, table: str, *, inside: bool = False) -> Path:
    """The visits as DuckDB partitions them; with ``inside``, the partition
    columns are also in the files (WRITE_PARTITION_COLUMNS)."""
    folder = data_dir / table
    options = ", WRITE_PARTITION_COLUMNS true" if inside else ""
    duckdb.sql(f"COPY ({_VISIT_ROWS}) TO '{folder}' "
               f"(FORMAT parquet, PARTITION_BY (month, day, tag){options})")
    return folder


def hive_by_duckdb(folder: Path, query: str = "SELECT * FROM t") -> list:
    """What DuckDB reads from the folder as upstream's client does, as `t`."""
    glob = str(folder / "**" / "*.parquet").replace("'", "''")
    t = f"read_parquet('{glob}', union_by_name = true, hive_partitioning = true)"
    return duckdb.sql(query.replace("FROM t", f"FROM {t}")).fetchall()


@pytest.mark.parametrize("inside", [False, True], ids=["paths-only", "also-in-files"])
def test_v2_gives_hive_partition_columns_as_duckdb_does(sample_dir, inside):
    folder = write_hive(sample_dir, "visits", inside=inside)
    assert (folder / "month=1" / "day=2026-01-02" / "tag=a%20b").is_dir()
    with LocalServer(sample_dir, mode="0.84") as server:
        reply = get(server, "/api/v2/schema/visits")
        assert reply.status == 200, reply.body
        described = hive_by_duckdb(folder, "DESCRIBE SELECT * FROM t")
        columns = [(c["name"], c["type"]) for c in reply.json()["columns"]]
        assert columns == [(name, type_) for name, type_, *_ in described]
        # After the files' columns, by name (not in folder order), unless in the files.
        assert [name for name, _ in columns] == (
            ["visit_id", "amount", "day", "month", "tag"] if not inside
            else ["visit_id", "month", "day", "tag", "amount"])
        assert reply.json()["partition_by"] == ["day", "month", "tag"]

        names, rows = v2_scan(server, {"table_id": "visits"})
        assert names == [name for name, _ in columns]
        assert sorted(rows) == sorted(hive_by_duckdb(folder))
        assert len(rows) == 60

        # The partition columns filter, order and stand alone in `select`.
        names, rows = v2_scan(server, {"table_id": "visits", "where": "month = 2 AND tag = 'a b'",
                                       "order_by": ["day DESC", "visit_id"], "limit": 5})
        assert rows == hive_by_duckdb(folder, "SELECT * FROM t WHERE month = 2 AND tag = 'a b' "
                                              "ORDER BY day DESC, visit_id LIMIT 5")
        assert len(rows) == 5
        names, rows = v2_scan(server, {"table_id": "visits", "select": ["tag", "month"],
                                       "where": "day = DATE '2026-01-02'",
                                       "order_by": ["month DESC", "tag"]})
        assert names == ["tag", "month"]
        assert rows == hive_by_duckdb(folder, "SELECT tag, month FROM t WHERE day = DATE '2026-01-02' "
                                              "ORDER BY month DESC, tag")

        body = {"table_id": "visits", "select": ["month"], "where": "month > 1"}
        reply = v2_post(server, "/api/v2/scan/estimate", body)
        assert reply.status == 200, reply.body
        reply = v2_post(server, "/api/v2/scan", {**body, "where": "months > 1"})
        assert reply.status == 400, reply.body


# -- request log -------------------------------------------------------------


def test_request_log_records_what_was_asked_and_answered(server, sample_dir):
    server.clear_requests()
    size = (sample_dir / "orders.parquet").stat().st_size
    get(server, "/api/data/orders/download", headers={"If-None-Match": '"1"', "Range": "bytes=0-9"})
    get(server, "/api/sync/manifest", token=None)
    server.faults()  # admin calls are not logged
    log = server.requests()
    peers = [entry.pop("peer") for entry in log]
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", p) for p in peers), peers
    assert log == [
        {"method": "GET", "path": "/api/data/orders/download", "query": None,
         "authorization": f"Bearer {DEMO_TOKEN}", "if_none_match": '"1"', "range": "bytes=0-9",
         "status": 206, "upload": None, "bytes_sent": 10, "scan": None},
        {"method": "GET", "path": "/api/sync/manifest", "query": None, "authorization": None,
         "if_none_match": None, "range": None, "status": 401, "upload": None,
         "bytes_sent": log[1]["bytes_sent"], "scan": None},
    ]
    assert log[1]["bytes_sent"] > 0
    get(server, "/api/data/orders/download")
    assert server.requests()[-1]["bytes_sent"] == size
    server.clear_requests()
    assert server.requests() == []


def test_request_log_file_has_one_json_line_per_request_once_answered(server, sample_dir):
    assert server.request_log == sample_dir / "_requests.jsonl"
    size = (sample_dir / "orders.parquet").stat().st_size
    get(server, "/api/data/orders/download")
    get(server, "/api/sync/manifest", token=None)
    request(server, "POST", "/api/upload/local-md", body=b'{"content": "x"}',
            headers={"Content-Type": "application/json"})
    # Written before the reply's last byte: already there once it was read.
    lines = [json.loads(l) for l in server.request_log.read_text().splitlines()]
    # The same entries as the admin API (the file also has the start-up health checks).
    assert lines == server.requests()
    assert [(l["method"], l["path"], l["status"]) for l in lines[-3:]] == [
        ("GET", "/api/data/orders/download", 200),
        ("GET", "/api/sync/manifest", 401),
        ("POST", "/api/upload/local-md", 200),
    ]
    assert lines[-3]["bytes_sent"] == size
    assert lines[-1]["authorization"] == f"Bearer {DEMO_TOKEN}"
    # Clearing the admin log leaves the file alone.
    server.clear_requests()
    assert len(server.request_log.read_text().splitlines()) == len(lines)


# -- the test kit itself -----------------------------------------------------


def test_local_server_reports_a_failed_start(tmp_path):
    with pytest.raises(ServerError, match="not found"):
        LocalServer(tmp_path, binary=tmp_path / "missing").start()
    with pytest.raises(ServerError, match="not a folder"):
        LocalServer(tmp_path / "no-such-dir").start()


def test_local_server_stops_its_process(sample_dir):
    server = LocalServer(sample_dir).start()
    assert server.env() == {"AGNES_SERVER": server.url, "AGNES_TOKEN": DEMO_TOKEN}
    server.stop()
    assert server.proc.poll() is not None
