#!/usr/bin/env python3
"""Turn the built shared library into a loadable `agnes.duckdb_extension`.

DuckDB loads a file only if it ends with the extension footer (DESIGN.md,
"Footer"): a metadata marker, eight 32-byte fields, then 256 bytes of
signature, all zero for an unsigned build. The ABI is the stable C API
(`C_STRUCT`, `v1.2.0`) so one build loads in every DuckDB from 1.2 on.

Usage: stamp_extension.py LIBRARY OUTPUT
"""

import os
import platform
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAGIC = b"\x00\x93\x04\x10duckdb_signature\x80\x04"
ABI_TYPE = "C_STRUCT"
C_API_VERSION = "v1.2.0"
FOOTER_FORMAT_VERSION = "4"
FIELD_BYTES = 32
SIGNATURE_BYTES = 256


def extension_version() -> str:
    """The version in Cargo.toml, as DuckDB shows it (`v0.1.0`)."""
    with open(ROOT / "Cargo.toml", "rb") as f:
        cargo = tomllib.load(f)
    return "v" + cargo["workspace"]["package"]["version"]


def duckdb_platform() -> str:
    """DuckDB's name for this platform, e.g. `linux_amd64`, `osx_arm64`."""
    system = {"Linux": "linux", "Darwin": "osx", "Windows": "windows"}.get(platform.system())
    machine = {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
    }.get(platform.machine().lower())
    if system is None or machine is None:
        sys.exit(f"stamp_extension: unsupported platform {platform.system()}/{platform.machine()}")
    return f"{system}_{machine}"


def field(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > FIELD_BYTES:
        sys.exit(f"stamp_extension: footer field too long: {text!r}")
    return raw.ljust(FIELD_BYTES, b"\0")


def footer(version: str, plat: str) -> bytes:
    fields = ["", "", "", ABI_TYPE, version, C_API_VERSION, plat, FOOTER_FORMAT_VERSION]
    return MAGIC + b"".join(field(f) for f in fields) + b"\0" * SIGNATURE_BYTES


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    library, output = Path(sys.argv[1]), Path(sys.argv[2])
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    # Written beside and renamed, so a running DuckDB never maps a half file.
    with open(library, "rb") as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
        dst.write(footer(extension_version(), duckdb_platform()))
    os.replace(tmp, output)


if __name__ == "__main__":
    main()
