"""agnes-server answers as the real Agnes servers do (issue 22).

test/fixtures/real-0.84/ and real-0.29/ hold what a real 0.84.8 and 0.29
server answered, as the analyst and as an admin (recorded by
test/realpeer/record_fixtures.py, which CI does not run). Here agnes-server,
in the matching mode, over a catalog seeded like those servers (the same
tables, package, users and memory items), is asked the same requests, and
each answer is compared with the recorded one: the status, the headers that
carry the contract, and the body recursively, key by key and type by type;
values too wherever they do not depend on the data (detail texts, modes,
flags, names, the constant fields).
"""

import gzip
import http.client
import json
import re
import urllib.parse
from pathlib import Path

import pytest

from agnes_testkit import LocalServer, write_catalog, write_parquet, write_partitioned

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MODES = {"0.84": "real-0.84", "may2026": "real-0.29"}
TOKENS = {"analyst": "analyst-token", "admin": "admin-token", "bad": "not-a-valid-agnes-token",
          "revoked": "revoked-token"}

# Values compared as they are (the rest: by type only). These do not
# depend on the bytes of the seeded files, only on what the catalog says.
CONSTANT_KEYS = {
    "detail", "status", "error", "kind", "engine", "msg", "loc", "type", "query_mode",
    "server_only", "sql_flavor", "source_type", "requirement", "slug", "name", "id",
    "table_id", "description", "access_policy", "access_policy_fingerprint", "nullable",
    "fetch_via", "rough_size_hint", "metadata_freshness", "clustered_by", "partition_by",
    "where_dialect_hints", "is_required", "token_budget", "filename", "size", "user",
    "icon", "color", "path", "vault_key_configured", "db_schema", "current", "expected",
    "estimated_scan_bytes", "estimated_result_rows", "estimated_result_bytes",
    "bq_cost_estimate_usd", "function", "column", "title", "content", "category",
}
# Lists whose length is the data's, not the contract's.
DATA_LISTS = {"where_examples"}
# Recorded values that a re-recording changes: the local value must have the same form.
VOLATILE = [re.compile(p) for p in (
    r"^pkg_<id>$", r"^upload_[0-9a-f]{8}$", r"^<uuid>$",
)]
VOLATILE_LOCAL = {r"^pkg_<id>$": re.compile(r"^pkg_[0-9a-f]{12}$")}
VOLATILE_KEYS = {"request_id"}


def _seed(data: Path, mode: str) -> Path:
    """The tables, package, users and memory of the real servers' seed
    (../shared/realpeer: seed_extracts*.py, seed_api.py)."""
    import duckdb

    current = mode == "0.84"
    data.mkdir(parents=True)
    orders = ("SELECT i::BIGINT AS order_id, printf('C%03d', i % 50) AS customer_id, "
              "((i * 7 + 0.5) % 100)::DECIMAL(11,2) AS amount, DATE '2026-01-01' + (i % 120)::INT AS order_date, "
              "TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) HOUR AS created_at, i % 3 = 0 AS is_paid, "
              "'note ' || i AS note, CASE WHEN i >= 0 THEN 'v1' END AS version FROM range(1, {n}) t(i)")
    tables = {
        "orders": orders.format(n=1001),
        "Orders2": orders.format(n=6),
        "customers": "SELECT printf('C%03d', i) AS customer_id, 'Customer ' || i AS name, "
                     "CASE WHEN i % 3 = 0 THEN 'CZ' ELSE 'SK' END AS country FROM range(50) t(i)",
        "products": "SELECT i::BIGINT AS product_id, 'Product ' || i AS name FROM range(20) t(i)",
        "in.c-crm.people": "SELECT i::BIGINT AS person_id, 'Person ' || i AS name, CASE WHEN i >= 0 THEN 'v1' END AS version "
                           "FROM range(1, 11) t(i)",
    }
    if current:
        tables["secret_ledger"] = ("SELECT i::BIGINT AS entry_id, (i * 10)::DECIMAL(22,1) AS amount, "
                                   "CASE WHEN i >= 0 THEN 'v1' END AS version FROM range(1, 6) t(i)")
    con = duckdb.connect()
    for name, query in tables.items():
        write_parquet(con, data / f"{name}.parquet", query)
    con.close()
    if current:
        write_partitioned(data, "events", {
            f"2026_0{m}.parquet": f"SELECT ({m} * 100 + i)::BIGINT AS event_id, "
            f"DATE '2026-0{m}-01' + i::INT AS event_date, 'evt' || ({m} * 100 + i) AS name, "
            f"CASE WHEN i >= 0 THEN 'v1' END AS version FROM range(10) t(i)" for m in (1, 2, 3)})
    keboola = {"source_type": "keboola"}
    catalog_tables = {
        "orders": dict(keboola, description="seed orders"),
        "customers": dict(keboola, description="seed customers"),
        "products": dict(keboola, description="seed products"),
        "Orders2": dict(keboola, id="orders2", description="seed Orders2"),
        "in.c-crm.people": dict(keboola, description="dotted id (synthetic)" if current
                                else "seed in.c-crm.people"),
        "live_orders": {"query_mode": "remote", "source_type": "bigquery", "sql_flavor": "bigquery",
                        "description": "remote BigQuery table"},
    }
    bundle = json.loads((FIXTURES / MODES[mode] / "bundle.analyst.json").read_text())["body"]
    catalog = {
        "tables": catalog_tables,
        "assets": {},
        "memory": {"mandatory": bundle["mandatory"], "approved": bundle["approved"]},
        "users": {
            TOKENS["admin"]: {"name": "admin@example.com", "admin": True},
            TOKENS["revoked"]: {"name": "analyst@example.com", "revoked": True},
        },
    }
    if current:
        catalog_tables["events"] = dict(keboola, description="seed events")
        catalog_tables["secret_ledger"] = dict(keboola, server_only=True, description="seed secret_ledger")
        catalog["data_packages"] = [{
            "slug": "crm", "name": "CRM", "description": "interop-test package", "requirement": "required",
            "tables": ["orders", "live_orders", "events", "secret_ledger", "orders2"]}]
        catalog["users"][TOKENS["analyst"]] = {"name": "analyst@example.com", "packages": ["crm"]}
    else:
        # 0.29 has no packages: the analysts' group has table grants.
        catalog["users"][TOKENS["analyst"]] = {"name": "analyst@example.com",
                                               "tables": ["orders", "live_orders", "orders2"]}
    write_catalog(data, catalog)
    return data


