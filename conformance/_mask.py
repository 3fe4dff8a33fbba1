"""Masking of values before they reach a report, a log or an error message.

Evidence quotes the service's output; that output is exactly where leaked
PII and secrets live, so every excerpt passes through :func:`mask_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["excerpt", "mask_secrets", "mask_text", "mask_value"]

# Deliberately broad local part (RFC 5322 allows most printable characters there).
_EMAIL = re.compile(
    r"([^\s@\"<>(),;:\[\]\\])[^\s@\"<>(),;:\[\]\\]*@([A-Za-z0-9])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})\b"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_API_KEY = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}")
# Digit runs that could be cards (13-19 digits with optional separators), SSNs, phones.
_LONG_DIGITS = re.compile(r"(?<![\w-])\+?\d(?:[ -]?\d){8,18}(?![\w-])")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")


def mask_value(value: str) -> str:
    """``j***@e***.com``-style masking of one known-sensitive value."""
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[:2]}***{value[-2:]}"


def mask_text(text: str) -> str:
    """Mask anything in ``text`` that looks like PII or a credential."""
    text = _JWT.sub("eyJ***.***.***", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    text = _API_KEY.sub(lambda m: f"{m.group(1)}-***", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***{m.group(3)}", text)
    text = _SSN.sub("***-**-****", text)
    return _LONG_DIGITS.sub(lambda m: "*" * (len(m.group(0)) - 2) + m.group(0)[-2:], text)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace each known secret value (e.g. from the profile's secret_env) with ``***``."""
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def excerpt(text: str, limit: int = 160) -> str:
    """A masked, single-line, bounded quote of service output."""
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(flat) > limit:
        flat = flat[:limit] + f"… (+{len(flat) - limit} chars)"
    return mask_text(flat)
