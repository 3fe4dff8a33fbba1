"""A strict parser for HTTP Structured Field Values (RFC 8941), Lists and Dictionaries.

The RateLimit and RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers)
are Structured Fields; the RL checks need to tell a malformed field from a
well-formed one and read its parameters. This follows the parsing algorithms
of RFC 8941 §4.2 step by step (so a failure says where it happened) and
raises :class:`StructuredFieldError` on anything they reject.
"""

from __future__ import annotations

import base64
import binascii
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "BareItem",
    "InnerList",
    "Item",
    "StructuredFieldError",
    "Token",
    "parse_dictionary",
    "parse_list",
]


class StructuredFieldError(ValueError):
    """The field value is not a valid Structured Field of the expected type."""


class Token(str):
    """An sf-token, kept apart from an sf-string (``default`` vs ``"default"``)."""

    __slots__ = ()


BareItem = int | Decimal | str | Token | bytes | bool


@dataclass(frozen=True, slots=True)
class Item:
    value: BareItem
    params: Mapping[str, BareItem] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InnerList:
    items: tuple[Item, ...]
    params: Mapping[str, BareItem] = field(default_factory=dict)


_TCHAR = set("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_KEY_FIRST = set(string.ascii_lowercase + "*")
_KEY_CHARS = _KEY_FIRST | set(string.digits + "_-.")
_BASE64 = set(string.ascii_letters + string.digits + "+/=")


class _Input:
    def __init__(self, text: str) -> None:
        if not text.isascii():
            raise StructuredFieldError("not ASCII")
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def empty(self) -> bool:
        return self.pos >= len(self.text)

    def skip(self, chars: str) -> None:
        while not self.empty() and self.peek() in chars:
            self.pos += 1

    def fail(self, problem: str) -> StructuredFieldError:
        return StructuredFieldError(f"{problem} at character {self.pos + 1} of {self.text!r}")


def parse_list(text: str) -> list[Item | InnerList]:
    """RFC 8941 §4.2.1. Several field lines are joined with ``", "`` first (§4.2)."""
    inp = _Input(text)
    inp.skip(" ")
    members: list[Item | InnerList] = []
    while not inp.empty():
        members.append(_item_or_inner_list(inp))
        inp.skip(" \t")
        if inp.empty():
            return members
        if inp.take() != ",":
            raise inp.fail("expected ',' between list members")
        inp.skip(" \t")
        if inp.empty():
            raise inp.fail("trailing ','")
    return members


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    """RFC 8941 §4.2.2."""
    inp = _Input(text)
    inp.skip(" ")
    members: dict[str, Item | InnerList] = {}
    while not inp.empty():
        key = _key(inp)
        if inp.peek() == "=":
            inp.take()
            members[key] = _item_or_inner_list(inp)
        else:
            members[key] = Item(True, _parameters(inp))
        inp.skip(" \t")
        if inp.empty():
            return members
        if inp.take() != ",":
            raise inp.fail("expected ',' between dictionary members")
        inp.skip(" \t")
        if inp.empty():
            raise inp.fail("trailing ','")
    return members


def _item_or_inner_list(inp: _Input) -> Item | InnerList:
    if inp.peek() == "(":
        return _inner_list(inp)
    return Item(_bare_item(inp), _parameters(inp))


def _inner_list(inp: _Input) -> InnerList:
    inp.take()
    items: list[Item] = []
    while not inp.empty():
        inp.skip(" ")
        if inp.peek() == ")":
            inp.take()
            return InnerList(tuple(items), _parameters(inp))
        items.append(Item(_bare_item(inp), _parameters(inp)))
        if inp.peek() not in (" ", ")"):
            raise inp.fail("expected ' ' or ')' in inner list")
    raise inp.fail("unterminated inner list")


def _parameters(inp: _Input) -> dict[str, BareItem]:
    params: dict[str, BareItem] = {}
    while inp.peek() == ";":
        inp.take()
        inp.skip(" ")
        key = _key(inp)
        value: BareItem = True
        if inp.peek() == "=":
            inp.take()
            value = _bare_item(inp)
        params[key] = value
    return params


def _key(inp: _Input) -> str:
    if inp.peek() not in _KEY_FIRST or inp.empty():
        raise inp.fail("expected a key (lowercase letter or '*')")
    start = inp.pos
    while not inp.empty() and inp.peek() in _KEY_CHARS:
        inp.pos += 1
    return inp.text[start : inp.pos]


def _bare_item(inp: _Input) -> BareItem:
    char = inp.peek()
    if char == "-" or (char != "" and char.isdigit()):
        return _number(inp)
    if char == '"':
        return _string(inp)
    if char == ":":
        return _byte_sequence(inp)
    if char == "?":
        return _boolean(inp)
    if char != "" and (char in string.ascii_letters or char == "*"):
        return _token(inp)
    raise inp.fail("expected an item (number, string, token, byte sequence or boolean)")


def _number(inp: _Input) -> int | Decimal:
    sign = 1
    if inp.peek() == "-":
        inp.take()
        sign = -1
    if not inp.peek().isdigit() or inp.empty():
        raise inp.fail("expected a digit")
    digits = ""
    is_decimal = False
    while not inp.empty():
        char = inp.peek()
        if char.isdigit():
            digits += inp.take()
        elif char == "." and not is_decimal:
            if len(digits) > 12:
                raise inp.fail("decimal with more than 12 integer digits")
            digits += inp.take()
            is_decimal = True
        else:
            break
        if not is_decimal and len(digits) > 15:
            raise inp.fail("integer with more than 15 digits")
        if is_decimal and len(digits) > 16:
            raise inp.fail("decimal longer than 16 characters")
    if not is_decimal:
        return sign * int(digits)
    if digits.endswith("."):
        raise inp.fail("decimal without fraction digits")
    if len(digits.split(".")[1]) > 3:
        raise inp.fail("decimal with more than 3 fraction digits")
    return sign * Decimal(digits)


def _string(inp: _Input) -> str:
    inp.take()
    out = []
    while not inp.empty():
        char = inp.take()
        if char == "\\":
            if inp.empty():
                raise inp.fail("string ends in a backslash")
            escaped = inp.take()
            if escaped not in ('"', "\\"):
                raise inp.fail(f"invalid escape \\{escaped}")
            out.append(escaped)
        elif char == '"':
            return "".join(out)
        elif not " " <= char <= "~":
            raise inp.fail("control character in string")
        else:
            out.append(char)
    raise inp.fail("unterminated string")


def _token(inp: _Input) -> Token:
    start = inp.pos
    inp.pos += 1
    while not inp.empty() and (inp.peek() in _TCHAR or inp.peek() in ":/"):
        inp.pos += 1
    return Token(inp.text[start : inp.pos])


def _byte_sequence(inp: _Input) -> bytes:
    inp.take()
    end = inp.text.find(":", inp.pos)
    if end < 0:
        raise inp.fail("unterminated byte sequence")
    content = inp.text[inp.pos : end]
    if not set(content) <= _BASE64:
        raise inp.fail("byte sequence is not base64")
    inp.pos = end + 1
    try:
        return base64.b64decode(content + "=" * (-len(content) % 4), validate=True)
    except binascii.Error:
        raise inp.fail("byte sequence is not base64") from None


def _boolean(inp: _Input) -> bool:
    inp.take()
    char = inp.take()
    if char == "1":
        return True
    if char == "0":
        return False
    raise inp.fail("boolean must be ?0 or ?1")
