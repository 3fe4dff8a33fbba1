"""The public facade lists exactly what it exports, sorted (as httpx does)."""

from __future__ import annotations

from types import ModuleType

import conformance


def test_all_is_sorted_and_complete() -> None:
    assert conformance.__all__ == sorted(conformance.__all__)
    # Submodules show up as attributes once imported; only those listed on purpose are API.
    public = {
        name
        for name, member in vars(conformance).items()
        if not name.startswith("_") and (not isinstance(member, ModuleType) or name in conformance.__all__)
    }
    assert set(conformance.__all__) == public
