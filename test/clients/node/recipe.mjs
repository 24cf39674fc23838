// The README's Node recipe, run by test/python/test_clients.py: load agnes
// into @duckdb/node-api, sync, query a synced table and a server scan.
// AGNES_EXTENSION names the extension file; the server, token and workspace
// come from agnes's usual configuration (here AGNES_SERVER, AGNES_TOKEN,
// AGNES_LOCAL_DIR).
import { DuckDBInstance } from '@duckdb/node-api';

const instance = await DuckDBInstance.create('analytics.duckdb', {
  allow_unsigned_extensions: 'true',
});
const con = await instance.connect();
await con.run(`LOAD '${process.env.AGNES_EXTENSION}'`);

const synced = await con.runAndReadAll(
  "SELECT table_id, action FROM agnes_sync() WHERE kind = 'table' ORDER BY table_id");
for (const row of synced.getRowObjects()) console.log(`${row.table_id}: ${row.action}`);

const orders = await con.runAndReadAll('SELECT count(*)::INTEGER AS n FROM orders');
console.log(`orders: ${orders.getRowObjects()[0].n} rows`);

const scanned = await con.runAndReadAll(
  "SELECT count(*)::INTEGER AS n FROM agnes_scan('orders', \"limit\" := 7)");
console.log(`scanned: ${scanned.getRowObjects()[0].n} rows`);

con.closeSync();
instance.closeSync();
