"""The extension as DuckDB's community build ships it: the file where that
build picks it up (build/<type>/extension/agnes/agnes.duckdb_extension), a
footer DuckDB accepts on this platform, and `INSTALL agnes FROM <repository>`
then `LOAD agnes` working on it (a local folder in the community
repository's layout stands in for the real one, which is signed).

Checks the debug build `make test` makes; `make release` stamps the same way."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "debug"
EXTENSION = BUILD / "agnes.duckdb_extension"
DISTRIBUTED = BUILD / "extension" / "agnes" / "agnes.duckdb_extension"
OLD_PYTHON = REPO / "configure" / "venv-1.5.6" / "bin" / "python"
DUCKDB_CLI = REPO / "configure" / "venv" / "bin" / "duckdb"

FIELD_NAMES = ["unused8", "unused7", "unused6", "abi_type", "extension_version", "duckdb_version", "platform", "format"]


def load_stamp_script():
    spec = importlib.util.spec_from_file_location("stamp_extension", REPO / "scripts" / "stamp_extension.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stamp = load_stamp_script()
MAGIC_BYTES = len(stamp.MAGIC)
FOOTER_BYTES = MAGIC_BYTES + 8 * 32 + 256


def footer(path: Path) -> dict:
    data = path.read_bytes()
    tail = data[-FOOTER_BYTES:]
    assert tail[:MAGIC_BYTES] == stamp.MAGIC, f"{path} does not end with the extension footer"
    raw = [tail[MAGIC_BYTES + 32 * i : MAGIC_BYTES + 32 * (i + 1)] for i in range(8)]
    fields = {name: f.rstrip(b"\0").decode("ascii") for name, f in zip(FIELD_NAMES, raw)}
    fields["signature"] = tail[-256:]
    return fields


def host_platform(python: Path | str) -> str:
    code = "import duckdb; print(duckdb.execute('PRAGMA platform').fetchone()[0])"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_the_declared_c_api_version_is_the_entry_points():
    """One declaration: the stamping script's C_API_VERSION, which the
    Makefile also hands to extension-ci-tools, must be what the entry point
    asks DuckDB for."""
    declared = set()
    for source in (REPO / "src").rglob("*.rs"):
        declared |= set(re.findall(r'C_API_VERSION: &CStr = c"(v\d+\.\d+\.\d+)"', source.read_text()))
    assert declared == {stamp.C_API_VERSION}, (
        f"src/ declares C_API_VERSION {sorted(declared)}, scripts/stamp_extension.py C_API_VERSION "
        f"{stamp.C_API_VERSION}: change both together"
    )
    make = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", "-", "show"],
        input="include Makefile\nshow:\n\t@echo $(C_API_VERSION)\n",
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert make.stdout.strip() == stamp.C_API_VERSION, make.stderr


def test_footer_names_this_platform_and_the_declared_c_api():
    fields = footer(DISTRIBUTED)
    platforms = {host_platform(sys.executable), host_platform(OLD_PYTHON)}
    cli = subprocess.run([str(DUCKDB_CLI), "-noheader", "-list", "-c", "PRAGMA platform"], capture_output=True, text=True)
    platforms.add(cli.stdout.strip())
    # Every host this machine tests with agrees, and the footer says the same.
    assert platforms == {fields["platform"]}, (platforms, fields)
    assert fields["duckdb_version"] == stamp.C_API_VERSION
    assert fields["abi_type"] == "C_STRUCT"
    assert fields["format"] == "4"
    with open(REPO / "Cargo.toml", "rb") as f:
        cargo_version = "v" + tomllib.load(f)["workspace"]["package"]["version"]
    if (REPO / "extension-ci-tools" / "scripts" / "append_extension_metadata.py").exists():
        # ci-tools stamps the git tag or commit, as `make configure_ci` wrote it.
        assert fields["extension_version"] == (REPO / "configure" / "extension_version.txt").read_text().strip()
    else:
        assert fields["extension_version"] == cargo_version
    assert fields["signature"] == b"\0" * 256, "an unsigned build has an all-zero signature"


def test_both_paths_hold_the_built_library_and_the_same_footer():
    library = REPO / "target" / "debug" / stamp.library_name(footer(DISTRIBUTED)["platform"])
    built = library.read_bytes()
    for path in (EXTENSION, DISTRIBUTED):
        data = path.read_bytes()
        assert data[:-FOOTER_BYTES] == built, f"{path} is not {library} plus a footer"
    assert EXTENSION.read_bytes()[-FOOTER_BYTES:] == DISTRIBUTED.read_bytes()[-FOOTER_BYTES:]


def test_install_from_a_repository_then_load_by_name(tmp_path):
    """`INSTALL agnes FROM <repository>` looks for
    <repository>/<DuckDB version>/<platform>/agnes.duckdb_extension, the
    community repository's layout; then `LOAD agnes` by name works."""
    probe = duckdb.connect()
    version = probe.execute("SELECT library_version FROM pragma_version()").fetchone()[0]
    plat = probe.execute("PRAGMA platform").fetchone()[0]
    probe.close()
    repository = tmp_path / "repository"
    (repository / version / plat).mkdir(parents=True)
    shutil.copyfile(DISTRIBUTED, repository / version / plat / "agnes.duckdb_extension")

    con = duckdb.connect(
        config={"allow_unsigned_extensions": "true", "extension_directory": str(tmp_path / "extensions")}
    )
    con.execute(f"INSTALL agnes FROM '{repository}'")
    con.execute("LOAD agnes")
    row = con.execute(
        "SELECT extension_version, duckdb_version = (SELECT library_version FROM pragma_version()) FROM agnes_version()"
    ).fetchone()
    assert row == ("0.1.0", True)
    installed = con.execute(
        "SELECT installed, loaded, install_path FROM duckdb_extensions() WHERE extension_name = 'agnes'"
    ).fetchone()
    assert installed[:2] == (True, True)
    assert Path(installed[2]).is_relative_to(tmp_path / "extensions")


