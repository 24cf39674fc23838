#!/usr/bin/env python3
"""`make bench`: agnes against the wire limit and standard tools, on loopback.

Makes its own data with DuckDB, serves it with `agnes-server`, and prints one
table of medians with the ratios computed in the same run:

1. cold full sync of the large set (MB/s) beside `curl` alone and
   `curl | tee FILE | md5sum` at the same parallelism;
2. cold sync of the wide set (s) beside one `curl` per file in sequence;
3. no-op sync of the wide set, end to end as a process (ms): `da sync
   --quiet` when `da` is built, else the duckdb CLI running agnes_sync();
4. what verification costs: cold large sync with MD5 hashes against the same
   with empty hashes (parquet check instead);
5. peak memory of the host process: idle, large sync, and a sync of files a
   quarter the size, to show it does not grow with file size;
6. LOAD agnes with 1000 synced tables;
7. a 1M-row, 6-column table scanned on the server through agnes_scan(),
   beside `curl` of the same Arrow stream to /dev/null (as sent to agnes,
   gzipped, and plain), and the same rows read through a synced parquet view;
8. scaling (issue 25): 1,000, 10,000 and 50,000 tables, each figure beside
   its floor in the same run: the hook's no-op beside `curl` of the same
   manifest; a cold `da sync` beside the downloads by one `curl --parallel`
   plus DuckDB making the same views; its peak RSS beside DuckDB's; the
   first agnes_sync() of a fresh in-memory session beside DuckDB making the
   same views there; and a manifest of 2,000,000 tables.

Usage: bench.py --duckdb CLI --extension EXT --server-bin BIN [--da DA]
                [--scale 1.0] [--runs 3] [--out docs/PERFORMANCE.md]
                [--only scaling] [--sizes 1000,10000,50000]
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))

from agnes_testkit.sample import write_catalog  # noqa: E402
from agnes_testkit.server import LocalServer  # noqa: E402

TOKEN = "bench-token"
THREADS = 4


def make_tables(folder: Path, count: int, target_bytes: int, prefix: str) -> None:
    """`count` parquet files of about `target_bytes` each, of incompressible data."""
    folder.mkdir(parents=True, exist_ok=True)
    # About 28 bytes a row after parquet's encoding of these columns.
    rows = max(10, target_bytes // 28)
    con = duckdb.connect()
    for i in range(count):
        path = folder / f"{prefix}{i:04d}.parquet"
        # Kept from an earlier run only when it is about the size asked for.
        if path.exists() and 0.7 < path.stat().st_size / target_bytes < 1.4:
            continue
        con.execute(
            f"COPY (SELECT range AS id, hash(range + {i}) AS h1, hash(range * 7 + {i}) AS h2, "
            f"(hash(range) % 1000000)::INTEGER AS n FROM range({rows})) "
            f"TO '{path}' (FORMAT parquet, COMPRESSION uncompressed)"
        )
    con.close()


def make_scan_table(folder: Path, rows: int) -> None:
    """`scan1m`: `rows` rows of six typed columns, served for agnes_scan()."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scan1m.parquet"
    con = duckdb.connect()
    if not path.exists() or con.execute(f"SELECT count(*) FROM '{path}'").fetchone()[0] != rows:
        con.execute(
            "COPY (SELECT i AS id, 1 + hash(i, 'c') % 100000 AS customer_id, "
            "DATE '2025-01-01' + (hash(i, 'd') % 480)::INTEGER AS day, "
            "((hash(i, 'a') % 50000) / 100.0)::DECIMAL(12, 2) AS amount, "
            "['new', 'paid', 'shipped', 'delivered', 'refunded'][1 + (hash(i, 's') % 5)::BIGINT] AS status, "
            f"(hash(i, 'x') % 1000000) / 7.0 AS score FROM range({rows}) t(i)) TO '{path}' (FORMAT parquet)"
        )
    con.close()
    catalog(folder, "md5")


