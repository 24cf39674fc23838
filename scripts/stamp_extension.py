#!/usr/bin/env python3
"""Turn the built shared library into a loadable `agnes.duckdb_extension`.

DuckDB loads a file only if it ends with the extension footer (DESIGN.md,
"Footer"): a metadata marker, eight 32-byte fields, then 256 bytes of
signature, all zero for an unsigned build. The ABI is the stable C API
(`C_STRUCT`, `C_API_VERSION`) so one build loads in every DuckDB agnes runs
in (1.4.0 on; older ones refuse it at `LOAD`, src/entry.rs).

This is the build used when extension-ci-tools (the submodule DuckDB's
community build checks out) is absent; with it, the Makefile uses that
project's own scripts and passes them `C_API_VERSION` from here, the one
place the version is declared (a test checks src/lib.rs against it).

Usage:
    stamp_extension.py LIBRARY OUTPUT [OUTPUT ...] [--platform P | --platform-file F]
    stamp_extension.py --print c-api-version|platform|library-name|extension-version [--platform P]

The platform is, in order: `--platform`, the first line of `--platform-file`,
`PRAGMA platform` of the `duckdb` Python package when this interpreter has
one, else derived from the operating system and machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION_NAME = "agnes"
MAGIC = b"\x00\x93\x04\x10duckdb_signature\x80\x04"
ABI_TYPE = "C_STRUCT"
# The oldest DuckDB C API the extension needs; also `min_duckdb_version` of
# the entry point in src/lib.rs (test_packaging.py keeps the two equal).
C_API_VERSION = "v1.2.0"
FOOTER_FORMAT_VERSION = "4"
FIELD_BYTES = 32
SIGNATURE_BYTES = 256


def extension_version() -> str:
    """The version in Cargo.toml's [workspace.package], as DuckDB shows it
    (`v0.1.0`). Read with a pattern, not tomllib: build containers may have
    a Python older than 3.11."""
    text = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[workspace\.package\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    version = section and re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
    if not version:
        sys.exit("stamp_extension: no version in [workspace.package] of Cargo.toml")
    return "v" + version.group(1)


def platform_from_os() -> str:
    """DuckDB's name for this machine when no DuckDB is at hand to ask."""
    system = {"Linux": "linux", "Darwin": "osx", "Windows": "windows"}.get(platform.system())
    machine = {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
    }.get(platform.machine().lower())
    if system is None or machine is None:
        sys.exit(
            f"stamp_extension: no DuckDB platform known for {platform.system()}/{platform.machine()}; "
            "pass --platform (e.g. linux_amd64)"
        )
    return f"{system}_{machine}"


def duckdb_platform() -> str:
    """What DuckDB calls this platform (`linux_amd64`, `osx_arm64`,
    `windows_amd64`, ...): asked of DuckDB itself when possible, since it
    refuses a file whose footer names another platform."""
    try:
        import duckdb  # noqa: PLC0415 (optional: `make debug` runs without the venv)
    except ImportError:
        return platform_from_os()
    return duckdb.execute("PRAGMA platform").fetchone()[0]


def library_name(plat: str) -> str:
    """The file cargo builds for a `cdylib` on that platform."""
    if plat.startswith("osx_"):
        return f"lib{EXTENSION_NAME}.dylib"
    if plat.startswith("windows_"):
        return f"{EXTENSION_NAME}.dll"  # no `lib` prefix on Windows, MSVC or GNU
    return f"lib{EXTENSION_NAME}.so"


def field(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > FIELD_BYTES:
        sys.exit(f"stamp_extension: footer field too long: {text!r}")
    return raw.ljust(FIELD_BYTES, b"\0")


def footer(version: str, plat: str) -> bytes:
    fields = ["", "", "", ABI_TYPE, version, C_API_VERSION, plat, FOOTER_FORMAT_VERSION]
    return MAGIC + b"".join(field(f) for f in fields) + b"\0" * SIGNATURE_BYTES


def write_stamped(library: Path, output: Path, stamp: bytes) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    # Written beside and renamed, so a running DuckDB never maps a half file.
    with open(library, "rb") as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
        dst.write(stamp)
    os.replace(tmp, output)


def chosen_platform(args: argparse.Namespace) -> str:
    if args.platform:
        return args.platform
    if args.platform_file:
        text = Path(args.platform_file).read_text(encoding="ascii").strip()
        if not text:
            sys.exit(f"stamp_extension: {args.platform_file} is empty")
        return text.splitlines()[0].strip()
    return duckdb_platform()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("library", nargs="?", type=Path, help="the cdylib cargo built")
    ap.add_argument("outputs", nargs="*", type=Path, help="where to write the extension (each gets a copy)")
    ap.add_argument("--platform", help="DuckDB platform to write, e.g. osx_arm64")
    ap.add_argument("--platform-file", help="file whose first line is the platform (configure/platform.txt)")
    ap.add_argument(
        "--print",
        dest="show",
        choices=["c-api-version", "platform", "library-name", "extension-version"],
        help="print one value and stop",
    )
    args = ap.parse_args()

    if args.show == "c-api-version":
        print(C_API_VERSION)
        return
    if args.show == "extension-version":
        print(extension_version())
        return
    plat = chosen_platform(args)
    if args.show == "platform":
        print(plat)
        return
    if args.show == "library-name":
        print(library_name(plat))
        return
    if args.library is None or not args.outputs:
        ap.error("LIBRARY and at least one OUTPUT are needed")
    if not args.library.is_file():
        sys.exit(f"stamp_extension: {args.library} does not exist; did cargo build it for {plat}?")
    stamp = footer(extension_version(), plat)
    for output in args.outputs:
        write_stamped(args.library, output, stamp)
        print(f"stamp_extension: {output} ({plat}, {extension_version()}, C API {C_API_VERSION})")


if __name__ == "__main__":
    main()
