"""Structural validation: the JSON Schema, with errors turned into one clear line.

jsonschema's own messages (``'x' is not valid under any of the given schemas``)
name neither the line nor what to write instead; here each error is mapped to
the YAML position, the field path and what was expected.
"""

from __future__ import annotations

import difflib
import math
from functools import cache
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from tokenslo.errors import InputError
from tokenslo.spec import schema as s
from tokenslo.spec.yamlpos import Document, iter_paths

_JSON_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
}
_PATTERN_HINTS = {
    s.NAME_PATTERN: "lowercase letters, digits, '-' and '_', starting with a letter or digit",
    s.DURATION_PATTERN: "a duration such as 30s, 5m, 1h, 30d",
    s.LABEL_NAME_PATTERN: "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
    s.METRIC_NAME_PATTERN: "a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
}


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(s.json_schema())


def describe(value: Any) -> str:
    """How a YAML value reads to a user: ``string '99.9'``, ``a list``, ``nothing``."""
    if value is None:
        return "nothing (empty value)"
    if isinstance(value, bool):
        return f"boolean {value}".lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    return f"{type(value).__name__} {value!r}"


def check_schema(doc: Document) -> None:
    """Raise an InputError for the first (topmost in the file) schema violation."""
    if doc.data is None:
        raise InputError(
            "empty file: expected a mapping with version, service and slos", file=doc.file, line=1
        )
    if not isinstance(doc.data, dict):
        line, column = doc.where(())
        raise InputError(
            f"not a mapping: expected version, service and slos at the top level, got "
            f"{describe(doc.data)}",
            file=doc.file,
            line=line,
            column=column,
        )
    for path, value in iter_paths(doc.data):
        if isinstance(value, float) and not math.isfinite(value):
            raise doc.error(f"expected a finite number, got {value}", path)
    raise_first_error(doc, _validator())


def raise_first_error(doc: Document, validator: Draft202012Validator) -> None:
    """Raise the most specific, topmost schema violation of ``doc`` as one clear InputError
    (shared by every YAML input that has a JSON Schema)."""
    errors = [_to_input_error(doc, e) for e in validator.iter_errors(doc.data)]
    fields = {e.field or "" for e in errors}
    # Most specific first: "unknown field sli.latency_ms" beats "sli needs events or latency".
    specific = [e for e in errors if not any(_inside(f, e.field or "") for f in fields)]
    if specific:
        raise min(specific, key=lambda e: (e.line or 0, e.column or 0))


def _inside(field: str, parent: str) -> bool:
    return field != parent and (not parent or field.startswith((parent + ".", parent + "[")))


def _to_input_error(doc: Document, error: ValidationError) -> InputError:
    path = tuple(error.absolute_path)
    handler = _HANDLERS.get(str(error.validator), _generic)
    message, path, on_key = handler(error, path)
    return doc.error(message, path, key=on_key)


Result = tuple[str, tuple, bool]
# The stubs allow a ValidationError without instance, schema or validator_value (``Unset``);
# those from a validator have them all, so the handlers cast them to what their rule holds.


def _generic(error: ValidationError, path: tuple) -> Result:
    return error.message, path, False


def _required(error: ValidationError, path: tuple) -> Result:
    present = set(error.instance) if isinstance(error.instance, dict) else set()
    missing = [name for name in cast(list[str], error.validator_value) if name not in present]
    # the field is absent, so point at the key of the mapping that lacks it
    return f"missing required field {missing[0]!r}", (*path, missing[0]), True


def _additional(error: ValidationError, path: tuple) -> Result:
    allowed = list(cast(dict, error.schema).get("properties", {}))
    unknown = next(k for k in cast(dict, error.instance) if k not in allowed)
    hint = difflib.get_close_matches(unknown, allowed, n=1)
    maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
    return (
        f"unknown field {unknown!r}{maybe}; allowed: {', '.join(allowed)}",
        (*path, unknown),
        True,
    )


def _type(error: ValidationError, path: tuple) -> Result:
    expected = _JSON_TYPES.get(str(error.validator_value), str(error.validator_value))
    hint = " (quote it)" if expected == "a string" and error.instance is not None else ""
    return f"expected {expected}, got {describe(error.instance)}{hint}", path, False


def _pattern(error: ValidationError, path: tuple) -> Result:
    hint = _PATTERN_HINTS.get(str(error.validator_value), f"a match for {error.validator_value}")
    if "propertyNames" in error.schema_path:
        return f"invalid key {error.instance!r}: expected {hint}", (*path, error.instance), True
    return f"invalid value {error.instance!r}: expected {hint}", path, False


def _const(error: ValidationError, path: tuple) -> Result:
    return f"expected {error.validator_value!r}, got {describe(error.instance)}", path, False


def _enum(error: ValidationError, path: tuple) -> Result:
    options = " or ".join(str(v) for v in cast(list, error.validator_value))
    return f"expected {options}, got {describe(error.instance)}", path, False


def _empty(error: ValidationError, path: tuple) -> Result:
    return "must not be empty", path, False


def _bound(error: ValidationError, path: tuple) -> Result:
    op = {
        "exclusiveMinimum": ">",
        "minimum": ">=",
        "exclusiveMaximum": "<",
        "maximum": "<=",
    }[str(error.validator)]
    field = path[-1] if path else ""
    if field == "objective":
        return (
            f"must be a percent between 0 and 100 (exclusive), e.g. 99.9; got {error.instance}",
            path,
            False,
        )
    return f"must be {op} {error.validator_value}, got {error.instance}", path, False


def _one_of(error: ValidationError, path: tuple) -> Result:
    options = [next(iter(o["required"])) for o in cast(list, error.validator_value)]
    present = [o for o in options if isinstance(error.instance, dict) and o in error.instance]
    found = "both are set" if len(present) > 1 else "neither is set"
    return f"set exactly one of {' / '.join(options)}: {found}", path, True


_HANDLERS = {
    "required": _required,
    "additionalProperties": _additional,
    "type": _type,
    "pattern": _pattern,
    "const": _const,
    "enum": _enum,
    "minItems": _empty,
    "minLength": _empty,
    "exclusiveMinimum": _bound,
    "minimum": _bound,
    "exclusiveMaximum": _bound,
    "maximum": _bound,
    "oneOf": _one_of,
}