def make_copies(folder: Path, count: int) -> None:
    """`count` copies of one small parquet file, `t000000` on: the tables of
    the scaling section (no catalog entry each: the server reads its catalog
    at every request)."""
    folder.mkdir(parents=True, exist_ok=True)
    seed = folder.parent / "scale-seed.parquet"
    if not seed.exists():
        duckdb.connect().execute(
            f"COPY (SELECT range AS id, range * 2 AS v, 'x' || range AS s FROM range(10)) TO '{seed}' (FORMAT parquet)"
        )
    have = {p.name for p in folder.glob("t*.parquet")}
    for i in range(count):
        if f"t{i:06d}.parquet" not in have:
            shutil.copyfile(seed, folder / f"t{i:06d}.parquet")
    for extra in sorted(have - {f"t{i:06d}.parquet" for i in range(count)}):
        (folder / extra).unlink()
    write_catalog(folder, {"users": {TOKEN: {"name": "bench", "tables": "*"}}})


def catalog(folder: Path, hash_mode: str) -> None:
    tables = {p.stem: {"hash": hash_mode} for p in folder.glob("*.parquet")}
    write_catalog(folder, {"tables": tables, "users": {TOKEN: {"name": "bench", "tables": "*"}}})


def warm(server: LocalServer) -> None:
    """One manifest fetch: the server hashes every file once, then caches."""
    request = urllib.request.Request(server.url + "/api/sync/manifest", headers={"Authorization": f"Bearer {TOKEN}"})
    urllib.request.urlopen(request, timeout=600).read()


class Ran(NamedTuple):
    seconds: float
    rss_mib: float
    cpu_seconds: float


# GNU time, where installed, reads a child's peak RSS. `wait4` alone cannot:
# Linux counts in a child's peak the memory of the process that started it
# (recorded at exec, and Python starts children with vfork), so once this
# bench had grown to 186 MB making its data, every child read 186 MB.
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None


