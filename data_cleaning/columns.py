"""Finding the phone column of a lead list from its header names and its content."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from data_cleaning.exceptions import PhoneColumnError
from data_cleaning.models import ENRICHMENT_COLUMNS

__all__ = ["ColumnScore", "detect_phone_column", "looks_like_phone", "score_columns"]

# Header words that name a phone column, compared after lower-casing and removing spaces,
# underscores, dashes and dots.
_EXACT_NAMES: Final = frozenset(
    {
        "phone",
        "phonenumber",
        "phoneno",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "mobileno",
        "tel",
        "telephone",
        "telno",
        "cell",
        "cellphone",
        "msisdn",
        "contactnumber",
        "contactphone",
        "number",
        "callee",
        "電話",
        "电话",
        "手機",
        "手机",
        "联系电话",
        "聯繫電話",
        "聯絡電話",
        "电话号码",
        "電話號碼",
        "手机号",
        "手機號",
        "手机号码",
        "手機號碼",
        "联系方式",
        "聯繫方式",
        "號碼",
        "号码",
        "移动电话",
        "行動電話",
        "被叫",
        "被叫号码",
    }
)
_NAME_FRAGMENTS: Final = (
    "phone",
    "mobile",
    "tel",
    "cell",
    "電話",
    "电话",
    "手機",
    "手机",
    "號碼",
    "号码",
)
_NAME_NOISE: Final = re.compile(r"[\s_\-.:：()（）]+")
_PHONE_SHAPE: Final = re.compile(r"^[\s+＋(（]*[\d０-９][\d０-９\s\-‐－().（）/]*$")
_OWN_COLUMNS: Final = frozenset(ENRICHMENT_COLUMNS) - {"phone_e164"}


@dataclass(frozen=True, slots=True)
class ColumnScore:
    """How much a column looks like the phone column."""

    name: str
    header_score: int
    content_share: float


def looks_like_phone(value: str) -> bool:
    """Return whether a cell is shaped like a phone number (7 to 17 digits, phone punctuation)."""
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("tel:"):
        text = text[4:]
    for marker in ("转", "轉", "分机", "分機", "ext", "x", "#"):
        position = text.lower().find(marker)
        if position > 0:
            text = text[:position]
    if not _PHONE_SHAPE.match(text):
        return False
    digits = sum(ch.isdigit() for ch in text)
    return 7 <= digits <= 17


def _header_score(name: str) -> int:
    if name in _OWN_COLUMNS:
        return -1
    key = _NAME_NOISE.sub("", name.lower())
    if key in _EXACT_NAMES:
        return 2
    return 1 if any(fragment in key for fragment in _NAME_FRAGMENTS) else 0


def score_columns(columns: Sequence[str], sample: Sequence[Sequence[str]]) -> list[ColumnScore]:
    """Score every column by header name and by the share of phone-shaped sample cells."""
    scores = []
    for index, name in enumerate(columns):
        values = [row[index] for row in sample if index < len(row) and row[index].strip()]
        share = sum(looks_like_phone(v) for v in values) / len(values) if values else 0.0
        scores.append(ColumnScore(name, _header_score(name), share))
    return scores


def detect_phone_column(
    columns: Sequence[str], sample: Sequence[Sequence[str]], explicit: str | None = None
) -> str:
    """Return the phone column: the one named, else the best by header and content."""
    if explicit is not None:
        if explicit in columns:
            return explicit
        folded = {c.strip().lower(): c for c in columns}
        if explicit.strip().lower() in folded:
            return folded[explicit.strip().lower()]
        raise PhoneColumnError(
            f"there is no column named {explicit!r}; the columns are "
            f"{', '.join(repr(c) for c in columns)}: pass one of them as the phone column"
        )
    scores = score_columns(columns, sample)
    named = [s for s in scores if s.header_score > 0 and s.content_share >= 0.2]
    if named:
        best = max(named, key=lambda s: (s.header_score, s.content_share >= 0.5, s.content_share))
        return best.name
    by_content = [s for s in scores if s.header_score >= 0 and s.content_share >= 0.6]
    if by_content:
        return max(by_content, key=lambda s: s.content_share).name
    exact = [s for s in scores if s.header_score == 2]
    if len(exact) == 1:
        # A column plainly named "phone" is the phone column even if its sample is all bad:
        # the rows are then rejected with reasons, which tells the client more than an error.
        return exact[0].name
    raise PhoneColumnError(
        "no phone column found: no header is named like phone/mobile/tel/電話/手机 and no "
        f"column mostly holds phone numbers (columns: {', '.join(repr(c) for c in columns)}); "
        "name the column explicitly (--phone-column)"
    )
