"""The synced workspace under test/fixtures/synced/ is what its script makes
with this build: run again, make_fixture.py writes the same tables, bytes
for bytes, and the same state (but for what says when and from which port
it was made). So the server-free SQL tests read the state this agnes writes,
and a change to the state's format shows here first."""

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "test" / "fixtures" / "synced"
SCRIPT = FIXTURE / "make_fixture.py"

# What differs between two runs: the server's port, and times.
VOLATILE = {"etag", "mtime_ns"}


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def state(workspace: Path) -> tuple[str, dict]:
    (path,) = (workspace / ".agnes").glob("sync-state-*.json")
    return path.name, json.loads(path.read_text())


def without_volatile(tables: dict) -> dict:
    return {tid: {k: v for k, v in t.items() if k not in VOLATILE} for tid, t in tables.items()}


def test_the_fixture_is_what_its_script_makes(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr

    checked_in, fresh = files(FIXTURE / "workspace"), files(tmp_path / "workspace")
    data = lambda fs: {name: body for name, body in fs.items() if not name.startswith(".agnes/")}
    assert data(fresh) == data(checked_in)

    (old_name, old), (new_name, new) = state(FIXTURE / "workspace"), state(tmp_path / "workspace")
    assert without_volatile(new["tables"]) == without_volatile(old["tables"])
    assert set(checked_in) - set(data(checked_in)) == {f".agnes/{old_name}"}, "only the state is bookkeeping"

    # Each config names the server its state is for: the file agnes reads at LOAD.
    for root, name, st in ((FIXTURE, old_name, old), (tmp_path, new_name, new)):
        server = re.fullmatch(r"server: (\S+)\n", (root / "config" / "config.yaml").read_text()).group(1)
        assert st["server"] == server
        port = server.rsplit(":", 1)[1]
        assert name.startswith(f"sync-state-127.0.0.1_{port}-"), name
