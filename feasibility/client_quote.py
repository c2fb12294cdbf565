"""The client quote: the document a client signs, in zh-Hans, zh-Hant or en, as HTML or PDF.

Built from the internal report but carrying none of its internals: no agent cost, management
coefficient, margin or derivation, only the recommended price per valid call for each ramp
month, VAT, the assumptions the price rests on, validity and a signature block. ``render_pdf``
prints the HTML with headless Chromium (``--print-to-pdf``), which embeds the fonts it uses
(Noto Sans CJK for Chinese), so the PDF reads the same on a machine without them.
"""

from __future__ import annotations

import subprocess
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

import jinja2
from pydantic import BaseModel, ConfigDict

from core.errors import Unavailable
from feasibility.quote import money
from feasibility.report import FeasibilityReport

__all__ = [
    "LANGUAGES",
    "ClientQuote",
    "QuoteLine",
    "build_client_quote",
    "render_client_quote_html",
    "render_pdf",
]

Language = Literal["zh-Hans", "zh-Hant", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-Hans", "zh-Hant", "en")
DEFAULT_VALIDITY_DAYS = 30

TEXT: dict[str, dict[Language, str]] = {
    "title": {"zh-Hans": "服务报价单", "zh-Hant": "服務報價單", "en": "Quotation"},
    "to": {"zh-Hans": "客户", "zh-Hant": "客戶", "en": "Client"},
    "number": {"zh-Hans": "报价单号", "zh-Hant": "報價單號", "en": "Quote number"},
    "issued": {"zh-Hans": "出具日期", "zh-Hant": "出具日期", "en": "Issue date"},
    "valid": {"zh-Hans": "有效期至", "zh-Hant": "有效期至", "en": "Valid until"},
    "service": {
        "zh-Hans": "外呼服务，按有效通话计费",
        "zh-Hant": "外呼服務，按有效通話計費",
        "en": "Outbound calling service, billed per valid call",
    },
    "period": {"zh-Hans": "计费期间", "zh-Hant": "計費期間", "en": "Billing period"},
    "unit": {"zh-Hans": "单价（不含税）", "zh-Hant": "單價（未稅）", "en": "Unit price excl. VAT"},
    "vat": {"zh-Hans": "增值税", "zh-Hant": "增值稅", "en": "VAT"},
    "gross": {"zh-Hans": "含税单价", "zh-Hant": "含稅單價", "en": "Unit price incl. VAT"},
    "month_1": {"zh-Hans": "第 1 个月", "zh-Hant": "第 1 個月", "en": "Month 1"},
    "month_2": {"zh-Hans": "第 2 个月", "zh-Hant": "第 2 個月", "en": "Month 2"},
    "steady": {"zh-Hans": "第 3 个月起", "zh-Hant": "第 3 個月起", "en": "Month 3 onwards"},
    "holiday": {
        "zh-Hans": "法定节假日（按合同倍数）",
        "zh-Hant": "法定節假日（按合約倍數）",
        "en": "Statutory holidays (contract multiple)",
    },
    "assumptions": {"zh-Hans": "报价前提", "zh-Hant": "報價前提", "en": "Assumptions"},
    "valid_call": {
        "zh-Hans": "有效通话指通话时长超过 {s} 秒的接通电话，不按拨打次数计费。",
        "zh-Hant": "有效通話指通話時長超過 {s} 秒的接通電話，不按撥打次數計費。",
        "en": "A valid call is a connected call with more than {s} s of talk; dials are not "
        "billed.",
    },
    "list": {
        "zh-Hans": "名单共 {leads} 条，其中试拨 {pilot} 条；每条名单最多拨打 {attempts} 次。",
        "zh-Hant": "名單共 {leads} 筆，其中試撥 {pilot} 筆；每筆名單最多撥打 {attempts} 次。",
        "en": "A list of {leads} leads, {pilot} of them in the pilot; at most {attempts} "
        "attempts per lead.",
    },
    "projection": {
        "zh-Hans": "根据试拨结果，其余名单预计可接通 {low}–{high} 条（P10–P90）。",
        "zh-Hant": "根據試撥結果，其餘名單預計可接通 {low}–{high} 筆（P10–P90）。",
        "en": "From the pilot, {low}–{high} of the remaining leads are expected to be reached "
        "(P10–P90).",
    },
    "ramp": {
        "zh-Hans": "前两个月为爬坡期，单价较高；第 3 个月起按稳定单价结算。",
        "zh-Hant": "前兩個月為爬坡期，單價較高；第 3 個月起按穩定單價結算。",
        "en": "Months 1 and 2 are the ramp-up, priced higher; from month 3 the steady price "
        "applies.",
    },
    "vat_note": {
        "zh-Hans": "以上单价不含 {rate} 增值税，含税单价另列。",
        "zh-Hant": "以上單價未含 {rate} 增值稅，含稅單價另列。",
        "en": "Unit prices exclude {rate} VAT; prices including VAT are shown beside them.",
    },
    "validity_note": {
        "zh-Hans": "本报价自出具日起 {days} 天内有效。",
        "zh-Hant": "本報價自出具日起 {days} 天內有效。",
        "en": "This quotation is valid for {days} days from its issue date.",
    },
    "sign": {"zh-Hans": "确认签署", "zh-Hant": "確認簽署", "en": "Acceptance"},
    "client_sign": {"zh-Hans": "客户（盖章）", "zh-Hant": "客戶（蓋章）", "en": "For the client"},
    "provider_sign": {
        "zh-Hans": "服务方（盖章）",
        "zh-Hant": "服務方（蓋章）",
        "en": "For Pilotdial",
    },
    "signature": {"zh-Hans": "签字", "zh-Hant": "簽字", "en": "Signature"},
    "name": {"zh-Hans": "姓名", "zh-Hant": "姓名", "en": "Name"},
    "date": {"zh-Hans": "日期", "zh-Hant": "日期", "en": "Date"},
    "currency": {"zh-Hans": "元", "zh-Hant": "元", "en": "CNY"},
}


class QuoteLine(BaseModel):
    """One billing period and its unit price, before and with VAT."""

    model_config = ConfigDict(frozen=True)

    period: str
    label: str
    unit_price: Decimal
    unit_price_with_vat: Decimal


class ClientQuote(BaseModel):
    """What the client sees and signs: no costs, margin or derivation."""

    model_config = ConfigDict(frozen=True)

    language: Language
    client_name: str
    quote_number: str
    issue_date: date
    valid_until: date
    currency: str
    vat_rate: Decimal
    lines: list[QuoteLine]
    assumptions: list[str]
    provider_name: str = "Pilotdial"


def build_client_quote(
    report: FeasibilityReport,
    *,
    client_name: str,
    quote_number: str,
    issue_date: date,
    language: Language = "zh-Hans",
    validity_days: int = DEFAULT_VALIDITY_DAYS,
) -> ClientQuote:
    """The client quote of a report, at its recommended prices."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    recommended = report.quote.recommended
    vat = Decimal(str(report.quote.vat_rate))
    holiday = money(
        Decimal(str(recommended.steady)) * Decimal(str(report.costs.holiday_multiplier))
    )
    periods = [
        ("month_1", Decimal(str(recommended.month_1))),
        ("month_2", Decimal(str(recommended.month_2))),
        ("steady", Decimal(str(recommended.steady))),
        ("holiday", holiday),
    ]
    lines = [
        QuoteLine(
            period=key,
            label=TEXT[key][language],
            unit_price=money(price),
            unit_price_with_vat=money(price * (1 + vat)),
        )
        for key, price in periods
    ]
    contacts = report.projection.contacts
    assumptions = [
        TEXT["valid_call"][language].format(s=f"{report.costs.valid_call_min_talk_s:g}"),
        TEXT["list"][language].format(
            leads=f"{report.pilot.list_leads:,}",
            pilot=f"{report.pilot.leads:,}",
            attempts=report.max_attempts,
        ),
        TEXT["projection"][language].format(
            low=f"{contacts.p10:,.0f}", high=f"{contacts.p90:,.0f}"
        ),
        TEXT["ramp"][language],
        TEXT["vat_note"][language].format(rate=f"{vat:.0%}"),
        TEXT["validity_note"][language].format(days=validity_days),
    ]
    return ClientQuote(
        language=language,
        client_name=client_name,
        quote_number=quote_number,
        issue_date=issue_date,
        valid_until=issue_date + timedelta(days=validity_days),
        currency=report.quote.currency,
        vat_rate=vat,
        lines=lines,
        assumptions=assumptions,
    )


TEMPLATE = """<!DOCTYPE html>
<html lang="{{ q.language }}">
<head>
<meta charset="utf-8">
<title>{{ t.title }} {{ q.quote_number }}</title>
<style>
  @page { size: A4; margin: 16mm; }
  body { font-family: {{ font }}; color: #1d2330; font-size: 12.5px; line-height: 1.55;
         max-width: 820px; margin: 24px auto; padding: 0 16px; }
  h1 { font-size: 24px; letter-spacing: 2px; margin: 0 0 14px; color: #1f5fa8; }
  h2 { font-size: 14px; border-bottom: 2px solid #1f5fa8; padding-bottom: 3px; margin-top: 22px; }
  table { border-collapse: collapse; width: 100%; }
  .meta { width: auto; }
  .meta td { padding: 2px 24px 2px 0; border: none; }
  .prices th, .prices td { border: 1px solid #c9ced6; padding: 6px 8px; text-align: right; }
  .prices th:first-child, .prices td:first-child { text-align: left; }
  .prices th { background: #eef2f8; }
  .sign { display: grid; grid-template-columns: 1fr 1fr; gap: 28px; margin-top: 14px; }
  .sign > div { border: 1px solid #c9ced6; padding: 10px 12px; }
  .line { border-bottom: 1px solid #8a8f98; height: 26px; margin-bottom: 4px; }
  .muted { color: #5f6672; font-size: 11px; }
</style>
</head>
<body>
<h1>{{ t.title }}</h1>
<table class="meta">
<tr><td>{{ t.to }}</td><td><strong>{{ q.client_name }}</strong></td></tr>
<tr><td>{{ t.number }}</td><td>{{ q.quote_number }}</td></tr>
<tr><td>{{ t.issued }}</td><td>{{ q.issue_date.isoformat() }}</td></tr>
<tr><td>{{ t.valid }}</td><td>{{ q.valid_until.isoformat() }}</td></tr>
</table>
<h2>{{ t.service }}</h2>
<table class="prices">
<tr><th>{{ t.period }}</th><th>{{ t.unit }}（{{ q.currency }}）</th><th>{{ t.vat }} {{ vat }}</th>
<th>{{ t.gross }}（{{ q.currency }}）</th></tr>
{% for line in q.lines %}<tr><td>{{ line.label }}</td><td>{{ "%.2f"|format(line.unit_price) }}</td>
<td>{{ "%.2f"|format(line.unit_price_with_vat - line.unit_price) }}</td>
<td>{{ "%.2f"|format(line.unit_price_with_vat) }}</td></tr>{% endfor %}
</table>
<h2>{{ t.assumptions }}</h2>
<ol>{% for a in q.assumptions %}<li>{{ a }}</li>{% endfor %}</ol>
<h2>{{ t.sign }}</h2>
<div class="sign">
<div><strong>{{ t.client_sign }}：{{ q.client_name }}</strong>
<p>{{ t.signature }}</p><div class="line"></div><p>{{ t.name }}</p><div class="line"></div>
<p>{{ t.date }}</p><div class="line"></div></div>
<div><strong>{{ t.provider_sign }}：{{ q.provider_name }}</strong>
<p>{{ t.signature }}</p><div class="line"></div><p>{{ t.name }}</p><div class="line"></div>
<p>{{ t.date }}</p><div class="line"></div></div>
</div>
<p class="muted">{{ q.quote_number }} · {{ q.provider_name }}</p>
</body>
</html>
"""

FONTS: dict[Language, str] = {
    # Unquoted family names are valid CSS and survive HTML autoescaping inside <style>.
    "zh-Hans": "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, sans-serif",
    "zh-Hant": "Noto Sans CJK TC, Noto Sans TC, Source Han Sans TC, sans-serif",
    "en": "Noto Sans, Helvetica Neue, Arial, sans-serif",
}


def render_client_quote_html(quote: ClientQuote) -> str:
    """The client quote as one self-contained HTML page (A4 print styles)."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(TEMPLATE)
    text = {key: value[quote.language] for key, value in TEXT.items()}
    return template.render(q=quote, t=text, vat=f"{quote.vat_rate:.0%}", font=FONTS[quote.language])


def render_pdf(html: str, *, chromium: str = "/usr/bin/chromium", timeout_s: float = 60) -> bytes:
    """Print HTML to PDF with headless Chromium; fonts used are embedded in the PDF."""
    with tempfile.TemporaryDirectory(prefix="pilotdial-quote-") as folder:
        source = Path(folder) / "quote.html"
        target = Path(folder) / "quote.pdf"
        source.write_text(html, encoding="utf-8")
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={folder}/profile",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        try:
            # A fixed argument list (no shell); the only inputs are our own temporary paths.
            subprocess.run(command, check=True, capture_output=True, timeout=timeout_s)  # noqa: S603
        except FileNotFoundError as exc:
            raise Unavailable(
                f"the PDF needs Chromium, which is not installed at {chromium} on this server: "
                "install it (apt-get install chromium fonts-noto-cjk), or download the quote "
                "as HTML (quote.html) and print it from a browser"
            ) from exc
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            stderr = exc.stderr[-400:] if isinstance(exc.stderr, bytes) else b""
            raise Unavailable(
                f"Chromium could not print the quote ({stderr!r}); try again, or download the "
                "quote as HTML (quote.html) and print it from a browser"
            ) from exc
        return target.read_bytes()
