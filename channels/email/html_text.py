"""HTML mail bodies → readable text, with the quoted history and signature cut off by markup.

Clients mark what they quote: Gmail wraps it in ``<div class="gmail_quote">``, Apple Mail and
Thunderbird in ``<blockquote type="cite">`` (Thunderbird adds ``<div class="moz-cite-prefix">``),
Outlook starts it at ``<div id="divRplyFwdMsg">`` / ``<div id="appendonsend">``, Yahoo at
``<div class="yahoo_quoted">``.  Signatures: Gmail's ``<div class="gmail_signature">``,
Thunderbird's ``class="moz-signature"``.  The HTML is cut at the first such start tag and each
piece is converted on its own with ``html2text`` (links kept, images and emphasis dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

import html2text

__all__ = ["HtmlParts", "html_to_text", "split_html"]

_QUOTE_CLASSES = {"gmail_quote", "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted"}
_QUOTE_IDS = {"divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}
_SIGNATURE_CLASSES = {"gmail_signature", "moz-signature"}


@dataclass(frozen=True, slots=True)
class HtmlParts:
    new: str
    signature: str
    quoted: str


class _MarkerFinder(HTMLParser):
    """Records the source offset of the first quote marker and the first signature marker."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.quote_at: tuple[int, int] | None = None
        self.signature_at: tuple[int, int] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        classes = set(values.get("class", "").lower().split())
        element_id = values.get("id", "").lower()
        is_quote = (
            bool(classes & _QUOTE_CLASSES)
            or element_id in _QUOTE_IDS
            or (tag == "blockquote" and values.get("type", "").lower() == "cite")
        )
        if is_quote and self.quote_at is None:
            self.quote_at = self.getpos()
        elif classes & _SIGNATURE_CLASSES and self.signature_at is None and self.quote_at is None:
            self.signature_at = self.getpos()


def _offset(source: str, position: tuple[int, int]) -> int:
    line, column = position
    if line <= 1:
        return column
    start = 0
    for _ in range(line - 1):
        found = source.find("\n", start)
        if found < 0:
            return len(source)
        start = found + 1
    return start + column


def split_html(source: str) -> HtmlParts:
    """Cut ``source`` at the first signature and quote markers (see the module docstring)."""
    finder = _MarkerFinder()
    finder.feed(source)
    finder.close()
    end = len(source)
    quote = _offset(source, finder.quote_at) if finder.quote_at else end
    signature = _offset(source, finder.signature_at) if finder.signature_at else quote
    signature = min(signature, quote)
    return HtmlParts(new=source[:signature], signature=source[signature:quote], quoted=source[quote:])


def html_to_text(source: str) -> str:
    """Readable text of an HTML fragment; blank on empty input."""
    if not source.strip():
        return ""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.unicode_snob = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    converter.ignore_mailto_links = True
    converter.single_line_break = False
    return str(converter.handle(source)).strip()
