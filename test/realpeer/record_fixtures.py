"""Records what real Agnes servers answer, as fixtures for test_real_fixtures.py.

    python3 test/realpeer/record_fixtures.py [--realpeer ~/realpeer] [--only 0.84|0.29]

Needs the two upstream servers of ../shared/realpeer/RECIPE.md running:
0.29 (d0b) on 127.0.0.1:18000 and 0.84.8 (HEAD) on 127.0.0.1:18100, seeded
by its setup.sh, with their PATs in $REALPEER/{d0b,head}-{admin,analyst}-pat.txt.
Not part of CI (CI cannot reach those servers); run it by hand after a fresh
setup and commit what changed under test/fixtures/real-0.84/ and real-0.29/.

Each exchange becomes one JSON file, `<name>.json`:
{"request": {"method", "path", "query", "as", "json"|"upload"|"headers"},
 "status": N, "headers": {selected, lower-case}, "body": JSON | {"bytes": N}}.

Nothing secret lands in a file: the tokens are never written (requests say
`"as": "analyst"`), every JWT-looking text becomes `<jwt>`, and ids that a
rebuild changes (package ids, knowledge item UUIDs) become placeholders.
It only reads, except for uploads as the analyst (fixed names, each new
upload of a name overwrites the last); it never changes the servers' data.
Standard library only.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVERS = {"0.84": ("head", 18100), "0.29": ("d0b", 18000)}

# Reply headers worth comparing; the rest (date, server, request id, the
# security headers of the reverse proxy middleware) say nothing about the contract.
KEEP_HEADERS = (
    "content-type", "content-encoding", "content-disposition", "etag", "accept-ranges",
    "content-range", "retry-after", "allow", "location",
    "x-agnes-latest-version", "x-agnes-min-version", "x-agnes-accepts", "x-agnes-content-md5",
)

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
PACKAGE_ID = re.compile(r"\bpkg_[0-9a-f]{12}\b")


def scrub(value, secrets):
    """The value with tokens, JWTs and per-rebuild ids replaced."""
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for secret, name in secrets.items():
            value = value.replace(secret, f"<token:{name}>")
        value = JWT.sub("<jwt>", value)
        value = UUID.sub("<uuid>", value)
        return PACKAGE_ID.sub("pkg_<id>", value)
    return value


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "agnes-fixture-boundary-7f3a"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Recorder:
    def __init__(self, port: int, tokens: dict, out: Path):
        self.port, self.tokens, self.out = port, tokens, out
        self.secrets = {t: who for who, t in tokens.items() if t}
        out.mkdir(parents=True, exist_ok=True)
        self.names = []

    def exchange(self, name, method, path, *, who="analyst", query=None, json_body=None,
                 raw_body=None, upload=None, headers=None):
        hdrs = dict(headers or {})
        if who is not None:
            hdrs["Authorization"] = f"Bearer {self.tokens[who]}"
        body = None
        request = {"method": method, "path": path, "as": who}
        if query:
            request["query"] = query
        if headers:
            request["headers"] = headers
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
            request["json"] = json_body
        elif raw_body is not None:
            body = raw_body
            hdrs["Content-Type"] = "application/json"
            request["raw"] = raw_body.decode()
        elif upload is not None:
            filename, data, kind = upload
            body, ctype = multipart(filename, data)
            hdrs["Content-Type"] = ctype
            request["upload"] = {"filename": filename, "content": kind, "bytes": len(data),
                                 "hex": data.hex()}
        url = urllib.parse.quote(path, safe="/")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, url, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        kept = {k.lower(): v for k, v in resp.getheaders() if k.lower() in KEEP_HEADERS}
        ctype = kept.get("content-type", "")
        if data and ctype.startswith("application/json"):
            parsed = json.loads(data)
        elif ctype.startswith("text/") and data:
            parsed = {"text": data.decode(errors="replace")[:2000]}
        else:
            parsed = {"bytes": len(data)}
        record = scrub({"request": request, "status": resp.status, "headers": kept, "body": parsed},
                       self.secrets)
        text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
        assert not any(s in text for s in self.secrets), name
        (self.out / f"{name}.json").write_text(text)
        self.names.append(name)
        print(f"  {resp.status} {name}")
        return resp.status, parsed


def record(version: str, realpeer: Path) -> None:
    tag, port = SERVERS[version]
    tokens = {who: (realpeer / f"{tag}-{who}-pat.txt").read_text().strip()
              for who in ("admin", "analyst")}
    tokens["bad"] = "not-a-valid-agnes-token"
    revoked = realpeer / f"{tag}-revoked-pat.txt"
    if revoked.exists():
        tokens["revoked"] = revoked.read_text().strip()
    out = ROOT / "test" / "fixtures" / f"real-{version}"
    for old in out.glob("*.json"):
        old.unlink()
    r = Recorder(port, tokens, out)
    print(f"[{version}] 127.0.0.1:{port} -> {out.relative_to(ROOT)}")
    x = r.exchange

    # -- auth, health, manifest, bundle
    x("health", "GET", "/api/health", who=None)
    x("manifest.no_auth", "GET", "/api/sync/manifest", who=None)
    x("manifest.bad_token", "GET", "/api/sync/manifest", who="bad")
    if "revoked" in tokens:
        x("manifest.revoked_token", "GET", "/api/sync/manifest", who="revoked")
    for who in ("analyst", "admin"):
        x(f"manifest.{who}", "GET", "/api/sync/manifest", who=who)
        x(f"bundle.{who}", "GET", "/api/memory/bundle", who=who)

    # -- downloads
    x("download.orders.analyst", "GET", "/api/data/orders/download")
    status, _ = x("download.orders.admin", "GET", "/api/data/orders/download", who="admin")
    x("download.not_in_stack.analyst", "GET", "/api/data/customers/download")
    x("download.unknown.analyst", "GET", "/api/data/nope/download")
    x("download.unknown.admin", "GET", "/api/data/nope/download", who="admin")
    x("download.bad_id.analyst", "GET", "/api/data/-x/download")
    x("download.remote.analyst", "GET", "/api/data/live_orders/download")
    x("download.remote.admin", "GET", "/api/data/live_orders/download", who="admin")
    x("download.server_only.analyst", "GET", "/api/data/secret_ledger/download")
    x("download.server_only.admin", "GET", "/api/data/secret_ledger/download", who="admin")
    x("download.by_name.analyst", "GET", "/api/data/Orders2/download")
    x("download.by_name.admin", "GET", "/api/data/Orders2/download", who="admin")
    x("download.by_id.analyst", "GET", "/api/data/orders2/download")
    x("download.by_id.admin", "GET", "/api/data/orders2/download", who="admin")
    x("download.partitioned_no_part.analyst", "GET", "/api/data/events/download")
    x("download.partitioned_bad_part.analyst", "GET", "/api/data/events/download",
      query={"part": "2026_09.parquet"})
    x("download.partitioned_hostile_part.analyst", "GET", "/api/data/events/download",
      query={"part": "../orders.parquet"})
    x("download.part.analyst", "GET", "/api/data/events/download", query={"part": "2026_01.parquet"})
    x("download.part_range.analyst", "GET", "/api/data/events/download",
      query={"part": "2026_01.parquet"}, headers={"Range": "bytes=0-9"})
    x("download.range.analyst", "GET", "/api/data/orders/download", headers={"Range": "bytes=0-9"})
    x("download.head.analyst", "HEAD", "/api/data/orders/download")
    x("download.no_auth", "GET", "/api/data/orders/download", who=None)

    # -- /api/v2
    for who in ("analyst", "admin"):
        x(f"v2.catalog.{who}", "GET", "/api/v2/catalog", who=who)
    x("v2.schema.orders.analyst", "GET", "/api/v2/schema/orders")
    x("v2.schema.events.analyst", "GET", "/api/v2/schema/events")
    x("v2.schema.secret_ledger.analyst", "GET", "/api/v2/schema/secret_ledger")
    x("v2.schema.remote.analyst", "GET", "/api/v2/schema/live_orders")
    x("v2.schema.unknown.analyst", "GET", "/api/v2/schema/nope")
    x("v2.schema.unknown.admin", "GET", "/api/v2/schema/nope", who="admin")
    x("v2.schema.forbidden.analyst", "GET", "/api/v2/schema/customers")
    x("v2.schema.by_name.analyst", "GET", "/api/v2/schema/Orders2")
    x("v2.schema.by_id.analyst", "GET", "/api/v2/schema/orders2")
    x("v2.schema.by_id.admin", "GET", "/api/v2/schema/orders2", who="admin")
    x("v2.schema.internal.analyst", "GET", "/api/v2/schema/agnes_audit")
    x("v2.schema.no_auth", "GET", "/api/v2/schema/orders", who=None)

    scan = lambda name, body, who="analyst": x(name, "POST", "/api/v2/scan", who=who, json_body=body)  # noqa: E731
    scan("v2.scan.ok.analyst", {"table_id": "orders", "select": ["order_id"], "limit": 2})
    scan("v2.scan.missing_table_id", {"select": ["a"]})
    scan("v2.scan.limit_zero", {"table_id": "orders", "limit": 0})
    scan("v2.scan.limit_not_int", {"table_id": "orders", "limit": "x"})
    scan("v2.scan.select_not_list", {"table_id": "orders", "select": "order_id"})
    x("v2.scan.not_json", "POST", "/api/v2/scan", raw_body=b"{not json")
    scan("v2.scan.limit_too_large", {"table_id": "orders", "limit": 10_000_001})
    scan("v2.scan.limit_max", {"table_id": "orders", "select": ["order_id"], "limit": 10_000_000})
    scan("v2.scan.unknown_column", {"table_id": "orders", "select": ["nope"]})
    scan("v2.scan.invalid_column", {"table_id": "orders", "select": ["a;b"]})
    scan("v2.scan.invalid_order_by", {"table_id": "orders", "order_by": ["order_id; drop"]})
    scan("v2.scan.unknown_order_by", {"table_id": "orders", "order_by": ["nope DESC"]})
    scan("v2.scan.unknown_table", {"table_id": "nope"})
    scan("v2.scan.unknown_table.admin", {"table_id": "nope"}, who="admin")
    scan("v2.scan.forbidden", {"table_id": "customers"})
    scan("v2.scan.by_name", {"table_id": "Orders2", "limit": 1})
    scan("v2.scan.by_id", {"table_id": "orders2", "limit": 1})
    scan("v2.scan.remote", {"table_id": "live_orders", "limit": 1})
    scan("v2.scan.server_only", {"table_id": "secret_ledger", "limit": 1})
    scan("v2.scan.partitioned", {"table_id": "events", "limit": 1})
    scan("v2.scan.internal", {"table_id": "agnes_audit", "limit": 1})
    scan("v2.scan.where_unknown_column", {"table_id": "orders", "where": "nonexistent = 1"})
    scan("v2.scan.where_unknown_function", {"table_id": "orders", "where": "count(*) > 1"})
    scan("v2.scan.where_nested_select", {"table_id": "orders", "where": "order_id IN (SELECT 1)"})
    scan("v2.scan.where_multi_statement", {"table_id": "orders", "where": "1=1; DROP TABLE x"})
    scan("v2.scan.where_parse_error", {"table_id": "orders", "where": "order_id = ("})
    scan("v2.scan.from_query_exclusive", {"from_query": "SELECT 1", "limit": 5})
    x("v2.scan.no_auth", "POST", "/api/v2/scan", who=None, json_body={"table_id": "orders"})
    est = lambda name, body: x(name, "POST", "/api/v2/scan/estimate", json_body=body)  # noqa: E731
    est("v2.estimate.local", {"table_id": "orders", "where": "order_id > 5"})
    est("v2.estimate.partitioned", {"table_id": "events"})
    est("v2.estimate.remote", {"table_id": "live_orders"})
    est("v2.estimate.unknown_table", {"table_id": "nope"})
    est("v2.estimate.missing_table_id", {})

    # -- uploads (as the analyst; fixed names, so a re-run overwrites)
    line = b'{"type":"user","message":"fixture recording"}\n'
    up = lambda name, filename, data, kind: x(  # noqa: E731
        name, "POST", "/api/upload/sessions", upload=(filename, data, kind))
    up("upload.sessions.plain", "agnes-fixture.jsonl", line, "jsonl")
    up("upload.sessions.gz", "agnes-fixture-gz.jsonl.gz", gzip.compress(line * 3), "gzip of 3 lines")
    up("upload.sessions.gz_other_name", "agnes-fixture.txt.gz", gzip.compress(line), "gzip of 1 line")
    up("upload.sessions.invalid_gzip", "agnes-fixture-bad.jsonl.gz", b"not gzip at all", "not gzip")
    up("upload.sessions.truncated_gzip", "agnes-fixture-cut.jsonl.gz", gzip.compress(line * 50)[:30],
       "gzip cut short")
    up("upload.sessions.bad_name", "a b.jsonl", line, "jsonl")
    up("upload.sessions.path_name", "../agnes-fixture-path.jsonl", line, "jsonl")
    up("upload.sessions.dot_name", ".agnes-fixture-dot.jsonl", line, "jsonl")
    up("upload.sessions.bad_name_before_gz", ".gz", gzip.compress(line), "gzip of 1 line")
    x("upload.sessions.no_file", "POST", "/api/upload/sessions",
      upload=None, raw_body=None, json_body={"x": 1})
    x("upload.sessions.no_auth", "POST", "/api/upload/sessions", who=None,
      upload=("agnes-fixture.jsonl", line, "jsonl"))
    x("upload.local_md", "POST", "/api/upload/local-md",
      json_body={"content": "# Notes\nFixture recording of agnes: ž.\n"})
    x("upload.local_md.bad_body", "POST", "/api/upload/local-md", json_body={"text": "x"})
    print(f"[{version}] {len(r.names)} exchanges")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--realpeer", type=Path, default=Path(os.environ.get("REALPEER", "~/realpeer")).expanduser())
    p.add_argument("--only", choices=sorted(SERVERS))
    args = p.parse_args(argv)
    for version in SERVERS:
        if args.only in (None, version):
            record(version, args.realpeer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