def _ask(server: LocalServer, request: dict):
    """Replays a recorded request: (status, selected headers, body)."""
    headers = dict(request.get("headers") or {})
    if request["as"] is not None:
        headers["Authorization"] = f"Bearer {TOKENS[request['as']]}"
    body = None
    if "json" in request:
        body = json.dumps(request["json"]).encode()
        headers["Content-Type"] = "application/json"
    elif "raw" in request:
        body = request["raw"].encode()
        headers["Content-Type"] = "application/json"
    elif "upload" in request:
        boundary = "agnes-fixture-boundary-7f3a"
        data = bytes.fromhex(request["upload"]["hex"])
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{request['upload']['filename']}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + \
            f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    url = urllib.parse.quote(request["path"], safe="/")
    if request.get("query"):
        url += "?" + urllib.parse.urlencode(request["query"])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(request["method"], url, body=body, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    got_headers = {k.lower(): v for k, v in resp.getheaders()}
    ctype = got_headers.get("content-type", "")
    if got_headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    if raw and ctype.startswith("application/json"):
        parsed = json.loads(raw)
    elif raw and ctype.startswith("text/"):
        parsed = {"text": raw.decode(errors="replace")[:2000]}
    else:
        parsed = {"bytes": len(raw)}
    return resp.status, got_headers, parsed


def _type(v) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool", int: "int",
            float: "float", type(None): "null"}[type(v)]


def differences(want, got, path="body", key=None) -> list[str]:
    """Where `got` differs from the recorded `want`: keys, types, and the
    values of CONSTANT_KEYS (recursively)."""
    if key in VOLATILE_KEYS:
        return [] if _type(want) == _type(got) else [f"{path}: {_type(got)}, recorded {_type(want)}"]
    if _type(want) != _type(got):
        return [f"{path}: {_type(got)} {json.dumps(got)[:120]}, recorded {_type(want)} {json.dumps(want)[:120]}"]
    if isinstance(want, dict):
        out = []
        if set(want) != set(got):
            missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
            out.append(f"{path}: keys missing {missing}, keys not recorded {extra}")
        for k in sorted(set(want) & set(got)):
            out += differences(want[k], got[k], f"{path}.{k}", k)
        return out
    if isinstance(want, list):
        kinds = {_type(w) for w in want}
        if len(kinds) == 1 and any(_type(g) not in kinds for g in got):
            return [f"{path}: items {sorted({_type(g) for g in got})}, recorded {kinds.pop()}"]
        ids = [w.get("id") for w in want if isinstance(w, dict)]
        if want and len(ids) == len(want) and None not in ids and len(set(ids)) == len(ids) \
                and not any(isinstance(i, str) and "<" in i for i in ids):
            got_ids = [g.get("id") if isinstance(g, dict) else None for g in got]
            if sorted(map(str, ids)) != sorted(map(str, got_ids)):
                return [f"{path}: ids {got_ids}, recorded {ids}"]
            by_id = {g["id"]: g for g in got}
            out = []
            for w in want:
                out += differences(w, by_id[w["id"]], f"{path}[{w['id']}]", None)
            return out
        if key not in DATA_LISTS and len(want) != len(got):
            return [f"{path}: {len(got)} items, recorded {len(want)}"]
        out = []
        for i, g in enumerate(got):
            if want:
                out += differences(want[min(i, len(want) - 1)], g, f"{path}[{i}]", key)
        return out
    if key in CONSTANT_KEYS and want != got:
        for pattern in VOLATILE:
            if isinstance(want, str) and pattern.match(want):
                local = VOLATILE_LOCAL.get(pattern.pattern, pattern)
                if isinstance(got, str) and local.match(got):
                    return []
        return [f"{path}: {json.dumps(got, ensure_ascii=False)[:300]}, recorded {json.dumps(want, ensure_ascii=False)[:300]}"]
    return []


