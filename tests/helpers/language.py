"""What a person reads on a page, and whether any of it is left in English."""

import re
from html.parser import HTMLParser

# Attributes whose words people read or hear: tooltips, placeholders, labels, and the
# words the pages hand their scripts (toasts, notifications).
READ_ATTRIBUTES = {
    "placeholder",
    "title",
    "aria-label",
    "alt",
    "data-unreachable",
    "data-granted",
    "data-denied",
    "data-unsupported",
    "data-new-request",
    "data-waiting",
    "data-someone",
}
# Machine codes quoted for support (the end reason beside its words), not words.
NOT_WORDS = {"code", "script", "style"}
# Latin words a Hindi page may show: the brand, the switch's "English", time zones, the
# CSV format, ₹-figures' neighbours; the fixtures' names are added by each test.
ALLOWED_LATIN = {"Consult", "English", "IST", "UTC", "CSV"}
LATIN_WORD = re.compile(r"[A-Za-z]+")
HINDI_WORD = re.compile(r"[\u0900-\u097F]+")


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in NOT_WORDS:
            self._skipping += 1
        attributes = dict(attrs)
        for name, value in attributes.items():
            if value and name in READ_ATTRIBUTES:
                self.parts.append(value)
        if (
            tag == "input"
            and attributes.get("type") in ("submit", "button")
            and attributes.get("value")
        ):
            self.parts.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag in NOT_WORDS and self._skipping:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> list[str]:
    """The page's text and read attributes, piece by piece."""
    reader = _Reader()
    reader.feed(html)
    return reader.parts


def english_left(html: str, allowed: set[str] = frozenset()) -> list[str]:
    """Every piece of a page that still has a Latin word not on the allowlist."""
    return [
        part
        for part in visible_text(html)
        if any(w not in ALLOWED_LATIN | set(allowed) for w in LATIN_WORD.findall(part))
    ]


def hindi_left(html: str, written: str = "") -> list[str]:
    """Every piece of an English page in Devanagari, but the switch's "हिन्दी" and the
    words people `written` themselves (a chat, a comment)."""
    return [
        part
        for part in visible_text(html)
        if part != "हिन्दी" and any(w not in written for w in HINDI_WORD.findall(part))
    ]
