"""Values ``conformance init`` could not infer and left for the user: ``FILL IN: ...`` strings.

``init`` writes a required value it cannot know (no ``--command``, no endpoint that
answered) as a string starting with :data:`FILL_IN`, so the profile still parses and
``conformance validate`` can name each one instead of saying ``ok``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["FILL_IN", "unfilled_values"]

FILL_IN = "FILL IN"


def unfilled_values(path: Path) -> list[tuple[str, str]]:
    """``(where, what)`` for every ``FILL IN`` value of the profile at ``path`` (empty when unreadable:
    the loader then says what is wrong)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    found: list[tuple[str, str]] = []
    _walk(data, "", found)
    return found


def _walk(node: Any, where: str, found: list[tuple[str, str]]) -> None:
    if isinstance(node, str) and node.startswith(FILL_IN):
        found.append((where or "(top)", node[len(FILL_IN) :].lstrip(": ") or "a value"))
    elif isinstance(node, dict):
        for key, value in node.items():
            _walk(value, f"{where}.{key}" if where else str(key), found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{where}[{i}]", found)
