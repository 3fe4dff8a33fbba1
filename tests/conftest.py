"""Shared test set-up: hermetic environment only. Fixtures live next to their tier."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]

_LEAKY_PREFIXES = ("OTEL_", "REFSVC_")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTel, reference-service or proxy settings leak in from the machine."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES) or name.lower() in _PROXY_VARS:
            monkeypatch.delenv(name)
