"""host.feed.spec checked against the ITCH 5.0 / MoldUDP64 spec text.

The text check parses every message section of ``nasdaq-totalview-itch-5.0.txt`` (a section
starts at a ``Message Type 0 1 "X"`` line) and every ``<Name> <offset> <length> <Type>`` line in
it, names split over several lines included. It is skipped when the spec folder is absent
(``shared/specs`` beside the repository, or ``$ITCH_SPEC_DIR``); the known lengths below are
always checked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from host.feed import spec
from host.feed.spec import MESSAGES

REPO = Path(__file__).resolve().parents[3]


def spec_dir() -> Path:
    env = os.environ.get("ITCH_SPEC_DIR")
    return Path(env) if env else REPO / ".." / "shared" / "specs"


ITCH_TXT = spec_dir() / "nasdaq-totalview-itch-5.0.txt"
MOLD_TXT = spec_dir() / "moldudp64-1.0.txt"
needs_text = pytest.mark.skipif(not ITCH_TXT.is_file(), reason=f"no spec text at {ITCH_TXT}")
needs_mold = pytest.mark.skipif(not MOLD_TXT.is_file(), reason=f"no spec text at {MOLD_TXT}")

# Total message lengths (type byte included), ITCH 5.0 (also in every public ITCH 5.0 decoder).
KNOWN_LENGTHS = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35, "h": 21,
    "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44, "Q": 40, "B": 19,
    "I": 50, "N": 20, "O": 48,
}  # fmt: skip

# Field names the text spells differently from host.feed.spec (normalised form -> spec name).
ALIASES = {"locatecode": "stock_locate"}
KIND_OF_TEXT = {"integer": ("int", "ts6"), "alpha": ("alpha",), "price4": ("price4",),
                "price8": ("price8",)}  # fmt: skip


def norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


SECTION = re.compile(r"^Message Type 0 1 “(.)”")
FIELD = re.compile(
    r"^(?P<name>.*?)\s*\b(?P<off>\d+) (?P<len>\d+) (?P<kind>Integer|Alpha|Price ?\(\d\)|“)"
)


def parse_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        m = SECTION.match(line)
        if m:
            cur = m.group(1)
            assert cur not in sections, f"two sections for {cur!r}"
            sections[cur] = []
        elif line.startswith("5 Support"):
            cur = None
        if cur is not None:
            sections[cur].append(line.rstrip())
    return sections


def parse_fields(mtype: str, lines: list[str]) -> tuple[dict[str, tuple[int, int, str]], list]:
    """Spec name -> (offset, length, text kind) for every field line of a section."""
    names = {norm(f.name): f.name for f in MESSAGES[mtype].fields}
    names.update({a: n for a, n in ALIASES.items() if n in MESSAGES[mtype].names})
    found: dict[str, tuple[int, int, str]] = {}
    unmatched = []
    for i, line in enumerate(lines):
        m = FIELD.match(line.strip())
        if not m:
            continue
        kind = norm(m["kind"]) or "alpha"  # the message type line: Value is “X”
        name = norm(m["name"])
        if not name:  # name on the preceding line(s)
            prev: list[str] = []
            for back in range(1, 4):
                if i - back < 0 or not lines[i - back].strip():
                    break
                prev.insert(0, lines[i - back])
                if norm(" ".join(prev)) in names:
                    name = norm(" ".join(prev))
                    break
        if name in names:
            assert names[name] not in found, f"{mtype}: field {names[name]} twice"
            found[names[name]] = (int(m["off"]), int(m["len"]), kind)
        else:
            unmatched.append(line)
    return found, unmatched


@pytest.fixture(scope="module")
def sections() -> dict[str, list[str]]:
    return parse_sections(ITCH_TXT.read_text(encoding="utf-8"))


def test_known_lengths():
    assert {t: m.length for t, m in MESSAGES.items()} == KNOWN_LENGTHS
    assert spec.MESSAGE_TYPES == "".join(KNOWN_LENGTHS)
    assert spec.MAX_MESSAGE_LENGTH == 50 and spec.MIN_MESSAGE_LENGTH == 12


def test_table_is_contiguous():
    for t, m in MESSAGES.items():
        assert m.fields[0].name == "message_type" and m.fields[0].offset == 0
        for a, b in zip(m.fields, m.fields[1:], strict=False):
            assert a.end == b.offset, (t, a, b)
        assert m.fields[-1].end == m.length
        assert len(set(m.names)) == len(m.names)
        assert m.code == ord(t)
        assert [f.name for f in m.fields[:4]] == [
            "message_type", "stock_locate", "tracking_number", "timestamp"
        ]  # fmt: skip


def test_mold_header_known():
    assert [(f.name, f.offset, f.width) for f in spec.MOLD_HEADER] == [
        ("session", 0, 10), ("sequence_number", 10, 8), ("message_count", 18, 2)
    ]  # fmt: skip
    assert spec.MOLD_HEADER_LENGTH == 20
    assert spec.MOLD_END_OF_SESSION == 0xFFFF


@needs_text
def test_every_type_has_a_section(sections):
    assert set(sections) == set(MESSAGES)


@needs_text
@pytest.mark.parametrize("mtype", list(MESSAGES))
def test_fields_against_text(sections, mtype):
    found, unmatched = parse_fields(mtype, sections[mtype])
    m = MESSAGES[mtype]
    # every field of the table appears in the text, at the same offset and width
    assert set(found) == set(m.names), (sorted(set(m.names) - set(found)), unmatched)
    for name, (off, width, kind) in found.items():
        f = m.field(name)
        assert (f.offset, f.width) == (off, width), (mtype, name)
        assert f.kind in KIND_OF_TEXT[kind], (mtype, name, kind)
    # total length = end of the last field in the text
    assert max(o + w for o, w, _k in found.values()) == m.length
    assert not unmatched, unmatched


@needs_mold
def test_mold_header_against_text():
    text = MOLD_TXT.read_text(encoding="utf-8")
    for f in spec.MOLD_HEADER:
        label = {"session": "Session", "sequence_number": "Sequence Number",
                 "message_count": "Message Count"}[f.name]  # fmt: skip
        assert re.search(rf"{label}\s+{f.offset} {f.width} (ANUM|NUM)", text), f.name
    assert "Message Count of zero" in text and "0xFFFF" in text
