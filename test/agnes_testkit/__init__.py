"""Test kit for agnes: a local Agnes-compatible server and sample data.

Standard library only (plus the ``duckdb`` package for the sample data), so
that the project's venv needs nothing beyond duckdb and pytest.

    from agnes_testkit import LocalServer, make_sample
    data = make_sample(tmp_path / "data")
    with LocalServer(data) as server:
        ...  # server.url, server.set_faults([...]), server.requests()
"""

import importlib

# Loaded on first use, so that `python -m agnes_testkit.sample` does not
# import the module twice (runpy warns about that).
_EXPORTS = {
    "DEMO_TOKEN": "sample",
    "LIMITED_TOKEN": "sample",
    "make_sample": "sample",
    "write_catalog": "sample",
    "write_partitioned": "sample",
    "write_parquet": "sample",
    "SAMPLE_CATALOG": "sample",
    "LocalServer": "server",
    "ServerError": "server",
    "default_binary": "server",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEMO_TOKEN",
    "LIMITED_TOKEN",
    "LocalServer",
    "ServerError",
    "default_binary",
    "make_sample",
    "write_catalog",
    "write_partitioned",
    "write_parquet",
    "SAMPLE_CATALOG",
]
