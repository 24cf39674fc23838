"""`make test-realpeer`: agnes against the real upstream Agnes servers.

Not part of `make test`: CI cannot fetch upstream's code. On a machine
where `shared/realpeer/setup.sh` built them (RECIPE.md beside it; by default
under ~/realpeer), this starts both servers if they are down, then for each
generation (0.29 on :18000, 0.84 on :18100) and each user (analyst, admin):

- runs `da sync` in a fresh workspace and checks what was downloaded, what
  failed and why, which views exist, and that every downloaded view equals
  the server's own parquet (EXCEPT ALL both ways);
- syncs again and checks that nothing is downloaded;
- runs `agnes_sync()` in Python DuckDB in another fresh workspace and checks
  it takes the same tables;
- runs upstream's own client on the same server (`agnes pull` on 0.84, the
  old `da sync` on 0.29) and compares the set of tables it synced.

Prints one PASS/FAIL line per check and exits 1 when any failed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

GENERATIONS = {
    # name: (folder prefix in $REALPEER, port)
    "0.29": ("d0b", 18000),
    "0.84": ("head", 18100),
}

# What each user may download, by generation: (downloaded, failed, scan views).
# 0.84 analyst: the `crm` package; Orders2's id differs from its name, so the
# server refuses it both ways (CONTRACT.md §7.2). 0.84 admin: no package, so
# nothing, unless --all-tables. 0.29: no packages at all, the flat dict.
EXPECTED = {
    ("0.84", "analyst"): ({"orders", "events"}, {"Orders2"}, {"live_orders", "secret_ledger"}),
    ("0.84", "admin"): (set(), set(), {"live_orders", "secret_ledger"}),
    ("0.84", "admin", "all"): (
        {"orders", "events", "Orders2", "customers", "products", "in.c-crm.people"},
        set(),
        {"live_orders", "secret_ledger"},
    ),
    ("0.29", "analyst"): ({"orders"}, {"Orders2"}, {"live_orders"}),
    ("0.29", "admin"): (
        {"orders", "Orders2", "customers", "products", "in.c-crm.people"},
        set(),
        {"live_orders"},
    ),
}


class Checks:
    def __init__(self) -> None:
        self.rows: list[tuple[str, bool, str]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.rows.append((name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'}  {name}{'  -- ' + detail if detail and not ok else ''}", flush=True)
        return ok

    def summary(self) -> int:
        failed = [r for r in self.rows if not r[1]]
        print()
        print(f"{'check':<72} result")
        print("-" * 80)
        for name, ok, _ in self.rows:
            print(f"{name:<72} {'PASS' if ok else 'FAIL'}")
        print("-" * 80)
        print(f"{len(self.rows) - len(failed)} passed, {len(failed)} failed")
        return 1 if failed else 0


def up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def start_servers(realpeer: Path) -> None:
    for prefix, port in GENERATIONS.values():
        if not up(port):
            print(f"starting {prefix} on :{port}", flush=True)
            subprocess.run([str(realpeer / f"start-{prefix}.sh")], cwd=realpeer, check=True)


def token(realpeer: Path, prefix: str, who: str) -> str:
    return (realpeer / f"{prefix}-{who}-pat.txt").read_text().strip()


def da(args: argparse.Namespace, realpeer: Path, tok: str, port: int, ws: Path, *extra: str):
    env = dict(os.environ)
    env.update(
        AGNES_CONFIG_DIR=str(realpeer / "cfg-empty"),
        AGNES_DUCKDB=args.duckdb,
        AGNES_EXTENSION=args.extension,
        AGNES_TOKEN=tok,
        AGNES_SERVER=f"http://127.0.0.1:{port}",
        AGNES_LOCAL_DIR=str(ws),
    )
    ws.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([args.da, "sync", "--json", *extra], env=env, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(p.stdout)
    except json.JSONDecodeError:
        report = {"tables": [], "notices": [], "unparsed": p.stdout[-400:] + p.stderr[-400:]}
    return p.returncode, report


def downloaded(report: dict) -> set[str]:
    return {t["table"] for t in report.get("tables", []) if t["action"] == "downloaded"}


def failed(report: dict) -> dict[str, str]:
    return {t["table"]: t.get("error") or "" for t in report.get("tables", []) if t["action"] == "failed"}


def scan_views(report: dict) -> set[str]:
    return {t["table"] for t in report.get("tables", []) if t["action"] == "scan_view"}


def server_parquet(realpeer: Path, prefix: str, name: str) -> str | None:
    base = realpeer / f"data-{prefix}" / "extracts"
    files = glob.glob(str(base / "*" / "data" / f"{name}.parquet"))
    if files:
        return f"read_parquet('{files[0]}')"
    dirs = [d for d in glob.glob(str(base / "*" / "data" / name)) if os.path.isdir(d)]
    if dirs:
        return f"read_parquet('{dirs[0]}/**/*.parquet', union_by_name = true)"
    return None


def views_equal_server(ws: Path, realpeer: Path, prefix: str, names: set[str]) -> list[str]:
    """The tables whose view in `ws`'s database differs from the server's parquet, with why."""
    con = duckdb.connect(str(ws / "user" / "duckdb" / "analytics.duckdb"), read_only=True)
    try:
        return differing_views(con, realpeer, prefix, names)
    finally:
        con.close()


def differing_views(con: duckdb.DuckDBPyConnection, realpeer: Path, prefix: str, names: set[str]) -> list[str]:
    bad = []
    for name in sorted(names):
        src = server_parquet(realpeer, prefix, name)
        if src is None:
            bad.append(f"{name}: no server parquet")
            continue
        view = '"' + name.replace('"', '""') + '"'
        try:
            left = con.execute(f"SELECT count(*) FROM (SELECT * FROM {view} EXCEPT ALL SELECT * FROM {src})").fetchone()[0]
            right = con.execute(f"SELECT count(*) FROM (SELECT * FROM {src} EXCEPT ALL SELECT * FROM {view})").fetchone()[0]
            rows = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        except duckdb.Error as e:
            bad.append(f"{name}: {e}")
            continue
        if left or right or rows == 0:
            bad.append(f"{name}: {left}/{right} rows differ ({rows} in the view)")
    return bad


def local_tables(ws: Path) -> set[str]:
    """What a client left in server/parquet: files and partition folders."""
    parquet = ws / "server" / "parquet"
    if not parquet.is_dir():
        return set()
    out = set()
    for p in parquet.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_file() and p.name.endswith(".parquet"):
            out.add(p.name[: -len(".parquet")])
        elif p.is_dir() and any(p.rglob("*.parquet")):
            out.add(p.name)
    return out


def upstream_sync(realpeer: Path, gen: str, prefix: str, who: str, tok: str, port: int, ws: Path) -> int:
    ws.mkdir(parents=True, exist_ok=True)
    if gen == "0.29":
        cfg = ws.parent / f"{ws.name}-cfg"
        cfg.mkdir(exist_ok=True)
        env = dict(os.environ, DA_CONFIG_DIR=str(cfg), DA_TOKEN=tok, DA_SERVER=f"http://127.0.0.1:{port}",
                   DA_LOCAL_DIR=str(ws), COLUMNS="120")
        cmd = [str(realpeer / "venv-d0b" / "bin" / "da"), "sync"]
    else:
        cfg = ws.parent / f"{ws.name}-cfg"
        cfg.mkdir(exist_ok=True)
        (cfg / "token.json").write_text(json.dumps({"access_token": tok, "email": f"{who}@example.com"}))
        os.chmod(cfg / "token.json", 0o600)
        (cfg / "config.yaml").write_text(f"server: http://127.0.0.1:{port}\n")
        home = ws.parent / f"{ws.name}-home"
        home.mkdir(exist_ok=True)
        env = dict(os.environ, AGNES_CONFIG_DIR=str(cfg), HOME=str(home), AGNES_LOCAL_DIR=str(ws))
        cmd = [str(realpeer / "venv-head" / "bin" / "agnes"), "pull"]
    p = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    return p.returncode


def python_sync(args: argparse.Namespace, realpeer: Path, tok: str, port: int, ws: Path) -> tuple[set[str], str]:
    (ws / "user" / "duckdb").mkdir(parents=True, exist_ok=True)
    os.environ["AGNES_CONFIG_DIR"] = str(realpeer / "cfg-empty")
    con = duckdb.connect(str(ws / "user" / "duckdb" / "analytics.duckdb"),
                         config={"allow_unsigned_extensions": "true"})
    try:
        con.execute(f"LOAD '{args.extension}'")
        rows = con.execute(
            "SELECT table_id, action FROM agnes_sync(server := $s, token := $t, workspace := $w, new_workspace := true)",
            {"s": f"http://127.0.0.1:{port}", "t": tok, "w": str(ws)},
        ).fetchall()
        return {t for t, a in rows if a == "downloaded"}, ""
    except duckdb.Error as e:
        return set(), str(e)
    finally:
        con.close()


def run_generation(args, checks: Checks, realpeer: Path, scratch: Path, gen: str) -> None:
    prefix, port = GENERATIONS[gen]
    for who in ("analyst", "admin"):
        tok = token(realpeer, prefix, who)
        label = f"{gen} {who}"
        want_down, want_failed, want_scan = EXPECTED[(gen, who)]
        ws = scratch / f"{prefix}-{who}-da"
        code, report = da(args, realpeer, tok, port, ws)
        got = downloaded(report)
        checks.check(f"{label}: da sync downloads {sorted(want_down) or 'nothing'}", got == want_down, f"got {sorted(got)} {report.get('unparsed', '')}")
        fails = failed(report)
        checks.check(f"{label}: da sync fails exactly {sorted(want_failed) or 'nothing'}", set(fails) == want_failed, json.dumps(fails)[:300])
        if gen == "0.84" and "Orders2" in fails:
            why = fails["Orders2"]
            checks.check(f"{label}: Orders2's error names the id/name cause", "registry id 'orders2'" in why and "404" in why and "403" in why, why[:200])
        checks.check(f"{label}: scan views for {sorted(want_scan)}", scan_views(report) == want_scan, f"got {sorted(scan_views(report))}")
        checks.check(f"{label}: da sync exit status {2 if want_failed else 0}", code == (2 if want_failed else 0), f"got {code}")
        if gen == "0.84" and who == "admin":
            notice = " ".join(report.get("notices", []))
            checks.check(f"{label}: a notice says nothing is subscribed, with --all-tables", "--all-tables" in notice and "subscribe" in notice, notice[:200])
        bad = views_equal_server(ws, realpeer, prefix, got)
        checks.check(f"{label}: every downloaded view equals the server's parquet", not bad, "; ".join(bad))
        code2, again = da(args, realpeer, tok, port, ws)
        checks.check(f"{label}: a second da sync downloads nothing", downloaded(again) == set() and not (set(failed(again)) - want_failed), f"downloaded {sorted(downloaded(again))}, failed {sorted(failed(again))}")

        py_ws = scratch / f"{prefix}-{who}-py"
        py_got, err = python_sync(args, realpeer, tok, port, py_ws)
        checks.check(f"{label}: agnes_sync() in Python takes the same tables", py_got == want_down, err or f"got {sorted(py_got)}")

        up_ws = scratch / f"{prefix}-{who}-upstream"
        up_code = upstream_sync(realpeer, gen, prefix, who, tok, port, up_ws)
        theirs, ours = local_tables(up_ws), local_tables(ws)
        if gen == "0.84":
            checks.check(f"{label}: upstream `agnes pull` syncs the same tables (exit {up_code})", theirs == ours, f"upstream {sorted(theirs)}, agnes {sorted(ours)}")
            checks.check(f"{label}: da sync and `agnes pull` agree on failing or not", (up_code == 0) == (code == 0), f"upstream {up_code}, agnes {code}")
        else:
            # The old client refuses every 12-hex version token as a hash
            # mismatch (CONTRACT.md §1, **fix**): agnes takes at least its set.
            checks.check(f"{label}: agnes syncs every table the old `da sync` did, and more (exit {up_code})", theirs <= ours, f"old da {sorted(theirs)}, agnes {sorted(ours)}")

    if gen == "0.84":
        tok = token(realpeer, prefix, "admin")
        want_down, _, _ = EXPECTED[(gen, "admin", "all")]
        ws = scratch / f"{prefix}-admin-all"
        code, report = da(args, realpeer, tok, port, ws, "--all-tables")
        got = downloaded(report)
        checks.check(f"{gen} admin: da sync --all-tables downloads every table", got == want_down, f"got {sorted(got)}, failed {failed(report)}")
        bad = views_equal_server(ws, realpeer, prefix, got)
        checks.check(f"{gen} admin: every --all-tables view equals the server's parquet", not bad, "; ".join(bad))
        _, again = da(args, realpeer, tok, port, ws)
        kept = local_tables(ws)
        checks.check(f"{gen} admin: a plain sync after --all-tables keeps what was taken", kept == want_down and not downloaded(again), f"kept {sorted(kept)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--realpeer", default=os.environ.get("REALPEER", os.path.expanduser("~/realpeer")))
    ap.add_argument("--extension", default=str(ROOT / "build" / "debug" / "agnes.duckdb_extension"))
    ap.add_argument("--da", default=str(ROOT / "target" / "debug" / "da"))
    ap.add_argument("--duckdb", default=str(ROOT / "configure" / "venv" / "bin" / "duckdb"))
    ap.add_argument("--keep", action="store_true", help="keep the scratch workspaces")
    args = ap.parse_args()
    realpeer = Path(args.realpeer)
    if not (realpeer / "start-head.sh").exists() or not (realpeer / "head-analyst-pat.txt").exists():
        print(f"no real servers set up under {realpeer}: run shared/realpeer/setup.sh first (RECIPE.md)")
        return 1
    start_servers(realpeer)
    scratch = Path(tempfile.mkdtemp(prefix="agnes-realpeer-"))
    checks = Checks()
    try:
        for gen in GENERATIONS:
            run_generation(args, checks, realpeer, scratch, gen)
        extra = HERE / "adopt.py"
        if extra.exists():
            p = subprocess.run([sys.executable, str(extra), "--realpeer", str(realpeer), "--extension", args.extension,
                                "--da", args.da, "--duckdb", args.duckdb], text=True)
            checks.check("workspace adoption (test/realpeer/adopt.py)", p.returncode == 0, f"exit {p.returncode}")
    finally:
        if args.keep:
            print(f"workspaces kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