def header_differences(want: dict, got: dict) -> list[str]:
    out = []
    for name, value in want.items():
        if name in ("accept-ranges", "content-encoding"):
            continue
        if name not in got:
            out.append(f"header {name} missing (recorded {value!r})")
        elif name == "etag":
            if not re.fullmatch(r'"\d+"', got[name]):
                out.append(f"header etag {got[name]!r} is not a quoted number")
        elif name == "x-agnes-content-md5":
            if not re.fullmatch(r"[0-9a-f]{32}", got[name]):
                out.append(f"header {name} {got[name]!r} is not an MD5")
        elif name == "content-range":
            if got[name].rsplit("/", 1)[0] != value.rsplit("/", 1)[0]:
                out.append(f"header {name} {got[name]!r}, recorded {value!r}")
        elif name == "content-type":
            if got[name].split(";")[0] != value.split(";")[0]:
                out.append(f"header {name} {got[name]!r}, recorded {value!r}")
        elif got[name] != value:
            out.append(f"header {name} {got[name]!r}, recorded {value!r}")
    for name in got:
        if name.startswith("x-agnes-") and name not in want:
            out.append(f"header {name} sent, not recorded")
    return out


def compare(record: dict, answer) -> list[str]:
    status, headers, body = answer
    out = []
    if status != record["status"]:
        out.append(f"status {status}, recorded {record['status']}: {json.dumps(body)[:300]}")
    out += header_differences(record["headers"], headers)
    out += differences(record["body"], body)
    return out


def _fixtures(folder: str) -> list[Path]:
    return sorted((FIXTURES / folder).glob("*.json"))


@pytest.fixture(scope="module", params=list(MODES))
def seeded(request, tmp_path_factory):
    mode = request.param
    data = _seed(tmp_path_factory.mktemp(f"real-{mode}") / "data", mode)
    with LocalServer(data, mode=mode) as server:
        yield mode, server


def test_the_fixtures_are_there_and_hold_no_token():
    for folder in MODES.values():
        files = _fixtures(folder)
        assert len(files) > 80, folder
        for f in files:
            text = f.read_text()
            assert "eyJ" not in text, f
            record = json.loads(text)
            assert {"request", "status", "headers", "body"} <= record.keys(), f


def test_every_answer_is_the_real_servers(seeded):
    mode, server = seeded
    failures = {}
    for path in _fixtures(MODES[mode]):
        record = json.loads(path.read_text())
        found = compare(record, _ask(server, record["request"]))
        if found:
            failures[path.stem] = found
    assert not failures, f"{len(failures)} answers differ from the real {mode} server's:\n" + "\n".join(
        f"  {name}: " + "\n      ".join(diffs) for name, diffs in failures.items())


def test_the_comparison_fails_on_the_old_shapes():
    """What the local server sent before issue 22 is caught: package tables
    as ids, missing top-level lists, an extra key, a 422 for a 400."""
    record = json.loads((FIXTURES / "real-0.84" / "manifest.analyst.json").read_text())
    good = json.loads(json.dumps(record["body"]))
    answer = (200, dict(record["headers"]), good)
    assert compare(record, answer) == []
    old = json.loads(json.dumps(good))
    old["data_packages"][0]["tables"] = [t["id"] for t in old["data_packages"][0]["tables"]]
    assert any("items ['string'], recorded object" in d
               for d in compare(record, (200, record["headers"], old)))
    old = json.loads(json.dumps(good))
    del old["knowledge_artifacts"], old["direct_tables"]
    assert any("keys missing ['direct_tables', 'knowledge_artifacts']" in d
               for d in compare(record, (200, record["headers"], old)))
    old = json.loads(json.dumps(good))
    old["tables"]["orders"]["signed_url"] = "http://x"
    assert any("not recorded ['signed_url']" in d for d in compare(record, (200, record["headers"], old)))
    old = json.loads(json.dumps(good))
    old["data_packages"][0]["tables"][0]["server_only"] = "no"
    assert compare(record, (200, record["headers"], old))
    bad = json.loads((FIXTURES / "real-0.84" / "v2.scan.limit_zero.json").read_text())
    assert any(d.startswith("status 422") for d in compare(bad, (422, bad["headers"], bad["body"])))
    assert any("x-agnes-accepts" in d for d in compare(bad, (400, {"content-type": "application/json"},
                                                              bad["body"])))
