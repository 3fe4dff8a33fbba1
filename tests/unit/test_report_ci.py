"""The CI templates in examples/ci parse, have the jobs the README promises, and every
``conformance`` command in them parses with the real CLI (for the subcommands that exist)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.cli import _parser

CI = Path(__file__).resolve().parents[2] / "examples/ci"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CI / name).read_text())
    assert isinstance(data, dict)
    return data


def commands(scripts: Iterator[str]) -> list[list[str]]:
    """Each ``conformance …`` invocation in shell snippets, as argv."""
    found = []
    for script in scripts:
        text = script.replace("\\\n", " ")
        for match in re.finditer(r"(?:^|[;&|(]\s*|\bthen\s+|\n\s*)(conformance\s+[^;&|\n]+)", text):
            argv = shlex.split(match.group(1))
            cut = next((i for i, t in enumerate(argv) if t.startswith(">")), len(argv))
            found.append(argv[:cut])
    return found


def github_scripts(workflow: dict[str, Any]) -> Iterator[str]:
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                yield step["run"]


def gitlab_scripts(pipeline: dict[str, Any]) -> Iterator[str]:
    for job in pipeline.values():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                yield from job.get(key, [])


def test_github_actions_jobs() -> None:
    wf = load("github-actions.yml")
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "schedule", "release"} <= set(triggers)
    jobs = wf["jobs"]
    assert set(jobs) == {"pr", "load-gate", "release"}
    pr = " ".join(s.get("run", "") for s in jobs["pr"]["steps"])
    assert "conformance run" in pr and "--mode containers" in pr
    assert "github.event_name == 'pull_request'" in jobs["pr"]["if"]
    load_gate = " ".join(s.get("run", "") for s in jobs["load-gate"]["steps"])
    assert "conformance load" in load_gate and "--mode nightly" in load_gate
    release = jobs["release"]
    uploads = [s["run"] for s in release["steps"] if "gh release upload" in s.get("run", "")]
    assert uploads and "conformance-report.html" in uploads[0]
    artifact = next(s for s in release["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "conformance-report.png" in artifact["with"]["path"]
    for job in jobs.values():
        for step in job["steps"]:
            if "upload-artifact" in step.get("uses", "") or "summary" in step.get("name", "").lower():
                assert step.get("if") == "always()", step["name"]


def test_gitlab_ci_jobs() -> None:
    pipeline = load("gitlab-ci.yml")
    assert pipeline["stages"] == ["conformance", "load", "release"]
    mr = pipeline["conformance"]
    assert any("--mode containers" in line for line in mr["script"])
    assert mr["artifacts"]["reports"]["junit"] == "out/conformance/junit.xml"
    assert mr["artifacts"]["when"] == "always"
    assert any("conformance load" in line for line in pipeline["load-gate"]["script"])
    assert "out/release/conformance-report.html" in pipeline["release-report"]["artifacts"]["paths"]


@pytest.mark.parametrize(
    ("name", "scripts"),
    [("github-actions.yml", github_scripts), ("gitlab-ci.yml", gitlab_scripts)],
)
def test_every_conformance_command_parses(name: str, scripts: Any) -> None:
    parser = _parser()
    known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    found = commands(scripts(load(name)))
    assert {argv[1] for argv in found} >= {"run", "report", "diff"}
    for argv in found:
        if argv[1] not in known:
            continue  # a command another change is adding; checked once it is registered
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{name}: does not parse: {' '.join(argv)}")