def run_child(cmd: list[str], env: dict) -> Ran:
    """Runs a child; its wall time, peak RSS and CPU."""
    measure = tempfile.NamedTemporaryFile(prefix="agnes-bench-", suffix=".time")
    with measure:
        full = [GNU_TIME, "-f", "%M %U %S", "-o", measure.name, *cmd] if GNU_TIME else cmd
        started = time.perf_counter()
        proc = subprocess.Popen(full, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = proc.stdout.read(), proc.stderr.read()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {err.decode()[-2000:]}")
        if GNU_TIME:
            kib, user, system = Path(measure.name).read_text().split()[-3:]
            return Ran(elapsed, int(kib) / 1024, float(user) + float(system))
    return Ran(elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = REPO / "build" / "bench"
        self.extension = Path(args.extension).resolve()

    def sync_cmd(self, workspace: Path, server: LocalServer, sql: str = "SELECT count(*) FROM agnes_sync()") -> tuple[list[str], dict]:
        env = dict(
            os.environ,
            AGNES_SERVER=server.url,
            AGNES_TOKEN=TOKEN,
            AGNES_LOCAL_DIR=str(workspace),
            AGNES_CONFIG_DIR=str(workspace / "config"),
        )
        cmd = [self.args.duckdb, "-unsigned", ":memory:", "-c", f"LOAD '{self.extension}'; {sql};"]
        return cmd, env

    def cold_sync(self, server: LocalServer, label: str) -> tuple[float, float]:
        workspace = self.work / "ws" / label
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        cmd, env = self.sync_cmd(workspace, server, f"SELECT count(*) FROM agnes_sync(threads := {THREADS})")
        seconds, rss, _ = run_child(cmd, env)
        failed = list(workspace.glob("server/parquet/*.parquet"))
        if len(failed) != len(list(server.data_dir.glob("*.parquet"))):
            raise RuntimeError(f"sync of {label} left {len(failed)} files")
        return seconds, rss

    def curl_all(self, server: LocalServer, ids: list[str], parallel: int, mode: str = "plain") -> float:
        """Every table by `curl`, `parallel` at once: `plain` (`curl -o`),
        `fsync` (`curl -o`, then `sync FILE`: on disk, as agnes leaves each
        file before renaming it into place) or `md5` (`curl | tee | md5sum`)."""
        out = self.work / "curl"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

        def one(table: str) -> None:
            url = f"{server.url}/api/data/{table}/download"
            auth = f"Authorization: Bearer {TOKEN}"
            path = out / f"{table}.parquet"
            if mode == "md5":
                cmd = f"curl -sf -H '{auth}' '{url}' | tee '{path}' | md5sum > /dev/null"
                subprocess.run(["sh", "-c", cmd], check=True)
            elif mode == "fsync":
                subprocess.run(["sh", "-c", f"curl -sf -H '{auth}' -o '{path}' '{url}' && sync '{path}'"], check=True)
            else:
                subprocess.run(["curl", "-sf", "-H", auth, "-o", str(path), url], check=True)

        started = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(one, ids))
        return time.perf_counter() - started

    def notebook_load(self, workspace: Path, env: dict) -> list[tuple[str, str, str]]:
        """`LOAD agnes` in a fresh in-memory Python session over a workspace of
        1000 synced tables, beside making a view per table (what LOAD did
        before the replacement scan), and the first query of one table."""
        script = (
            "import duckdb, json, sys, time\n"
            "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
            "t = time.perf_counter(); con.execute(f\"LOAD '{sys.argv[1]}'\"); load = time.perf_counter() - t\n"
            "t = time.perf_counter(); n = con.execute('SELECT count(*) FROM w0500').fetchone()[0]; first = time.perf_counter() - t\n"
            "t = time.perf_counter(); con.execute('SELECT count(*) FROM agnes_sync(offline := true)').fetchall(); views = time.perf_counter() - t\n"
            "con.execute('SELECT count(*) FROM agnes_sync()').fetchall()\n"
            "t = time.perf_counter(); con.execute('SELECT count(*) FROM agnes_sync()').fetchall(); noop = time.perf_counter() - t\n"
            "print(json.dumps({'load': load, 'first': first, 'views': views, 'noop': noop, 'rows': n}))\n"
        )
        runs = []
        for _ in range(max(5, self.args.runs)):
            out = subprocess.run([sys.executable, "-c", script, str(self.extension)], env=env,
                                 capture_output=True, text=True, check=True, cwd=workspace)
            runs.append(json.loads(out.stdout))
        load = statistics.median(r["load"] for r in runs) * 1000
        views = statistics.median(r["views"] for r in runs) * 1000
        first = statistics.median(r["first"] for r in runs) * 1000
        noop = statistics.median(r["noop"] for r in runs) * 1000
        return [
            ("6. LOAD agnes, 1000 synced tables (Python, in-memory)", f"{load:.1f} ms",
             f"target: < 50 ms; a view per table, as LOAD did before: {views:.0f} ms ({views / load:.0f}x)"),
            ("   first query of one table after it", f"{first:.1f} ms", "SELECT count(*) FROM w0500, by name"),
            ("   notebook no-op: agnes_sync() in that session", f"{noop:.0f} ms", "1000 unchanged tables, views in place"),
        ]

    def scan(self, server: LocalServer, folder: Path) -> list[tuple[str, str, str]]:
        """agnes_scan() of `scan1m` (every column read) against curl of the
        same stream, and against the synced parquet view of the same rows."""
        workspace = self.work / "ws" / "scan"
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        env = dict(os.environ, AGNES_SERVER=server.url, AGNES_TOKEN=TOKEN,
                   AGNES_LOCAL_DIR=str(workspace), AGNES_CONFIG_DIR=str(workspace / "config"))
        # The query reads every value of every column (sums, not counts,
        # which a parquet file answers from its footer) without DuckDB
        # spending time on output; only the query is timed, in-process.
        cols = "count(*), sum(id), sum(customer_id), max(day), sum(amount), sum(length(status)), sum(score)"
        script = (
            "import duckdb, json, sys, time\n"
            "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
            "con.execute(\"SET enable_progress_bar = false\")\n"
            "con.execute(f\"LOAD '{sys.argv[1]}'\")\n"
            "if sys.argv[3] == 'sync': con.execute('SELECT count(*) FROM agnes_sync()').fetchall()\n"
            "t = time.perf_counter(); row = con.execute(sys.argv[2]).fetchone(); s = time.perf_counter() - t\n"
            "print(json.dumps({'secs': s, 'rows': row[0]}))\n"
        )

        def timed(sql: str, mode: str = "") -> float:
            out = subprocess.run([sys.executable, "-c", script, str(self.extension), sql, mode],
                                 env=env, capture_output=True, text=True, cwd=workspace)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            result = json.loads(out.stdout)
            if result["rows"] != rows:
                raise RuntimeError(f"{sql}: {result['rows']} rows, not {rows}")
            return result["secs"]

        rows = duckdb.connect().execute(f"SELECT count(*) FROM '{folder / 'scan1m.parquet'}'").fetchone()[0]
        body = json.dumps({"table_id": "scan1m"})
        auth = f"Authorization: Bearer {TOKEN}"
        url = f"{server.url}/api/v2/scan"

        def curl(*extra: str) -> tuple[float, int]:
            started = time.perf_counter()
            out = subprocess.run(["curl", "-sf", "-X", "POST", "-H", auth, "-H", "Content-Type: application/json",
                                  *extra, "-d", body, "-o", "/dev/null", "-w", "%{size_download}", url],
                                 capture_output=True, text=True, check=True)
            return time.perf_counter() - started, int(out.stdout)

        plain_bytes = curl()[1]
        mb = plain_bytes / 1e6
        scan = self.median(lambda: timed(f"SELECT {cols} FROM agnes_scan('scan1m')"))
        gz = self.median(lambda: curl("--compressed")[0])
        plain = self.median(lambda: curl()[0])
        def in_cli() -> tuple[float, float]:
            """The scan in the duckdb CLI, start and LOAD included: (wall,
            CPU). CPU near twice the wall would be DuckDB's query thread
            spinning while a worker scans (src/functions/scan.rs, init)."""
            sql = f"LOAD '{self.extension}'; SELECT {cols} FROM agnes_scan('scan1m');"
            ran = run_child([self.args.duckdb, "-unsigned", ":memory:", "-c", sql], env)
            return ran.seconds, ran.cpu_seconds

        cli_runs = sorted(in_cli() for _ in range(self.args.runs))
        cli_wall, cli_cpu = cli_runs[len(cli_runs) // 2]
        timed("SELECT count(*) FROM scan1m", "sync")  # the first sync downloads it
        view = self.median(lambda: timed(f"SELECT {cols} FROM scan1m", "sync"))
        return [
            (f"7. agnes_scan(), {rows:,} rows x 6 columns", f"{mb / scan:.0f} MB/s",
             f"{scan:.2f} s, {rows / scan / 1e6:.1f}M rows/s, {mb:.0f} MB of Arrow; into DuckDB vectors"),
            ("   curl --compressed of the same stream", f"{mb / gz:.0f} MB/s",
             f"agnes / curl = {gz / scan:.2f} (target >= 0.7; the stream as agnes asks for it, gzipped)"),
            ("   curl of the stream, plain", f"{mb / plain:.0f} MB/s", f"agnes / curl = {plain / scan:.2f}"),
            ("   same scan in the duckdb CLI", f"{cli_wall:.2f} s", f"{cli_cpu:.2f} s of CPU; process start and LOAD included"),
            ("   same rows, synced parquet view", f"{view:.2f} s", f"{scan / view:.1f}x faster than scanning on the server"),
        ]

    def scaling_all(self, sizes: list[int]) -> list[tuple[str, str, str]]:
        """The scaling section at each size, then the huge manifest; the
        synced copies are removed only at the end (see `scaling`)."""
        rows = [r for n in sizes for r in self.scaling(n)]
        for n in sizes:
            shutil.rmtree(self.work / "ws" / f"scale-{n}", ignore_errors=True)
        return rows + self.huge_manifest()

    def scaling(self, n: int) -> list[tuple[str, str, str]]:
        """Issue 25 at `n` tables: each figure beside its floor, measured in
        the same run, interleaved, medians."""
        folder = self.work / f"scale-{n}"
        make_copies(folder, n)
        runs = self.args.runs if n <= 10_000 else 1
        out: list[tuple[str, str, str]] = []
        with LocalServer(folder, binary=self.args.server_bin) as server:
            warm(server)
            ids = [f"t{i:06d}" for i in range(n)]
            # Nothing is deleted between timed runs: on a file system
            # without a journal, ext4 skips inodes freed in the last minute
            # when it makes a file, and whichever command came right after
            # a deletion of thousands of files paid for it (up to 5x the
            # system time at 1,000 tables). Each run gets fresh folders.
            scratch = self.work / "ws" / f"scale-{n}"
            shutil.rmtree(scratch, ignore_errors=True)
            cold, downloads, views = [], [], []
            for run in range(runs):
                workspace = scratch / f"run-{run}"
                workspace.mkdir(parents=True)
                cmd, env = self.sync_cmd(workspace, server)
                env = dict(env, AGNES_EXTENSION=str(self.extension))
                da = [self.args.da, "sync", "--quiet", "--workspace", str(workspace), "--duckdb", self.args.duckdb]
                downloads.append(self.curl_parallel(server, ids, scratch / f"curl-{run}"))
                cold.append(run_child(da, env))
                views.append(self.duckdb_views(workspace / "server" / "parquet", ids))
            t_cold = statistics.median(r.seconds for r in cold)
            t_dl = statistics.median(downloads)
            t_views = statistics.median(r.seconds for r in views)
            rss_cold = max(r.rss_mib for r in cold)
            rss_views = max(r.rss_mib for r in views)
            floor = t_dl + t_views
            out.append((f"8. {n:,} tables: cold da sync", f"{t_cold:.2f} s",
                        f"floor {floor:.2f} s (curl --parallel {t_dl:.2f} s + DuckDB's views {t_views:.2f} s): "
                        f"{t_cold / floor:.2f}x (bound 1.2)"))
            out.append(("   its peak RSS", f"{rss_cold:.0f} MiB",
                        f"DuckDB making the same views {rss_views:.0f} MiB: {rss_cold - rss_views:+.0f} MiB (bound +100)"))
            curl = ["curl", "-sf", "--compressed", "-H", f"Authorization: Bearer {TOKEN}", "-o", "/dev/null",
                    server.url + "/api/sync/manifest"]
            pairs = [(run_child(da, env).seconds, run_child(curl, env).seconds) for _ in range(max(7, self.args.runs))]
            noop = statistics.median(p[0] for p in pairs)
            fetch = statistics.median(p[1] for p in pairs)
            out.append(("   no-op da sync --quiet", f"{noop * 1000:.0f} ms",
                        f"curl --compressed of the manifest {fetch * 1000:.0f} ms: {noop / fetch:.2f}x (bound 1.2)"))
            first, own = [], []
            for _ in range(runs):
                first.append(self.first_notebook_sync(workspace, env))
                own.append(self.python_views(workspace / "server" / "parquet", n))
            t_first, t_own = statistics.median(first), statistics.median(own)
            out.append(("   first agnes_sync() after LOAD (in memory)", f"{t_first:.2f} s",
                        f"DuckDB making the same views {t_own:.2f} s: {t_first / t_own:.2f}x (bound 1.2)"))
        return out

    def curl_parallel(self, server: LocalServer, ids: list[str], out: Path) -> float:
        """Every table by one `curl` into the new folder `out`, 4 transfers
        at once, kept connections: the downloads' floor."""
        out.mkdir(parents=True)
        config = out / "urls.txt"
        config.write_text("".join(f'url = "{server.url}/api/data/{t}/download"\noutput = "{out}/{t}.parquet"\n' for t in ids))
        started = time.perf_counter()
        subprocess.run(["curl", "-sf", "--parallel", "--parallel-max", str(THREADS), "-H", f"Authorization: Bearer {TOKEN}",
                        "-K", str(config)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started

    def duckdb_views(self, parquet_dir: Path, ids: list[str]) -> Ran:
        """The duckdb CLI making one plain view per table in a fresh file
        database, in one transaction: DuckDB's own floor for a cold sync."""
        db = self.work / "views-floor.duckdb"
        for f in (db, Path(f"{db}.wal")):
            f.unlink(missing_ok=True)
        script = self.work / "views-floor.sql"
        script.write_text("BEGIN;\n" + "".join(
            f"CREATE VIEW \"{t}\" AS SELECT * FROM read_parquet('{parquet_dir}/{t}.parquet');\n" for t in ids) + "COMMIT;\n")
        ran = run_child([self.args.duckdb, str(db), "-c", f".read {script}"], dict(os.environ))
        db.unlink(missing_ok=True)
        return ran

    def first_notebook_sync(self, workspace: Path, env: dict) -> float:
        """The first agnes_sync() after LOAD in a fresh in-memory Python session."""
        script = (
            "import duckdb, sys, time\n"
            "con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})\n"
            "con.execute('SET enable_progress_bar = false')\n"
            "con.execute(f\"LOAD '{sys.argv[1]}'\")\n"
            "t = time.perf_counter(); n = con.execute('SELECT count(view_name) FROM agnes_sync()').fetchone()[0]\n"
            "print(time.perf_counter() - t, n)\n"
        )
        out = subprocess.run([sys.executable, "-c", script, str(self.extension)], env=env,
                             capture_output=True, text=True, check=True, cwd=workspace)
        seconds, views = out.stdout.split()[-2:]
        return float(seconds)

    def python_views(self, parquet_dir: Path, n: int) -> float:
        """DuckDB making the same plain views in a fresh in-memory Python
        session, in one transaction: the notebook's floor."""
        script = (
            "import duckdb, sys, time\n"
            "con = duckdb.connect()\n"
            "d, n = sys.argv[1], int(sys.argv[2])\n"
            "sql = 'BEGIN;' + ''.join(f\"CREATE VIEW \\\"t{i:06d}\\\" AS SELECT * FROM read_parquet('{d}/t{i:06d}.parquet');\" for i in range(n)) + 'COMMIT;'\n"
            "t = time.perf_counter(); con.execute(sql); print(time.perf_counter() - t)\n"
        )
        out = subprocess.run([sys.executable, "-c", script, str(parquet_dir), str(n)],
                             capture_output=True, text=True, check=True)
        return float(out.stdout.split()[-1])

    def huge_manifest(self, tables: int = 2_000_000) -> list[tuple[str, str, str]]:
        """A manifest of `tables` tables, served by a stand-in server: agnes
        refuses it before holding its tables; its peak RSS."""
        body_file = self.work / f"manifest-{tables}.json.gz"
        if not body_file.exists():
            entry = '{"hash":"0123456789abcdef0123456789abcdef","size_bytes":612,"rows":10}'
            text = '{"tables":{' + ",".join(f'"t{i:07d}":{entry}' for i in range(tables)) + '},"server_time":"t"}'
            body_file.write_bytes(gzip.compress(text.encode(), compresslevel=1))
        body = body_file.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data, kind = (body, "gzip") if self.path == "/api/sync/manifest" else (b'{"mandatory": [], "approved": []}', None)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if kind:
                    self.send_header("Content-Encoding", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            workspace = self.work / "ws" / "huge"
            shutil.rmtree(workspace, ignore_errors=True)
            workspace.mkdir(parents=True)
            env = dict(os.environ, AGNES_SERVER=f"http://127.0.0.1:{httpd.server_port}", AGNES_TOKEN=TOKEN,
                       AGNES_LOCAL_DIR=str(workspace), AGNES_CONFIG_DIR=str(workspace / "config"),
                       AGNES_EXTENSION=str(self.extension))
            started = time.perf_counter()
            proc = subprocess.Popen([self.args.da, "sync", "--quiet", "--workspace", str(workspace), "--duckdb", self.args.duckdb],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
            err = proc.stderr.read().decode()
        finally:
            httpd.shutdown()
        refused = os.waitstatus_to_exitcode(status) != 0 and f"lists {tables} tables" in err
        what = "refused: " + err.strip().split(": it lists")[-1][:60] if refused else f"not refused: {err.strip()[:80]}"
        return [(f"   a manifest of {tables:,} tables", f"{usage.ru_maxrss / 1024:.0f} MiB",
                 f"peak RSS (bound 1024 MiB), {seconds:.1f} s; {what}")]

    def median(self, fn, runs: int | None = None) -> float:
        return statistics.median(fn() for _ in range(runs or self.args.runs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duckdb", required=True)
    ap.add_argument("--extension", required=True)
    ap.add_argument("--server-bin", required=True)
    ap.add_argument("--da")
    ap.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1.0")))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--only", choices=["scaling"], help="run only this section (the report is not written)")
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "1000,10000,50000"),
                    help="table counts of the scaling section")
    args = ap.parse_args()
    b = Bench(args)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.only == "scaling":
        rows = b.scaling_all(sizes)
        print_table(rows, args, write=False)
        return 0

    large, quarter, wide = b.work / "large", b.work / "quarter", b.work / "wide"
    large_bytes = int(200e6 * args.scale)
    print(f"making data (scale {args.scale}): 10 x {large_bytes / 1e6:.0f} MB, 10 x {large_bytes / 4e6:.0f} MB, 1000 x 50 KB", flush=True)
    make_tables(large, 10, large_bytes, "big")
    make_tables(quarter, 10, large_bytes // 4, "quarter")
    make_tables(wide, 1000, 50_000, "w")
    for folder in (large, quarter, wide):
        catalog(folder, "md5")
    large_mb = sum(p.stat().st_size for p in large.glob("*.parquet")) / 1e6
    rows: list[tuple[str, str, str]] = []

    with LocalServer(large, binary=args.server_bin) as server:
        ids = sorted(p.stem for p in large.glob("*.parquet"))
        warm(server)
        # Paired: each run times agnes and then each standard tool, so a
        # slow spell of the machine falls on all of them alike.
        runs = [(b.cold_sync(server, "large")[0],
                 b.curl_all(server, ids, THREADS),
                 b.curl_all(server, ids, THREADS, "fsync"),
                 b.curl_all(server, ids, THREADS, "md5")) for _ in range(args.runs)]
        cold, curl, durable, tee = (statistics.median(r[i] for r in runs) for i in range(4))
        rows += [
            ("1. cold sync, large set (agnes)", f"{large_mb / cold:.0f} MB/s", f"{cold:.2f} s for {large_mb:.0f} MB, MD5-verified, on disk"),
            ("   4 x curl -o (wire limit)", f"{large_mb / curl:.0f} MB/s", f"agnes / curl = {curl / cold:.2f} (issue 17's target: >= 0.8)"),
            ("   4 x curl -o, then sync FILE", f"{large_mb / durable:.0f} MB/s", f"agnes / durable curl = {durable / cold:.2f}"),
            ("   4 x curl | tee | md5sum", f"{large_mb / tee:.0f} MB/s", f"agnes / pipeline = {tee / cold:.2f}"),
        ]
        _, rss_large = b.cold_sync(server, "large-rss")
        catalog(large, "empty")
        unverified = b.median(lambda: b.cold_sync(server, "large-nohash")[0])
        catalog(large, "md5")
        rows.append(("4. verification: MD5 vs parquet check", f"{cold:.2f} s vs {unverified:.2f} s", f"MD5 costs {(cold / unverified - 1) * 100:+.0f}%"))

    with LocalServer(quarter, binary=args.server_bin) as server:
        warm(server)
        _, rss_quarter = b.cold_sync(server, "quarter")

    with LocalServer(wide, binary=args.server_bin) as server:
        ids = sorted(p.stem for p in wide.glob("*.parquet"))
        warm(server)
        wide_cold = b.median(lambda: b.cold_sync(server, "wide")[0])
        wide_curl = b.median(lambda: b.curl_all(server, ids, parallel=1), runs=1)
        rows.append(("2. cold sync, wide set (agnes)", f"{wide_cold:.2f} s", f"{wide_curl / wide_cold:.1f}x faster than curl per file ({wide_curl:.2f} s)"))
        workspace = b.work / "ws" / "wide-noop"
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        cmd, env = b.sync_cmd(workspace, server)
        run_child(cmd, env)  # the first sync; then every run is a no-op
        if args.da and Path(args.da).exists():
            label = "da sync --quiet"
            noop_cmd = [args.da, "sync", "--quiet", "--workspace", str(workspace), "--duckdb", args.duckdb]
            env = dict(env, AGNES_EXTENSION=str(b.extension))
            run_child(noop_cmd, env)  # da's own full sync: its stamp makes the next ones quick
        else:
            label = "duckdb -c agnes_sync()"
            noop_cmd = cmd
        noop = statistics.median(run_child(noop_cmd, env).seconds for _ in range(max(5, args.runs)))
        rows.append((f"3. no-op sync, wide set ({label})", f"{noop * 1000:.0f} ms", "target: < 30 ms (no DuckDB started)"))
        rows += b.notebook_load(workspace, env)

    scan_dir = b.work / "scan"
    make_scan_table(scan_dir, int(1_000_000 * min(1.0, args.scale)))
    with LocalServer(scan_dir, binary=args.server_bin) as server:
        warm(server)
        rows += b.scan(server, scan_dir)

    idle_cmd = [args.duckdb, "-unsigned", ":memory:", "-c", f"LOAD '{b.extension}'; SELECT 1;"]
    rss_idle = run_child(idle_cmd, dict(os.environ)).rss_mib
    rows.append(("5. peak RSS of the host (duckdb CLI)", f"{rss_large:.0f} MiB", f"idle with agnes {rss_idle:.0f} MiB; {rss_large - rss_idle:+.0f} MiB"))
    rows.append(("   same sync, files a quarter the size", f"{rss_quarter:.0f} MiB", f"grows {rss_large - rss_quarter:+.0f} MiB with 4x file size"))
    print("scaling: " + ", ".join(f"{n:,}" for n in sizes) + " tables", flush=True)
    rows += b.scaling_all(sizes)
    print_table(rows, args, write=bool(args.out))
    return 0


def print_table(rows: list[tuple[str, str, str]], args, write: bool) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, DuckDB CLI {subprocess.run([args.duckdb, '--version'], capture_output=True, text=True).stdout.split()[0]}"
    width = max(len(r[0]) for r in rows)
    table = "\n".join(f"{r[0]:<{width}}  {r[1]:>16}  {r[2]}" for r in rows)
    print(f"\nagnes bench ({machine}; median of {args.runs} runs; {THREADS} parallel downloads; loopback)\n")
    print(table)
    if write:
        write_report(args.out, machine, table, args)


def write_report(out: Path, machine: str, table: str, args) -> None:
    text = out.read_text() if out.exists() else ""
    marker_start, marker_end = "<!-- bench:start -->", "<!-- bench:end -->"
    block = (
        f"{marker_start}\nLatest `make bench` (scale {args.scale}, {time.strftime('%Y-%m-%d')}), on {machine}:\n\n"
        f"```\n{table}\n```\n{marker_end}"
    )
    if marker_start in text:
        head, rest = text.split(marker_start, 1)
        text = head + block + rest.split(marker_end, 1)[1]
    else:
        text = text + "\n" + block + "\n"
    out.write_text(text)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    sys.exit(main())
