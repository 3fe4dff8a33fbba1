"""A precompiled yes/no test for the common subset of JSON Schema: does a record pass?

jsonschema stays the judge. Its validator is generic: every keyword of every
subschema is dispatched per instance (``descend``/``evolve``), some 40 µs per
log record, which made LOG-002/LOG-003 fifty times slower than decoding the
lines. Most records pass, so :func:`compile_passes` turns a schema into one
Python expression (the technique of fastjsonschema, for the keywords the log
schemas use) that answers "valid" cheaply; every record it does not pass is
handed to jsonschema's own validator, so each finding is jsonschema's, worded
by jsonschema.

The test is conservative by construction: it may send a valid record to
jsonschema (a float ``1.0`` where an integer is wanted, a NaN against a
minimum), never pass an invalid one. A schema with any keyword outside the
subset gets no test at all (``None``): every record then goes to jsonschema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["compile_passes"]

#: Keywords that never make an instance invalid (annotations). "format" is one:
#: jsonschema's validators assert it only when given a format checker, and ours get none.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated",
     "readOnly", "writeOnly", "format"}
)  # fmt: skip
_TYPE_TESTS = {
    "string": "isinstance({v}, str)",
    "integer": "type({v}) is int",  # bool is not an integer; a float 1.0 is left to jsonschema
    "number": "(type({v}) is int or type({v}) is float)",
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "boolean": "({v} is True or {v} is False)",
    "null": "{v} is None",
}


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


class _Unsupported(Exception):
    pass


class _Builder:
    def __init__(self) -> None:
        self.constants: dict[str, Any] = {"_MISSING": object()}

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def literal(self, value: Any) -> str:
        """A constant in the generated code: a literal for strings and finite numbers."""
        if type(value) in (str, int) or (type(value) is float and value - value == 0):
            return repr(value)
        return self.constant(value)

    def expression(self, schema: Any, depth: int) -> str:
        if schema is True:
            return "True"
        if schema is False:
            return "False"
        if not isinstance(schema, Mapping):
            raise _Unsupported
        v = f"v{depth}"
        kind = schema.get("type")
        # With one "type", the keywords of that type need no guard of their own.
        string = "True" if kind == "string" else f"not isinstance({v}, str)"
        number = "True" if kind in ("integer", "number") else f"not {_TYPE_TESTS['number'].format(v=v)}"
        obj = "True" if kind == "object" else f"not isinstance({v}, dict)"

        def guarded(guard: str, test: str) -> str:
            return f"({test})" if guard == "True" else f"({guard} or {test})"

        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            raise _Unsupported
        terms: list[str] = []
        if "type" in schema:
            kinds = [kind] if isinstance(kind, str) else kind
            if not isinstance(kinds, list) or not kinds or any(k not in _TYPE_TESTS for k in kinds):
                raise _Unsupported
            terms.append("(" + " or ".join(_TYPE_TESTS[k].format(v=v) for k in kinds) + ")")
        if required:  # before "properties", which then reads required keys without a default
            terms.append(guarded(obj, " and ".join(f"{self.literal(n)} in {v}" for n in required)))
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("type", "required"):
                continue
            if keyword in ("minLength", "maxLength"):
                if type(value) is not int:
                    raise _Unsupported
                op = ">=" if keyword == "minLength" else "<="
                terms.append(guarded(string, f"len({v}) {op} {value}"))
            elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if type(value) not in (int, float) or value - value != 0:
                    raise _Unsupported
                terms.append(guarded(number, f"{v} {_BOUNDS[keyword]} {self.literal(value)}"))
            elif keyword == "enum":
                if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
                    raise _Unsupported  # jsonschema's equality for numbers and booleans is its own
                terms.append(f"(isinstance({v}, str) and {v} in {self.constant(frozenset(value))})")
            elif keyword == "pattern":
                if not isinstance(value, str):
                    raise _Unsupported
                terms.append(guarded(string, f"{self.constant(re.compile(value))}.search({v}) is not None"))
            elif keyword == "properties":
                if not isinstance(value, Mapping):
                    raise _Unsupported
                inner = f"v{depth + 1}"
                checks = []
                for name, sub in value.items():
                    test = self.expression(sub, depth + 1)
                    if test == "True":
                        continue
                    if name in required:
                        checks.append(f"(({inner} := {v}[{self.literal(name)}]) is {inner} and {test})")
                    else:
                        got = f"{v}.get({self.literal(name)}, _MISSING)"
                        checks.append(f"(({inner} := {got}) is _MISSING or {test})")
                if checks:
                    terms.append(guarded(obj, " and ".join(checks)))
            elif keyword == "additionalProperties":
                if value is not True and value != {}:
                    raise _Unsupported
            else:
                raise _Unsupported
        return "(" + " and ".join(terms) + ")" if terms else "True"


def compile_passes(schema: Mapping[str, Any] | bool) -> Callable[[Any], bool] | None:
    """A function true only for instances ``schema`` accepts, or ``None`` when the
    schema uses a keyword outside the subset (then ask jsonschema about every instance)."""
    builder = _Builder()
    try:
        expression = builder.expression(schema, 0)
    except _Unsupported:
        return None
    namespace = dict(builder.constants)
    # Generated from the schema's keywords and constants bound by name; no schema text is executed.
    exec(f"def passes(v0):\n    return {expression}\n", namespace)  # noqa: S102
    passes: Callable[[Any], bool] = namespace["passes"]
    return passes
