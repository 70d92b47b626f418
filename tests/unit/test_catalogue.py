"""The Hindi catalogue holds every word the pages mark for translation, each translated,
with the same placeholders as its English (a missing one would raise, or drop a figure)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "translations/hi/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.fixture(scope="module")
def catalogue():
    with PO.open("rb") as po:
        return read_po(po, locale="hi")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """What `make catalogue` extracts from the code and templates now."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [pybabel, "-q", "extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext"]
        + ["-k", "_same", "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as file:
        return read_po(file)


def _ids(catalog) -> set:
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def test_every_marked_message_is_in_the_hindi_catalogue(catalogue, extracted):
    missing = _ids(extracted) - _ids(catalogue)
    assert not missing, "run `make catalogue`, then translate these"
    assert len(_ids(extracted)) > 300  # the extraction found the templates and views


def test_every_message_has_its_hindi(catalogue):
    untranslated = [
        m.id
        for m in catalogue
        if m.id
        and (
            "fuzzy" in m.flags
            or not (all(m.string) if isinstance(m.id, tuple | list) else m.string)
        )
    ]
    assert not untranslated
    assert not catalogue.fuzzy  # a fuzzy header: `pybabel compile` would skip the whole file


def test_placeholders_match_the_english(catalogue):
    def names(texts) -> list[set]:
        return [set(PLACEHOLDER.findall(t)) for t in ([texts] if isinstance(texts, str) else texts)]

    wrong = []
    for m in catalogue:
        if not m.id:
            continue
        english = set().union(*names(m.id))
        if any(found != english for found in names(m.string)):
            wrong.append(m.id)
    assert not wrong


def test_hindi_is_written_in_devanagari(catalogue):
    """Each translation is Hindi, not the English copied over (the brand aside)."""
    latin_only = [
        m.id
        for m in catalogue
        if m.id
        and isinstance(m.string, str)
        and not re.search(r"[\u0900-\u097F]", m.string)
        and re.search(r"[A-Za-z]{2}", PLACEHOLDER.sub("", m.string))
    ]
    assert not latin_only
