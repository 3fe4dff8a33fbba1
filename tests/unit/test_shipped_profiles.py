"""Every profile the project ships loads: the reference profile and the four seed profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance._profile import load_profile
from conformance._requirements import all_requirements

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [
    REPO / "fixtures/reference_service/conformance.yaml",
    *sorted(REPO.glob("fixtures/profiles/*/conformance.yaml")),
]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_shipped_profile_loads_and_names_only_real_requirements(path: Path) -> None:
    profile = load_profile(path)
    known = {r.id for r in all_requirements()}
    assert set(profile.not_applicable) <= known
    assert all(reason.strip() for reason in profile.not_applicable.values())


def test_there_are_four_seed_profiles() -> None:
    assert [p.parent.name for p in SHIPPED[1:]] == [
        "baliblissed", "generation-backend", "goblin-assistant", "promptforge"
    ]  # fmt: skip