@pytest.mark.parametrize(
    "system, machine, expected",
    [
        ("Linux", "x86_64", "linux_amd64"),
        ("Linux", "aarch64", "linux_arm64"),
        ("Darwin", "arm64", "osx_arm64"),
        ("Darwin", "x86_64", "osx_amd64"),
        ("Windows", "AMD64", "windows_amd64"),
        ("Windows", "ARM64", "windows_arm64"),
    ],
)
def test_platform_without_duckdb_follows_duckdbs_names(monkeypatch, system, machine, expected):
    monkeypatch.setattr(stamp.platform, "system", lambda: system)
    monkeypatch.setattr(stamp.platform, "machine", lambda: machine)
    assert stamp.platform_from_os() == expected


@pytest.mark.parametrize(
    "plat, name",
    [
        ("linux_amd64", "libagnes.so"),
        ("linux_arm64_musl", "libagnes.so"),
        ("osx_arm64", "libagnes.dylib"),
        ("windows_amd64", "agnes.dll"),
        ("windows_amd64_mingw", "agnes.dll"),
    ],
)
def test_library_name_per_platform(plat, name):
    assert stamp.library_name(plat) == name


def test_stamping_refuses_a_missing_library_and_writes_nothing(tmp_path):
    out = tmp_path / "agnes.duckdb_extension"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "stamp_extension.py"), str(tmp_path / "libagnes.so"), str(out),
         "--platform", "linux_amd64"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items()},
    )
    assert result.returncode != 0
    assert "libagnes.so does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_description_and_workflow_agree_with_the_build():
    """description.yml (for the community-extensions repository) and the
    distribution workflow are valid YAML and say what Cargo.toml and the
    Makefile say: name, version, licence, toolchains, excluded platforms."""
    import yaml

    with open(REPO / "Cargo.toml", "rb") as f:
        package = tomllib.load(f)["workspace"]["package"]
    description = yaml.safe_load((REPO / "description.yml").read_text())
    extension = description["extension"]
    assert extension["name"] == stamp.EXTENSION_NAME
    assert extension["version"] == package["version"]
    assert extension["license"] == package["license"]
    assert (extension["language"], extension["build"]) == ("Rust", "cargo")
    assert set(extension["requires_toolchains"].split(";")) == {"rust", "python3"}
    excluded = set(filter(None, extension["excluded_platforms"].split(";")))
    # What cannot work at all (the browser), and MinGW, which ci-tools would
    # label a build for MSVC (README, "DuckDB's community build").
    assert excluded == {"wasm_mvp", "wasm_eh", "wasm_threads", "windows_amd64_mingw"}
    hello = description["docs"]["hello_world"]
    for function in ("agnes_version()", "agnes_manifest()", "agnes_sync()"):
        assert function in hello
    assert set(description["repo"]) >= {"github", "ref"}

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "MainDistributionPipeline.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert job["uses"].startswith("duckdb/extension-ci-tools/.github/workflows/_extension_distribution.yml@")
    inputs = job["with"]
    assert inputs["extension_name"] == stamp.EXTENSION_NAME
    assert inputs["ci_tools_version"] == job["uses"].rsplit("@", 1)[1]
    assert set(inputs["exclude_archs"].split(";")) == excluded
    assert set(inputs["extra_toolchains"].split(";")) == {"rust", "python3"}
    assert json.loads(inputs["test_config"]) == json.loads(extension["test_config"])
    # The submodule follows the same extension-ci-tools branch.
    gitmodules = (REPO / ".gitmodules").read_text()
    assert f"branch = {inputs['ci_tools_version']}" in gitmodules


