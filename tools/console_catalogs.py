"""Refresh the console's gettext catalogs from the templates and labels (a maintainer's tool).

``python tools/console_catalogs.py`` extracts every message of ``api/console`` (Babel), keeps
the translations the ``.po`` files already have and lists the messages still untranslated;
the test ``tests/api/console/test_i18n.py`` fails while any is.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent / "api" / "console"
LOCALES = {"zh_Hans": "zh_Hans_CN", "zh_Hant": "zh_Hant_TW", "en": "en_US"}
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**/labels.py", "python"),
    ("**/problems.py", "python"),
]
OPTIONS = {
    "**/templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
    }
}


def extract() -> list[str]:
    """Every message id, in first-seen order."""
    ids: list[str] = []
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, options_map=OPTIONS, keywords={"_": None, "N_": None}
    ):
        text = message[0] if isinstance(message, tuple) else message
        if text not in ids:
            ids.append(text)
    return ids


def refresh(extra: dict[str, dict[str, str]] | None = None) -> dict[str, list[str]]:
    """Rewrite each catalog with every message; returns the untranslated ones per locale."""
    ids = extract()
    missing: dict[str, list[str]] = {}
    for folder, babel_locale in LOCALES.items():
        path = ROOT / "locale" / folder / "LC_MESSAGES" / "messages.po"
        known: dict[str, str] = {}
        if path.exists():
            with path.open("rb") as handle:
                known = {str(m.id): str(m.string) for m in read_po(handle) if m.id and m.string}
        known.update((extra or {}).get(folder, {}))
        catalog = Catalog(
            locale=babel_locale, project="Pilotdial console", charset="utf-8", fuzzy=False
        )
        for message_id in ids:
            catalog.add(message_id, known.get(message_id, ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, no_location=True)
        missing[folder] = [m for m in ids if not known.get(m)]
    return missing


if __name__ == "__main__":
    for locale, ids in refresh().items():
        print(f"{locale}: {len(ids)} untranslated" + (": " + ", ".join(ids[:10]) if ids else ""))
