"""``python -m host bbo|replay --card sim [--verify]`` on the simulated card (the real hw/top.py).

The CSV of ``bbo --card sim`` must be the CSV of ``bbo --card model`` row for row, plus the card's
``valid`` and ``stale`` columns; ``--verify`` must pass on a correct card and fail (exit 1, first
difference shown) when the two disagree or when the card flags a row not valid.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hw.top", reason="hw/top.py has not landed")

import host.card.model as card_model  # noqa: E402
from host.cli import main  # noqa: E402
from host.feed import itch  # noqa: E402
from host.feed.files import frame, write_file  # noqa: E402
from host.feed.generator import generate, write_pcap_from_itch  # noqa: E402

U32_MAX = (1 << 32) - 1
SIZES = [4, 7]  # bid_sz, ask_sz columns of the BBO CSV


def read(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)


def model_part(csv: bytes) -> bytes:
    """The card's CSV without its three flag columns (header included)."""
    lines = csv.split(b"\n")
    assert lines[0].endswith(b",valid,stale,recovered")
    return b"\n".join(ln.rsplit(b",", 3)[0] if ln else ln for ln in lines)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cardcli")
    itch = generate(8000, 5, 11)
    write_file(d / "s.itch", itch)
    write_pcap_from_itch(itch, d / "s.pcap", seed=4)
    return d


@pytest.mark.parametrize("name", ["s.itch", "s.pcap"])
def test_bbo_sim_csv_is_the_model_csv(files, tmp_path, name, capsys):
    src = str(files / name)
    assert main(["bbo", src, "--out", str(tmp_path / "m.csv")]) == 0
    assert main(["bbo", src, "--card", "sim", "--verify", "--out", str(tmp_path / "s.csv")]) == 0
    model = read(tmp_path / "m.csv")
    sim = read(tmp_path / "s.csv")
    assert len(model) > 1000
    # the record's size fields are 32 bits: the card saturates what the model does not
    big = (model[:, SIZES] > U32_MAX).any(axis=1)
    assert big.any()  # this seed has an aggregate size above 2**32 - 1
    # valid, not stale, not recovered
    assert (sim[:, -3] == 1).all() and (sim[:, -2] == 0).all() and (sim[:, -1] == 0).all()
    sim = sim[:, :-3]
    assert np.array_equal(sim[~big], model[~big])
    model[:, SIZES] = np.minimum(model[:, SIZES], U32_MAX)
    assert np.array_equal(sim, model)
    out = capsys.readouterr().out
    assert "verify: OK" in out and f"saturated at 2**32-1 in {int(big.sum())} rows" in out


def test_bbo_sim_csv_is_the_model_csv_plus_flags_without_saturation(tmp_path):
    write_file(tmp_path / "t.itch", generate(6000, 4, 2))
    src = str(tmp_path / "t.itch")
    assert main(["bbo", src, "--out", str(tmp_path / "m.csv")]) == 0
    assert main(["bbo", src, "--card", "sim", "--out", str(tmp_path / "s.csv")]) == 0
    model = (tmp_path / "m.csv").read_bytes()
    assert model.count(b"\n") > 1000 and model_part((tmp_path / "s.csv").read_bytes()) == model


