"""The register table: unique aligned offsets, groups, generated doc up to date, pure Python."""

import subprocess
import sys

import pytest

from hw import regs


def test_offsets_unique_aligned_and_in_groups():
    t = regs.build_table()
    offs = [r.offset for r in t]
    assert len(offs) == len(set(offs))
    assert all(o % 4 == 0 for o in offs)
    for r in t:
        assert t.at(r.offset) is r
        assert t.at(r.offset | 3) is r
    assert t["ID_MAGIC"].offset == 0 and t["ID_MAGIC"].const == 0x49544348


def test_pairs_are_consecutive():
    t = regs.build_table()
    for r in t:
        if r.half == "lo":
            hi = t.at(r.offset + 4)
            assert hi.half == "hi" and hi.fields[0].name == r.fields[0].name
            assert r.name[:-3] == hi.name[:-3]


def test_every_counter_and_type_has_a_register():
    t = regs.build_table()
    ports = t.ports()
    for group in (regs.INGRESS_COUNTERS, regs.BOOK_COUNTERS, regs.TOP_COUNTERS):
        for name, _ in group:
            assert ports[f"cnt_{name}"] == (regs.Access.RO, 64, "in")
    type_counters = [n for n, _ in regs.INGRESS_COUNTERS if n.startswith("msg_")]
    assert len(type_counters) == 23 and len(set(n.lower() for n in type_counters)) == 23


def test_validation_rejects_bad_tables():
    t = regs.build_table()
    r0 = t["CTRL"]
    with pytest.raises(ValueError, match="used twice"):
        regs.RegisterTable([*t.registers, regs.Register("X", r0.offset, regs.Access.RW, (),
                                                        "", "control")], t.params)
    with pytest.raises(ValueError, match="aligned"):
        regs.RegisterTable([regs.Register("X", 0x102, regs.Access.RW, (), "", "control")],
                           t.params)
    with pytest.raises(TypeError):
        regs.BuildParams(slots="64")
    with pytest.raises(ValueError):
        regs.BuildParams(slots=0)


def test_check_counters():
    regs.check_counters("book", [n for n, _ in regs.BOOK_COUNTERS])
    with pytest.raises(ValueError, match="missing in gateware"):
        regs.check_counters("book", ["records"])


def test_overridden_counter_list():
    t = regs.build_table(book_counters=["records", "new_thing"])
    assert "CNT_NEW_THING_LO" in t and "CNT_IGNORED_LO" not in t


def test_doc_up_to_date():
    assert regs.DOC_PATH.read_text() == regs.markdown(), "run: python -m hw.regs --write"


def test_pure_python_import():
    code = "import sys, hw.regs; assert not any(m.startswith('amaranth') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_landed_block_counters_are_in_the_table():
    """Counters of blocks that have landed all have a register (full check_counters once
    hw/ingress.py and hw/book.py land and expose their `counters` members)."""
    decoder = pytest.importorskip("hw.decoder")
    names = {n for n, _ in regs.INGRESS_COUNTERS}
    missing = [n for n in decoder.DECODER_COUNTERS if n not in names]
    assert not missing, missing
