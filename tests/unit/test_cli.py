"""The CLI's cheap commands and its usage errors (runs are in tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import all_requirements
from conformance.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(REPO / "fixtures/reference_service/conformance.yaml")]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok (reference-service, 9 endpoint(s))")


def test_validate_broken_profile_is_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nservice: {name: x, command: [x]}\ntraffic: {requests_per_endpoint: ten}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"conformance: error: {bad}: traffic.requests_per_endpoint: must be an integer, got 'ten'\n"


def test_run_with_missing_profile_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--profile", str(tmp_path / "none.yaml"), "--report-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.endswith("none.yaml: file not found\n")


def test_requirements_json_lists_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == [r.id for r in all_requirements()]
    assert all(r["source"] and r["level"] in ("MUST", "SHOULD") for r in listed)


def test_unknown_subcommand_is_argparse_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
