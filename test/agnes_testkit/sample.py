"""Sample data for the demo and the tests, made by DuckDB.

``make_sample(DIR)`` writes, in DIR:

- ``orders.parquet``: order_id, customer_id, order_date, amount DECIMAL(12,2), status
- ``customers.parquet``: customer_id, name, email, country, signup_date
- ``in.c-crm.people.parquet``: a table registered under a dotted id
- ``products.parquet``: hashed like a real server's pipeline table (``version``)
- ``catalog.json``: a remote-only table ``live_orders`` (bigquery), ``products``
  materialized, two users (``demo-token``: analyst, every table;
  ``limited-token``: guest, only ``orders``) and a memory bundle.

The data are deterministic (hash-based, no randomness). No parquet file is
ever committed: run ``python -m agnes_testkit.sample DIR`` (PYTHONPATH=test).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEMO_TOKEN = "demo-token"
LIMITED_TOKEN = "limited-token"

# Rows per table: (small, big). Big is for benchmarks.
_ROWS = {
    "orders": (5_000, 2_000_000),
    "customers": (500, 100_000),
    "in.c-crm.people": (300, 50_000),
    "products": (120, 10_000),
}

_MEMORY = {
    "mandatory": [
        {
            "id": "sql-style",
            "title": "SQL style",
            "domain": "analytics",
            "category": "conventions",
            "content": "Write keywords in upper case. Name money columns *_amount "
            "and keep them DECIMAL; never cast them to DOUBLE.",
            "status": "mandatory",
            "confidence": 1.0,
            "created_at": "2026-03-02T09:00:00",
            "updated_at": "2026-04-10T12:30:00",
            "tags": '["sql", "style"]',
        },
        {
            "id": "pii-handling",
            "title": "Personal data",
            "domain": "compliance",
            "category": "policy",
            "content": "Emails and names in in.c-crm.people are personal data: "
            "aggregate them, never export them row by row.",
            "status": "mandatory",
            "confidence": 1.0,
            "created_at": "2026-03-05T10:00:00",
            "updated_at": "2026-03-05T10:00:00",
            "tags": None,
        },
    ],
    "approved": [
        {
            "id": "revenue-definition",
            "title": "Revenue",
            "domain": "finance",
            "category": "definitions",
            "content": "Revenue counts orders whose status is 'shipped' or "
            "'delivered'; refunds are subtracted in the month they happen.",
            "status": "approved",
            "confidence": 0.9,
            "created_at": "2026-02-11T08:15:00",
            "updated_at": "2026-04-01T16:45:00",
            "tags": '["finance"]',
        },
        {
            "id": "churn-window",
            "title": "Churn",
            "domain": "product",
            "category": None,
            "content": "A customer has churned after 90 days without an order.",
            "status": "approved",
            "confidence": 0.8,
            "created_at": "2026-01-20T14:00:00",
            "updated_at": "2026-01-20T14:00:00",
            "tags": None,
        },
    ],
}

SAMPLE_CATALOG = {
    "tables": {
        "orders": {"query_mode": "local", "source_type": "keboola", "hash": "md5"},
        "customers": {"query_mode": "local", "source_type": "keboola"},
        "in.c-crm.people": {"query_mode": "local", "source_type": "keboola"},
        "products": {"query_mode": "materialized", "source_type": "keboola", "hash": "version"},
        "live_orders": {"query_mode": "remote", "source_type": "bigquery", "rows": 1_250_000},
    },
    "users": {
        DEMO_TOKEN: {"name": "analyst", "tables": "*"},
        LIMITED_TOKEN: {"name": "guest", "tables": ["orders"]},
    },
    "memory": _MEMORY,
}


def _sql(n: dict) -> dict:
    return {
        "orders": f"""
            SELECT i AS order_id,
                   1 + CAST(hash(i, 'c') % {n['customers']} AS BIGINT) AS customer_id,
                   DATE '2025-01-01' + CAST(hash(i, 'd') % 480 AS INTEGER) AS order_date,
                   CAST((hash(i, 'a') % 50000) / 100.0 + 5 AS DECIMAL(12, 2)) AS amount,
                   ['new', 'paid', 'shipped', 'delivered', 'refunded'][1 + CAST(hash(i, 's') % 5 AS BIGINT)]
                       AS status
            FROM range(1, {n['orders']} + 1) t(i)""",
        "customers": f"""
            SELECT i AS customer_id,
                   ['Ada', 'Bo', 'Cyril', 'Dana', 'Emil', 'Fatima', 'Gustav', 'Hana'][1 + i % 8]
                       || ' ' || ['Novak', 'Svoboda', 'Smith', 'Dvořák', 'Meyer'][1 + CAST(hash(i) % 5 AS BIGINT)]
                       AS name,
                   'customer' || i || '@example.com' AS email,
                   ['CZ', 'DE', 'US', 'GB', 'PL'][1 + CAST(hash(i, 'k') % 5 AS BIGINT)] AS country,
                   DATE '2023-01-01' + CAST(hash(i, 'j') % 700 AS INTEGER) AS signup_date
            FROM range(1, {n['customers']} + 1) t(i)""",
        "in.c-crm.people": f"""
            SELECT i AS person_id,
                   ['Jana', 'Petr', 'Eva', 'Tomáš', 'Lucie'][1 + i % 5] AS first_name,
                   ['Horák', 'Král', 'Beneš', 'Veselý'][1 + CAST(hash(i) % 4 AS BIGINT)] AS last_name,
                   'person' || i || '@crm.example.com' AS email,
                   'Company ' || (1 + CAST(hash(i, 'co') % 40 AS BIGINT)) AS company
            FROM range(1, {n['in.c-crm.people']} + 1) t(i)""",
        "products": f"""
            SELECT i AS product_id,
                   'Product ' || i AS name,
                   ['books', 'games', 'garden', 'tools'][1 + CAST(hash(i) % 4 AS BIGINT)] AS category,
                   CAST((hash(i, 'p') % 20000) / 100.0 + 1 AS DECIMAL(10, 2)) AS price
            FROM range(1, {n['products']} + 1) t(i)""",
    }


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def write_parquet(con, path: Path, query: str) -> None:
    """``COPY (query) TO path (FORMAT parquet)``, the path safely quoted."""
    con.execute(f"COPY ({query}) TO {_literal(path)} (FORMAT parquet)")


def write_catalog(data_dir, catalog: dict) -> Path:
    """Writes ``catalog.json`` as the single JSON object the server reads."""
    path = Path(data_dir) / "catalog.json"
    path.write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    return path


def write_partitioned(data_dir, table: str, parts: dict) -> Path:
    """Writes a partitioned table (a 0.84 server's ``parts``): the folder
    ``data_dir/table`` with one parquet per ``{relative path: query}``."""
    import duckdb

    folder = Path(data_dir) / table
    con = duckdb.connect()
    try:
        for rel, query in parts.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(con, path, query)
    finally:
        con.close()
    return folder


def make_sample(data_dir, *, small: bool = True) -> Path:
    """Writes the sample tables and catalog into ``data_dir`` (created)."""
    import duckdb

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = {name: sizes[0 if small else 1] for name, sizes in _ROWS.items()}
    con = duckdb.connect()
    try:
        for table, query in _sql(rows).items():
            write_parquet(con, data_dir / f"{table}.parquet", query)
    finally:
        con.close()
    write_catalog(data_dir, SAMPLE_CATALOG)
    return data_dir


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write agnes sample data into DIR.")
    parser.add_argument("data_dir")
    parser.add_argument("--big", action="store_true", help="benchmark sizes")
    args = parser.parse_args(argv)
    out = make_sample(args.data_dir, small=not args.big)
    for path in sorted(out.iterdir()):
        if path.is_file():
            print(f"{path.stat().st_size:>12}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
