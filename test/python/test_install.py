"""`make install` (scripts/install_extension.py): afterwards `LOAD agnes` by
name works in each host. HOME points at a temporary folder, so the user's own
~/.duckdb is never touched."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "build" / "debug" / "agnes.duckdb_extension"
HOSTS = {
    "python-2.0.0": sys.executable,
    "python-1.5.6": str(REPO / "configure" / "venv-1.5.6" / "bin" / "python"),
    "cli-1.5.6": str(REPO / "configure" / "venv" / "bin" / "duckdb"),
}


def test_install_then_load_by_name_in_every_host(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "install_extension.py"), str(EXTENSION), *HOSTS.values()],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("installed agnes 0.1.0") == 3, result.stdout
    installed = sorted(p.relative_to(tmp_path).parts[2] for p in tmp_path.glob(".duckdb/extensions/*/*/agnes.duckdb_extension"))
    assert installed == ["v1.5.6", "v2.0.0"]

    load = "LOAD agnes; SELECT duckdb_version FROM agnes_version();"
    cli = subprocess.run([HOSTS["cli-1.5.6"], "-unsigned", "-noheader", "-list", "-c", load], capture_output=True, text=True, env=env)
    assert cli.stdout.strip() == "v1.5.6", cli.stderr
    for name in ("python-2.0.0", "python-1.5.6"):
        code = (
            "import duckdb; c = duckdb.connect(config={'allow_unsigned_extensions': 'true'}); "
            "c.execute('LOAD agnes'); print(c.execute('SELECT duckdb_version FROM agnes_version()').fetchone()[0])"
        )
        out = subprocess.run([HOSTS[name], "-c", code], capture_output=True, text=True, env=env)
        assert out.stdout.strip() == "v" + name.split("-")[1], out.stderr
