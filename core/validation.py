"""Input bounds shared by every schema, so bad values are a 422 naming the field, not a 500.

PostgreSQL refuses NUL characters in text, JSON refuses NaN and Infinity, and UTF-8 cannot
encode a lone surrogate (``"\\ud800"`` is valid JSON): each used to surface only when the value
reached the database or the response encoder. These annotated types refuse them at the edge.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError

__all__ = [
    "MAX_OFFSET",
    "FiniteFloat",
    "PlainText",
    "Region",
    "check_finite_numbers",
    "check_plain_text",
    "describe_validation_error",
]

#: The largest page offset any list route accepts (far beyond any real table, inside int32).
MAX_OFFSET = 1_000_000_000


def check_plain_text(value: str) -> str:
    """Refuse NUL and lone surrogates; the message never echoes the value."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "must be valid Unicode text (it contains a lone surrogate such as \\ud800)"
        ) from None
    return value


def check_finite_numbers(value: Any) -> Any:
    """Refuse NaN, Infinity and overflowing numbers (``1e400``) anywhere inside a JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (NaN, Infinity and 1e400 cannot be stored)")
    if isinstance(value, dict):
        for key, item in value.items():
            check_plain_text(str(key))
            check_finite_numbers(item)
    elif isinstance(value, list | tuple):
        for item in value:
            check_finite_numbers(item)
    elif isinstance(value, str):
        check_plain_text(value)
    return value


PlainText = Annotated[str, AfterValidator(check_plain_text)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Region = Annotated[
    str,
    Field(
        min_length=2,
        max_length=2,
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166 region code, e.g. CN, HK, TW",
    ),
]


def describe_validation_error(error: ValidationError) -> str:
    """``field: what is wrong`` for each error, without pydantic's types, inputs and links."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item.get("loc", ()))
        parts.append(f"{field}: {item['msg']}" if field else str(item["msg"]))
    return "; ".join(parts) or "invalid value"
