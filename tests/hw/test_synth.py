"""Quick synthesis check (CI): every block synthesizes for UltraScale+ with its small parameters,
stays between its collapse floor and its budget ceiling (hw/synth.py BLOCKS[...].budget), and
the logic-depth counter works on a known netlist."""

import json

import pytest

from hw import synth


def test_logic_depth_counts_luts_muxf_and_carry():
    # in -> FD -> LUT6 -> MUXF7 -> CARRY8 -> FD -> out ; in -> LUT2 -> out
    def c(t, **conn):
        dirs = {k: ("output" if k in ("O", "Q", "CO") else "input") for k in conn}
        return {"type": t, "port_directions": dirs, "connections": conn}

    net = {"modules": {"top": {
        "ports": {"i": {"direction": "input", "bits": [2]},
                  "o": {"direction": "output", "bits": [9]},
                  "o2": {"direction": "output", "bits": [10]}},
        "cells": {
            "ff0": c("FDRE", D=[2], C=[3], Q=[4]),
            "l1": c("LUT6", I0=[4], I1=[2], O=[5]),
            "m1": c("MUXF7", I0=[5], I1=[5], S=[4], O=[6]),
            "k1": c("CARRY8", CI=[6], CO=[7]),
            "ff1": c("FDRE", D=[7], C=[3], Q=[9]),
            "l2": c("LUT2", I0=[2], I1=[2], O=[10]),
        },
    }}}
    d = synth.logic_depth(net, "top")
    assert d["depth_reg"] == 3 and d["path_reg"] == ["LUT6", "MUXF7", "CARRY8"]
    assert d["depth_io"] == 3  # input port i -> LUT6 -> MUXF7 -> CARRY8 -> ff1
    net["modules"]["top"]["cells"]["k1"]["type"] = "CARRY4"  # half a level: 2.5 -> 3
    assert synth.logic_depth(net, "top")["depth_reg"] == 3
    net["modules"]["top"]["cells"]["k1"]["type"] = "LUT1"
    net["modules"]["top"]["cells"]["k2"] = {"type": "CARRY4", "port_directions": {
        "CI": "input", "CO": "output"}, "connections": {"CI": [7], "CO": [11]}}
    net["modules"]["top"]["cells"]["ff1"]["connections"]["D"] = [11]
    assert synth.logic_depth(net, "top")["depth_reg"] == 4  # 3 + 0.5 -> 4


def test_deep_paths_names_start_and_end_registers():
    # a -> LUT6 -> LUT6 -> LUT6 -> b (3 levels); a -> LUT2 -> c (1 level)
    def c(t, **conn):
        dirs = {k: ("output" if k in ("O", "Q") else "input") for k in conn}
        return {"type": t, "port_directions": dirs, "connections": conn}

    net = {"modules": {"top": {
        "ports": {},
        "netnames": {"a": {"bits": [4]}, "b": {"bits": [9]}, "c": {"bits": [11]},
                     "$auto$x": {"bits": [5]}},
        "cells": {
            "ffa": c("FDRE", D=[2], C=[3], Q=[4]),
            "l1": c("LUT6", I0=[4], O=[5]),
            "l2": c("LUT6", I0=[5], O=[6]),
            "l3": c("LUT6", I0=[6], I1=[4], O=[7]),
            "ffb": c("FDRE", D=[7], C=[3], Q=[9]),
            "l4": c("LUT2", I0=[4], O=[10]),
            "ffc": c("FDRE", D=[10], C=[3], Q=[11]),
        },
    }}}
    assert synth.deep_paths(net, "top", 0) == [(3, "a", "b"), (1, "a", "c")]
    assert synth.deep_paths(net, "top", 2) == [(3, "a", "b")]
    assert synth.deep_paths(net, "top", 3) == []

    # the trace follows the deepest path cell by cell and names the side input of l3
    (t,) = synth.trace_paths(net, "top", 2)
    assert (t["levels"], t["start"], t["end"]) == (3, "a[0]", "b[0]")
    assert [(x["type"], x["depth"]) for x in t["cells"]] == [("LUT6", 1), ("LUT6", 2),
                                                             ("LUT6", 3)]
    assert t["cells"][0]["out"] == "$auto$x[0]" and t["cells"][2]["regs_in"] == ["a[0]"]
    assert len(synth.trace_paths(net, "top", 0)) == 2 and synth.trace_paths(net, "top", 3) == []


