"""agnes builds for macOS and Windows too (README, "What is tested where"):
no Unix-only API outside `cfg(unix)`. `make check-targets` compiles for
those targets where their toolchains are installed; this check needs none
and keeps new code from slipping."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def rust_sources():
    for root in (REPO / "src", REPO / "crates"):
        yield from (p for p in root.rglob("*.rs") if "target" not in p.parts)


def test_unix_only_apis_sit_under_cfg_unix():
    offenders = []
    for path in rust_sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if "std::os::unix" not in line or line.lstrip().startswith("//"):
                continue
            # The attribute stands on the item, block or statement that holds the use.
            if not any("cfg(unix)" in above for above in lines[max(0, i - 3) : i]):
                offenders.append(f"{path.relative_to(REPO)}:{i + 1}: {line.strip()}")
    assert not offenders, "std::os::unix outside #[cfg(unix)]:\n" + "\n".join(offenders)


def test_the_check_sees_an_unguarded_use(tmp_path, monkeypatch):
    bad = tmp_path / "src" / "bad.rs"
    bad.parent.mkdir()
    bad.write_text("fn f() {\n    use std::os::unix::fs::PermissionsExt;\n}\n")
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    try:
        test_unix_only_apis_sit_under_cfg_unix()
    except AssertionError as e:
        assert "src/bad.rs:2" in str(e)
    else:
        raise AssertionError("an unguarded std::os::unix use went unnoticed")