def test_description_has_no_comments_and_marks_what_the_owner_fills_in():
    """description.yml goes to the community repository as it is, and is
    shown there: no comments, and the owner's fields are plain placeholders."""
    import yaml

    text = (REPO / "description.yml").read_text()
    assert not [line for line in text.splitlines() if line.lstrip().startswith("#")]
    description = yaml.safe_load(text)
    placeholders = [description["repo"]["github"], description["repo"]["ref"], *description["extension"]["maintainers"]]
    assert all("REPLACE_WITH_" in p for p in placeholders), placeholders


def test_the_community_test_variables_name_the_fixture():
    """The community build exports test_config's test_env_variables; the
    Makefile and test/sqllogictest.py read them with a plain pattern
    (scripts/community_test_env.py), which must agree with a YAML parser,
    and they must name the checked-in fixture, relative to the repository."""
    import yaml

    sys.path.insert(0, str(REPO / "scripts"))
    import community_test_env

    config = json.loads(yaml.safe_load((REPO / "description.yml").read_text())["extension"]["test_config"])
    variables = community_test_env.read()
    assert variables == config["test_env_variables"]
    assert variables == {
        "AGNES_LOCAL_DIR": "test/fixtures/synced/workspace",
        "AGNES_CONFIG_DIR": "test/fixtures/synced/config",
    }
    assert (REPO / variables["AGNES_LOCAL_DIR"] / ".agnes").is_dir()
    assert (REPO / variables["AGNES_CONFIG_DIR"] / "config.yaml").is_file()
    printed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "community_test_env.py")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert printed == [f"{k}={v}" for k, v in variables.items()]


# Named parameters the user never gives: agnes's own views over agnes_scan() set them.
INTERNAL_PARAMETERS = {"max_rows", "known_rows"}


def test_the_extended_description_names_every_function_and_parameter():
    """Each agnes function the extension registers, and each of its named
    parameters, is named in description.yml's extended description, which
    states the DuckDB versions agnes runs in."""
    import yaml

    text = yaml.safe_load((REPO / "description.yml").read_text())["docs"]["extended_description"]
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    functions = con.execute(
        "SELECT function_name, parameters FROM duckdb_functions() WHERE function_name LIKE 'agnes%'"
    ).fetchall()
    con.close()
    assert len(functions) == 7, functions
    missing = []
    for name, parameters in functions:
        if f"`{name}(" not in text:
            missing.append(f"{name}()")
        for parameter in set(parameters) - INTERNAL_PARAMETERS - {"col0"}:
            if f"`{parameter}`" not in text:
                missing.append(f"{name}: {parameter}")
    assert not missing, f"not in description.yml's extended_description: {missing}"
    assert "DuckDB 1.4.0 and newer" in text and "1.2" not in text
