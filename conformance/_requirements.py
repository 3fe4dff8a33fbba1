"""The registry of requirements.

Each check module declares the requirements it decides, next to the code that
decides them, with :func:`requirement`; the registry is the union. IDs are
stable: a released ID is never reused for a different obligation.
"""

from __future__ import annotations

import importlib
import pkgutil

from conformance._model import Level, Requirement

__all__ = ["AREAS", "all_requirements", "get_requirement", "requirement"]

#: Requirement id prefix → the area it belongs to, in report order.
AREAS = {
    "LOG": "Logs",
    "TRC": "Traces",
    "MET": "Metrics",
    "PII": "PII",
    "RL": "Rate limits",
    "ALR": "Alerts",
    "HLT": "Health",
    "SEM": "Semantic conventions",
    "PERF": "Load",
}

_registry: dict[str, Requirement] = {}


def requirement(id: str, level: Level, title: str, *, source: str) -> Requirement:
    """Declare a requirement (at import of its check module)."""
    prefix = id.partition("-")[0]
    if prefix not in AREAS:
        raise ValueError(f"{id}: unknown area prefix {prefix!r}; known: {', '.join(AREAS)}")
    req = Requirement(id=id, level=level, title=title, source=source, area=AREAS[prefix])
    existing = _registry.get(id)
    if existing is not None and existing != req:
        raise ValueError(f"requirement {id} declared twice with different content")
    _registry[id] = req
    return req


def all_requirements() -> list[Requirement]:
    """Every declared requirement, in area then id order."""
    # Importing every check module declares every requirement, so the registry
    # is complete even when a run imports only some suites.
    from conformance import checks

    for info in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"{checks.__name__}.{info.name}")
    order = list(AREAS)
    return sorted(_registry.values(), key=lambda r: (order.index(r.id.partition("-")[0]), r.id))


def get_requirement(id: str) -> Requirement:
    all_requirements()
    try:
        return _registry[id]
    except KeyError:
        raise KeyError(f"unknown requirement id {id!r}") from None
