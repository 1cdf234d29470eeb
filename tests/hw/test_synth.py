"""Quick synthesis check (CI): every block synthesizes for UltraScale+ with its small parameters,
stays between its collapse floor and its budget ceiling (hw/synth.py BLOCKS[...].budget), and
the logic-depth counter works on a known netlist."""

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


@pytest.mark.parametrize("name", list(synth.BLOCKS))
def test_block_within_budget(name, tmp_path):
    block = synth.BLOCKS[name]
    if not block.available():
        pytest.skip(f"{block.requires} has not landed")
    e = synth.run_block(block, "small", tmp_path, ecp5=False)
    assert e["lut"] > 0 and e["ff"] > 0
    assert e["budget"] == [], (e["budget"], e["path_reg"])