def test_trace_cli(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(SystemExit) as ex:
        synth.main(["--trace", str(tmp_path / "bad.json")])
    assert ex.value.code == 2 and "not a readable Yosys JSON netlist" in capsys.readouterr().err
    net = {"modules": {"top": {"attributes": {"top": "1"}, "ports": {}, "netnames": {
        "a": {"bits": [4]}, "b": {"bits": [6]}}, "cells": {
        "ffa": {"type": "FDRE", "port_directions": {"D": "input", "Q": "output"},
                "connections": {"D": [2], "Q": [4]}},
        "l1": {"type": "LUT2", "port_directions": {"I0": "input", "O": "output"},
               "connections": {"I0": [4], "O": [5]}},
        "ffb": {"type": "FDRE", "port_directions": {"D": "input", "Q": "output"},
                "connections": {"D": [5], "Q": [6]}}}}}}
    (tmp_path / "net.json").write_text(json.dumps(net))
    assert synth.main(["--trace", str(tmp_path / "net.json"), "--paths", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 levels  a[0] -> b[0]" in out and "LUT2" in out


@pytest.mark.parametrize("name", list(synth.BLOCKS))
def test_block_within_budget(name, tmp_path):
    block = synth.BLOCKS[name]
    if not block.available():
        pytest.skip(f"{block.requires} has not landed")
    e = synth.run_block(block, "small", tmp_path, ecp5=False)
    assert e["lut"] > 0 and e["ff"] > 0
    assert e["budget"] == [], (e["budget"], e["path_reg"])


def _row(block, lut, run=None):
    e = {"block": block, "desc": block, "params": "u250", "param_values": {}, "lut": lut,
         "ff": 1, "carry8": 0, "muxf": 0, "lutram": 0, "bram36": 0.0, "uram": 0, "dsp": 0,
         "depth_reg": 3, "depth_io": 3, "path_reg": ["LUT6"], "budget": []}
    if run:
        e["run"] = run
    return e


def test_publish_merges_rows_and_keeps_notes(tmp_path):
    """A partial run replaces its blocks' rows only; each row names its run; notes survive."""
    doc, data = tmp_path / "synthesis.md", tmp_path / "synthesis.json"
    first = {"date": "2026-01-01 00:00 UTC", "command": "python -m hw.synth", "commit": "aaa",
             "yosys": "y", "blocks": [_row("axil", 100), _row("decoder", 200)]}
    synth.publish(first, doc, data)
    doc.write_text(doc.read_text() + "## Notes\n\nhand-written\n")
    second = {"date": "2026-02-02 00:00 UTC", "command": "python -m hw.synth --blocks decoder",
              "commit": "bbb", "yosys": "y", "blocks": [_row("decoder", 250)]}
    merged = synth.publish(second, doc, data)
    rows = {e["block"]: e for e in merged["blocks"]}
    assert rows["axil"]["lut"] == 100 and rows["axil"]["run"]["commit"] == "aaa"
    assert rows["decoder"]["lut"] == 250 and rows["decoder"]["run"]["commit"] == "bbb"
    text = doc.read_text()
    assert "| axil | 100 |" in text and "| decoder | 250 |" in text
    assert "| decoder | 200" not in text
    assert "1. 2026-01-01 00:00 UTC, commit aaa" in text
    assert "2. 2026-02-02 00:00 UTC, commit bbb" in text
    assert text.endswith("## Notes\n\nhand-written\n") and text.count(synth.DOC_END) == 1
    # a failed run (Yosys out of memory, say) leaves the published row of its block alone
    third = {"date": "2026-03-03 00:00 UTC", "command": "python -m hw.synth --blocks axil",
             "commit": "ccc", "yosys": "y",
             "blocks": [{"block": "axil", "params": "u250", "error": "yosys failed (1)"}]}
    merged = synth.publish(third, doc, data)
    rows = {e["block"]: e for e in merged["blocks"]}
    assert rows["axil"]["lut"] == 100 and rows["axil"]["run"]["commit"] == "aaa"
    assert "| axil | 100 |" in doc.read_text() and "ccc" not in doc.read_text()


def test_published_report_data_matches_the_document():
    """docs/synthesis.md is the rendering of docs/synthesis.json (no hand edit above the end
    marker)."""
    import json

    merged = json.loads(synth.DOC_JSON.read_text())
    text = synth.DOC_PATH.read_text()
    assert text.split(synth.DOC_END, 1)[0] == synth.markdown(merged).split(synth.DOC_END, 1)[0]


def test_markdown_names_a_rows_own_yosys():
    """A block run with native Yosys inside a yowasp report is listed as its own run."""
    a, b = _row("axil", 100), _row("decoder", 200)
    b["yosys"] = "Yosys (pyosys 0.70, native)"
    rep = {"date": "d", "command": "python -m hw.synth", "commit": "c", "yosys": "Yosys 0.68",
           "blocks": [a, b]}
    text = synth.markdown(rep)
    assert "1. d, commit c: `python -m hw.synth` (Yosys 0.68)" in text
    assert "2. d, commit c: `python -m hw.synth` (Yosys (pyosys 0.70, native))" in text
    assert "| decoder | 200 |" in text and text.split("| decoder | 200 |")[1].split("\n")[0] \
        .rstrip().endswith("| 2 |")


def test_native_yosys_front_end(tmp_path):
    """hw.yosys_native: bad arguments exit 2 with a message; a real synth_xilinx run through
    pyosys maps a small block (the path the U250 book takes)."""
    pytest.importorskip("pyosys")
    import subprocess
    import sys

    from hw import yosys_native

    assert yosys_native.main(["-s"]) == 2
    assert yosys_native.main(["-x", "-s", "a.ys"]) == 2
    assert yosys_native.main(["-q"]) == 2
    v = subprocess.run([*synth.NATIVE_YOSYS, "-V"], capture_output=True, text=True, check=True)
    assert "pyosys" in v.stdout
    bad = tmp_path / "bad.ys"
    bad.write_text("read_rtlil no_such_file.il\n")
    p = subprocess.run([sys.executable, "-m", "hw.yosys_native", "-q", "-l",
                        str(tmp_path / "bad.log"), "-s", str(bad)], capture_output=True,
                       text=True)
    assert p.returncode == 1
    # a small real block (the ns clock) through the whole flow with native Yosys
    from hw.nsclock import NsClock

    il = tmp_path / "nsclock_top.il"
    synth._elaborate(NsClock(), "nsclock_top", il)
    res, depth, _secs, _opts = synth.run_xilinx(il, "nsclock_top", tmp_path, uram=False,
                                                abc9=False, native=True)
    assert res["lut"] > 0 and res["ff"] >= 64 and 0 < depth["depth_reg"] <= 8
    assert not (tmp_path / "net.json").exists()  # deleted by default
    # --keep-netlist: the netlist stays, and a later analysis finds the same depth in it
    keep = tmp_path / "keep"
    keep.mkdir()
    synth._elaborate(NsClock(), "nsclock_top", keep / "nsclock_top.il")
    _res, depth2, _s, _o = synth.run_xilinx(keep / "nsclock_top.il", "nsclock_top", keep,
                                            uram=False, abc9=False, native=True,
                                            keep_netlist=True)
    net = json.loads((keep / "net.json").read_text())
    assert synth.logic_depth(net, "nsclock_top")["depth_reg"] == depth2["depth_reg"]
    assert "pyosys" in (tmp_path / "yosys_xilinx.log").read_text() or \
        (tmp_path / "stat.json").exists()
