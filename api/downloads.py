"""``Content-Disposition`` for downloads, as RFC 6266 and RFC 5987 spell it.

A download's name comes from the caller (a list's name, a questionnaire's key): it may be
Chinese, contain quotes, semicolons or line breaks. The header carries it twice: a sanitised
ASCII ``filename=`` for old clients and the exact name as ``filename*=UTF-8''<percent-encoded>``
for every current browser and HTTP library. Neither form can end the header or add a parameter.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

__all__ = ["content_disposition"]

# RFC 5987 attr-char: what may stay unencoded in an ext-value
_ATTR_CHARS = "!#$&+-.^_`|~"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NOT_FALLBACK = re.compile(r"[^A-Za-z0-9._ ()\-]+")
MAX_NAME_CHARS = 150


def _clean(name: str) -> str:
    """The name without control characters or path parts, at most 150 characters."""
    name = _CONTROL.sub(" ", name).replace("/", "_").replace("\\", "_")
    name = " ".join(name.split()).strip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_NAME_CHARS].rstrip()
    return name


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"_+", "_", _NOT_FALLBACK.sub("_", folded)).strip(" ._-")


def _ascii_fallback(name: str, default: str) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot or not 0 < len(ext) <= 10:
        stem, ext = name, ""
    stem, ext = _fold(stem), _fold(ext)
    stem = stem or default
    return f"{stem}.{ext}" if ext else stem


def content_disposition(filename: str, *, default: str = "download") -> str:
    """``attachment; filename="<ascii>"; filename*=UTF-8''<name>`` for any file name."""
    name = _clean(filename) or default
    fallback = _ascii_fallback(name, default)
    encoded = quote(name, safe=_ATTR_CHARS)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
