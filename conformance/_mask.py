"""Masking of values before they reach a report, a log or an error message.

Evidence quotes the service's output; that output is exactly where leaked
PII and secrets live, so every excerpt passes through :func:`mask_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = [
    "PII_PATTERNS",
    "excerpt",
    "luhn_check_digit",
    "luhn_valid",
    "mask_pii",
    "mask_secrets",
    "mask_text",
    "mask_value",
    "visible",
]

# Deliberately broad local part (RFC 5322 allows most printable characters there).
_EMAIL_LOCAL_CHAR = r"[^\s@\"<>(),;:\[\]\\]"
_EMAIL_SOURCE = rf"({_EMAIL_LOCAL_CHAR}){_EMAIL_LOCAL_CHAR}*@([A-Za-z0-9])[A-Za-z0-9.-]*(\.[A-Za-z]{{2,}})\b"
_EMAIL = re.compile(_EMAIL_SOURCE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER_SOURCE = r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"
_BEARER = re.compile("(?i)" + _BEARER_SOURCE)
_API_KEY = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}")
# Digit runs that could be cards (13-19 digits with optional separators), SSNs, phones.
_LONG_DIGITS = re.compile(r"(?<![\w-])\+?\d(?:[ -]?\d){8,18}(?![\w-])")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")

#: The shapes of PII and credentials, for detection (the PII family's detectors
#: validate each match: Luhn, issued SSN ranges, a decodable JWT header...).
#: They reuse the masking patterns above; where detection needs a stricter
#: edge or a shape masking does not cover, the pattern is its own. Every
#: pattern is free of global inline flags, so it can be embedded in another.
PII_PATTERNS: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {
        # Same matches as _EMAIL; the look-behind only skips starts inside a token, which
        # keeps the scan linear in the token length (the local part never backtracks).
        "email": re.compile(
            rf"(?<!{_EMAIL_LOCAL_CHAR}){_EMAIL_LOCAL_CHAR}++@[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{{2,}}\b"
        ),
        "jwt": _JWT,
        # _BEARER's matches, the scheme's case ignored in ASCII only (as HTTP does).
        "bearer": re.compile(r"\b([Bb][Ee][Aa][Rr][Ee][Rr]|[Bb][Aa][Ss][Ii][Cc])\s+[A-Za-z0-9._~+/=-]{6,}"),
        "api_key": _API_KEY,
        # Runs of digit groups with at least 8 digits, unbounded (unlike _LONG_DIGITS) so a card
        # next to a phone number is one run; the validator splits it into an E.164 phone (a
        # leading +) and card numbers. Never part of a longer token: not after a word character,
        # "+" or "-", not the fraction of a decimal number (after "3.") nor its integer part
        # (before ".5"), not before a word character or "-".
        "digits": re.compile(
            r"(?<![\w+-])(?<![0-9]\.)(?=\+?(?:[0-9][ -]?){8})\+?[0-9]+(?:[ -][0-9]+)*(?![\w-])(?!\.[0-9])"
        ),
        "ssn": re.compile(r"(?<![\w-])(?<![0-9]\.)[0-9]{3}-[0-9]{2}-[0-9]{4}(?![\w-])(?!\.[0-9])"),
        # North American formats: (202) 555-0147, 202-555-0147, 202.555.0147, +1 202 555 0147;
        # not a piece of a longer dotted or dashed number (a version, an address, a date).
        "us_phone": re.compile(
            r"(?<![\w+])(?<![0-9][.-])(?:\+?1[ .-]?)?(?:\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])"
            r"[0-9]{3}[ .-][0-9]{4}(?![\w-])(?!\.[0-9])"
        ),
    }
)


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit that makes ``digits + check`` valid."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (ISO/IEC 7812-1 Annex B)."""
    if len(digits) < 2 or not digits.isdigit():
        return False
    return luhn_check_digit(digits[:-1]) == digits[-1]


def mask_pii(kind: str, value: str) -> str:
    """The form a found PII value takes in a report: ``j***@e***.com`` for an
    email, first and last two characters otherwise (``40***97``)."""
    if kind == "email":
        local, at, domain = value.rpartition("@")
        name, dot, tld = domain.rpartition(".")
        if at and local and dot and name:
            return f"{local[0]}***@{name[0]}***.{tld}"
    return mask_value(value)


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
    """A masked, single-line, bounded quote of service output.

    Control characters (NUL, ANSI escape sequences' ESC, C1 controls) and
    bidirectional-text controls are shown as ``\\xNN``, never passed on to a
    terminal or a report, so a hostile log line cannot recolour the console or
    reorder what a reader sees.
    """
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    more = f"… (+{len(flat) - limit} chars)" if len(flat) > limit else ""
    return mask_text(visible(flat[:limit]) + more)


def visible(text: str) -> str:
    """``text`` with every non-printable character but tab written as ``\\xNN``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)
