"""Languages of the console: gettext catalogs (Babel) and one Jinja2 environment per language.

The catalogs are the ``.po`` files under ``locale/<lang>/LC_MESSAGES/messages.po``; they are
compiled in memory when first used (Babel's ``read_po``/``write_mo``), so an editable install
on a fresh machine works with no build step and no committed binary that can drift from its
source. Dates and numbers go through Babel's CLDR data in the user's locale.
"""

from __future__ import annotations

import functools
import io
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from core.users import LOCALES

__all__ = ["DEFAULT_LOCALE", "LOCALES", "LOCALE_DIR", "environment", "pick_locale", "translations"]

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
TEMPLATE_DIR = HERE / "templates"
DEFAULT_LOCALE = "zh-Hans"
# Catalog directories use gettext's names; Babel's CLDR locales use underscores.
_CATALOG = {"zh-Hans": "zh_Hans", "zh-Hant": "zh_Hant", "en": "en"}
_BABEL = {"zh-Hans": "zh_Hans_CN", "zh-Hant": "zh_Hant_TW", "en": "en_US"}
_DISPLAY_ZONE = {"zh-Hans": "Asia/Shanghai", "zh-Hant": "Asia/Taipei", "en": "Asia/Shanghai"}
LANGUAGE_NAMES = {"zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English"}


def pick_locale(candidate: str | None) -> str:
    """A supported locale for a stored preference (the default when unknown)."""
    return candidate if candidate in LOCALES else DEFAULT_LOCALE


@functools.cache
def translations(locale: str) -> Translations:
    """The compiled catalog of ``locale``."""
    path = LOCALE_DIR / _CATALOG[locale] / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=_BABEL[locale])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


@functools.cache
def environment(locale: str) -> Environment:
    """The templates rendered in ``locale`` (cached: one environment per language)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    babel_locale = Locale.parse(_BABEL[locale])
    zone = ZoneInfo(_DISPLAY_ZONE[locale])

    def when(value: datetime | None, fmt: str = "short") -> str:
        if value is None:
            return "—"
        return format_datetime(value, fmt, tzinfo=zone, locale=babel_locale)

    def when_in(value: datetime | None, zone_name: str, fmt: str = "short") -> str:
        """A moment as wall-clock time in another zone (a lead's), with the zone's name."""
        if value is None:
            return "—"
        other = ZoneInfo(zone_name)
        return format_datetime(value, fmt, tzinfo=other, locale=babel_locale) + f" ({zone_name})"

    def number(value: Any, digits: int = 0) -> str:
        if value is None:
            return "—"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=babel_locale)

    def percent(value: Any, digits: int = 1) -> str:
        if value is None:
            return "—"
        return format_percent(value, format="#,##0." + "0" * digits + "%", locale=babel_locale)

    env.filters.update(when=when, when_in=when_in, number=number, percent=percent)
    env.globals.update(
        locale=locale,
        language_names=LANGUAGE_NAMES,
        html_lang=locale,
        display_zone=_DISPLAY_ZONE[locale],
    )
    return env