def test_bbo_sim_symbols_and_stdout(files, tmp_path, capsys):
    src = str(files / "s.itch")
    assert main(["bbo", src, "--symbols", "K,MPPS", "--out", str(tmp_path / "m.csv")]) == 0
    capsys.readouterr()
    assert main(["bbo", src, "--card", "sim", "--symbols", "K,MPPS", "--verify", "--out", "-"]) == 0
    cap = capsys.readouterr()
    assert model_part(cap.out.encode()) == (tmp_path / "m.csv").read_bytes()  # summary: stderr
    assert "verify: OK" in cap.err
    assert main(["bbo", src, "--card", "sim", "--symbols", "NOPE", "--out", "-"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "NOPE" in err and "\n" not in err


def test_verify_fails_and_shows_the_first_difference(files, tmp_path, monkeypatch, capsys):
    real = card_model.reference_trace

    def off_by_one(*a, **kw):
        ref = real(*a, **kw).copy()
        ref["bid_sz"][100] += 1
        return ref

    monkeypatch.setattr(card_model, "reference_trace", off_by_one)
    src = str(files / "s.itch")
    assert main(["bbo", src, "--card", "sim", "--verify", "--out", str(tmp_path / "s.csv")]) == 1
    out = capsys.readouterr().out
    assert "verify: FAILED" in out and "first difference at BBO row 100" in out
    assert main(["replay", src, "--card", "sim", "--verify", "--no-progress",
                 "--out", str(tmp_path / "r")]) == 1  # fmt: skip
    assert "first difference at BBO row 100" in capsys.readouterr().out


def test_replay_sim_verify_report_and_plots(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["replay", str(files / "s.pcap"), "--card", "sim", "--verify", "--no-progress",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "verify: OK" in text and "M msgs/s" in text and "'A'" in text
    assert "messages=8,000" in text
    assert sorted(p.name for p in out.glob("*.png"))[-1] == "latency.png"
    rows = np.loadtxt(out / "bbo.csv", delimiter=",", skiprows=1, dtype=np.int64)
    assert len(rows) > 1000
    # cycles only: the nominal 322 MHz is not timing-closed, so no ns figure comes from it
    assert "ns not shown" in text and " ns" not in text.split("ns not shown")[1]


def test_replay_ns_only_at_a_given_clock(files, tmp_path, capsys):
    src = str(files / "s.itch")
    assert main(["replay", src, "--card", "sim", "--no-progress", "--clock-mhz", "100",
                 "--out", str(tmp_path / "r")]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "ns not shown" not in text and "at 100.00 MHz (--clock-mhz)" in text
    head = next(ln for ln in text.splitlines() if "median" in ln and "type" in ln)
    assert head.split()[-1] == "ns"
    row = next(ln for ln in text.splitlines() if ln.strip().startswith("'A'"))
    med, ns = int(row.split()[3]), float(row.split()[-1])
    assert ns == pytest.approx(med * 10.0, abs=5.0)  # 10 ns per cycle (median may be x.5)
    for bad in ("0", "-5", "5000"):
        assert main(["replay", src, "--card", "sim", "--clock-mhz", bad]) == 1
        assert "--clock-mhz must be" in capsys.readouterr().err


def test_replay_gaps_are_recovered_and_verified(files, tmp_path, capsys):
    assert main(["replay", str(files / "s.itch"), "--card", "sim", "--verify", "--no-progress",
                 "--drop-packets", "5", "40", "--batch-frames", "8",
                 "--out", str(tmp_path / "g")]) == 0  # fmt: skip
    text = capsys.readouterr().out
    # two gaps in two batches: each of the 5 symbols re-seeded after each
    assert "book clears after gaps: 0; recoveries: 10 (10 after gaps, 0 not valid" in text
    assert "gaps=2" in text and "injected=" in text and "verify: OK" in text
    rows = np.loadtxt(tmp_path / "g" / "bbo.csv", delimiter=",", skiprows=1, dtype=np.int64)
    assert 0 < rows[:, -1].sum() < len(rows)  # the recovered column: set after the re-seed


def test_replay_gaps_cleared_with_no_recover(files, tmp_path, capsys):
    assert main(["replay", str(files / "s.itch"), "--card", "sim", "--verify", "--no-progress",
                 "--drop-packets", "5", "40", "--batch-frames", "8", "--no-recover",
                 "--out", str(tmp_path / "g")]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "book clears after gaps: 2; recoveries: 0" in text and "verify: OK" in text


def deep_book(levels: int, tail: int = 0) -> bytes:
    """One symbol whose bid side gets ``levels`` distinct prices, then loses them again; then
    ``tail`` rounds of an ask added and deleted (rows after the bid side drained)."""
    msgs = [itch.encode("S", timestamp=1, event_code="O"),
            itch.encode("R", stock_locate=1, timestamp=2, stock="DEEP", market_category="Q",
                        round_lot_size=100)]  # fmt: skip
    ts = 10
    for k in range(levels):
        msgs.append(itch.encode("A", stock_locate=1, timestamp=ts + k, order_reference_number=k + 1,
                                buy_sell_indicator="B", shares=100, stock="DEEP",
                                price=1_000_000 - 100 * k))  # fmt: skip
    msgs.append(itch.encode("A", stock_locate=1, timestamp=ts + levels, order_reference_number=9999,
                            buy_sell_indicator="S", shares=50, stock="DEEP", price=1_000_100))
    ts += levels + 1
    for k in range(levels - 1):  # drain from the top: the next level must come up exactly
        msgs.append(itch.encode("D", stock_locate=1, timestamp=ts + k,
                                order_reference_number=k + 1))  # fmt: skip
    ts += levels
    for k in range(tail):  # the last bid (far from where the window was) is the touch now
        ref = 20_000 + k  # an ask one tick better than the standing one: the ask side stays put
        msgs.append(itch.encode("A", stock_locate=1, timestamp=ts + 2 * k, stock="DEEP",
                                order_reference_number=ref, buy_sell_indicator="S",
                                shares=10 + k % 7, price=1_000_000))
        msgs.append(itch.encode("D", stock_locate=1, timestamp=ts + 2 * k + 1,
                                order_reference_number=ref))  # fmt: skip
    return frame(msgs)


def test_not_valid_rows_are_flagged_counted_and_fail_verify(tmp_path, capsys):
    """A book deeper than the card holds, without recovery: the rows it cannot represent say
    valid=0 in the CSV, the summary counts them, and --verify fails (the reference is exact on
    every row)."""
    from host.card.sim import card_params

    levels = card_params()["levels"] + 8
    write_file(tmp_path / "d.itch", deep_book(levels))
    src = str(tmp_path / "d.itch")
    assert main(["bbo", src, "--out", str(tmp_path / "m.csv")]) == 0
    status = main(["bbo", src, "--card", "sim", "--verify", "--no-recover",
                   "--out", str(tmp_path / "s.csv")])  # fmt: skip
    out = capsys.readouterr().out
    sim = read(tmp_path / "s.csv")
    bad = int((sim[:, -3] == 0).sum())  # valid is the first of the three flag columns
    assert bad > 0, "the card held a book deeper than its levels parameter: update this test"
    assert status == 1 and "verify: FAILED" in out and f"not valid: {bad};" in out
    assert f"{bad} rows flagged not valid" in out
    assert "recoveries: 0 (" in out
    assert main(["replay", src, "--card", "sim", "--no-progress", "--verify", "--no-recover",
                 "--out", str(tmp_path / "r")]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert f"not valid: {bad:,};" in out and "verify: FAILED" in out
    rows = read(tmp_path / "r" / "bbo.csv")
    assert int((rows[:, -3] == 0).sum()) == bad


def test_far_stub_left_alone_is_reseeded(tmp_path, capsys):
    """The bid side drains down to its last level, beyond the ladder window (far_visible): the
    host re-seeds the slot at the next batch boundary (the window now around the new touch),
    and every later row is valid and equals the reference."""
    from host.card.sim import card_params

    levels = card_params()["levels"] + 8
    write_file(tmp_path / "d.itch", deep_book(levels, tail=2000))
    src = str(tmp_path / "d.itch")
    assert main(["bbo", src, "--card", "sim", "--verify", "--no-recover",
                 "--out", str(tmp_path / "n.csv")]) == 1  # fmt: skip
    capsys.readouterr()
    n_bad = int((read(tmp_path / "n.csv")[:, -3] == 0).sum())
    assert n_bad > 4000  # every tail row: the far stub stays visible without recovery
    assert main(["bbo", src, "--card", "sim", "--verify", "--out", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "recoveries: 1 (0 after gaps, 1 not valid" in out and "verify: OK" in out
    sim = read(tmp_path / "s.csv")
    bad = int((sim[:, -3] == 0).sum())
    assert 0 < bad < n_bad // 3, (bad, n_bad)  # only the rows up to the batch boundary
    after = np.flatnonzero(sim[:, -1] == 1)  # recovered
    assert len(after) > 2000 and (sim[after, -3] == 1).all()
    assert main(["bbo", src, "--out", str(tmp_path / "m.csv")]) == 0
    ref = read(tmp_path / "m.csv")
    assert np.array_equal(sim[after, :-3], ref[-len(after):])
