"""Render a ``CaseModel`` as the judge's certificate: HTML (Jinja2) and PDF (WeasyPrint).

Every string of the model is hostile: the template autoescapes all of it, the
PDF renderer fetches nothing but the ``data:`` URIs the template itself
writes (the QR code), and the model is cut to its caps (``bounded``) before
rendering. Translations are gettext ``.po`` files under ``locale/`` read
directly with Babel (no compile step); a string a language lacks, or marks
fuzzy, falls back to the English msgid (docs/AUDIT.md, "The judge's
certificate").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import segno
from babel.dates import format_datetime
from babel.messages.pofile import read_po

from ledger.audit.certificate_model import CaseModel, bounded
from ledger.errors import ClientError

HERE = Path(__file__).parent
LANGUAGES = ("en", "fr", "zh")
# Babel's locale for each language the certificate speaks.
LOCALES = {"en": "en_GB", "fr": "fr_FR", "zh": "zh_Hans_CN"}
QR_PREFIX = "comity-case-bundle:sha256:"


@functools.cache
def messages(lang: str) -> dict[str, str]:
    """The translated strings of ``lang`` (msgid -> msgstr); empty for English."""
    path = HERE / "locale" / lang / "LC_MESSAGES" / "certificate.po"
    if lang == "en" or not path.is_file():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=LOCALES[lang])
    return {
        str(m.id): str(m.string)
        for m in catalog
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
        if not m.fuzzy
    }


def translator(lang: str) -> Callable[[str], str]:
    table = messages(lang)
    return lambda msgid: table.get(msgid, msgid)


def check_lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ClientError(
            f"language must be one of {', '.join(LANGUAGES)}", field="lang", code="bad_lang"
        )
    return lang


def when(value: str | None, lang: str) -> str:
    """``value`` (RFC 3339 UTC) in ``lang``'s medium format, then as UTC; raw if unparsable."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    local = format_datetime(moment, format="medium", tzinfo=UTC, locale=LOCALES[lang])
    return f"{local} ({moment.strftime('%Y-%m-%d %H:%M:%S')} UTC)"


def utc(value: str | None) -> str:
    """``value`` (RFC 3339 UTC) as ``YYYY-MM-DD HH:MM:SS UTC``; raw if unparsable."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC"


def qr_data_uri(bundle_sha256: str) -> str:
    return str(segno.make(QR_PREFIX + bundle_sha256, error="m").svg_data_uri(scale=3, border=1))


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render_html(model: CaseModel, lang: str) -> str:
    """The certificate as one self-contained HTML document."""
    check_lang(lang)
    model = bounded(model)
    context: dict[str, Any] = {
        "m": model,
        "omitted": asdict(model)["omitted"],
        "lang": lang,
        "t": translator(lang),
        "when": lambda value: when(value, lang),
        "utc": utc,
        "qr": qr_data_uri(model.bundle_sha256),
    }
    return _environment().get_template("certificate.html").render(context)


def render_pdf(model: CaseModel, lang: str) -> bytes:
    """The certificate as PDF (WeasyPrint, fonts found by fontconfig: CJK needs one)."""
    import weasyprint  # imported late: pango is loaded only when a PDF is asked for

    html = render_html(model, lang)
    # Fetch nothing but the data: URIs the template writes (the QR code), fail loudly else.
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    return pdf
