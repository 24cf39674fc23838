"""The README's ibis recipe, run by test/python/test_clients.py.

AGNES_EXTENSION names the extension file; the server, token and workspace
come from agnes's usual configuration (AGNES_SERVER, AGNES_TOKEN,
AGNES_LOCAL_DIR). Prints what each step shows, one line each.
"""

import os

import ibis

extension = os.environ["AGNES_EXTENSION"]

# ibis loads only extensions it finds by name in duckdb_extensions():
# install the file once under its name, then load it by name.
con = ibis.duckdb.connect(allow_unsigned_extensions=True)
con.raw_sql(f"FORCE INSTALL '{extension}'")
con.load_extension("agnes")

# LOAD alone (an in-memory session): the synced tables answer by name,
# but catalog browsers (list_tables) show nothing yet ...
print("list_tables after LOAD:", con.list_tables())
print("orders rows:", con.table("orders").count().execute())
# ... until a sync makes the views (offline := true: no server asked).
con.raw_sql("SELECT * FROM agnes_sync(offline := true)").fetchall()
print("list_tables after agnes_sync:", con.list_tables())

# Queried on the server, as an ibis expression.
big = con.sql("SELECT order_id, amount FROM agnes_scan('orders', \"where\" := 'amount > 400')")
print("big orders:", big.count().execute())

# The trap: load_extension(<path>) returns without error and loads nothing.
other = ibis.duckdb.connect(allow_unsigned_extensions=True)
other.load_extension(extension)
try:
    other.raw_sql("SELECT * FROM agnes_version()").fetchall()
    print("load_extension(path): loaded")
except Exception as e:
    print("load_extension(path): nothing loaded:", type(e).__name__)
