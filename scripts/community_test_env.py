#!/usr/bin/env python3
"""The variables DuckDB's community build sets for agnes's SQL tests.

The community build reads `extension.test_config` of description.yml (a
JSON text) and exports its `test_env_variables` before `make test_release`.
agnes declares there where the server-free tests find their synced
workspace (test/fixtures/synced/). The Makefile exports the same for its own
run of DuckDB's runner, and test/sqllogictest.py sets them in `--plain`
mode, so every runner sees what the community build sees.

Read without a YAML parser: the build containers' and the older DuckDB
venvs' Pythons have none. The field must be one line,
`  test_config: '<JSON>'` (test_packaging.py checks that a YAML parser reads
the same).

Usage: community_test_env.py [DESCRIPTION]   prints NAME=VALUE words for `env`
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

DESCRIPTION = Path(__file__).resolve().parent.parent / "description.yml"


def read(description: Path = DESCRIPTION) -> dict[str, str]:
    """`test_env_variables` of the test_config line; {} without one."""
    text = description.read_text(encoding="utf-8")
    line = re.search(r"^  test_config: '(.*)'\s*$", text, re.M)
    if line is None:
        return {}
    config = json.loads(line.group(1).replace("''", "'"))
    variables = config.get("test_env_variables", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in variables.items()):
        raise ValueError(f"{description}: test_env_variables must map names to strings")
    return variables


def main() -> int:
    description = Path(sys.argv[1]) if len(sys.argv) > 1 else DESCRIPTION
    print(" ".join(shlex.quote(f"{name}={value}") for name, value in read(description).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
