"""The Alveo U250 build tree for each MAC option (no Vivado: the tree is written and read back)
and the core's start-of-packet stamp input (``hw.top.Top(mac_stamp=True)``)."""

import pytest

from hw.platform.alveo import MACS, AlveoWrapper, StandInCore, build, ip_tcl


@pytest.mark.parametrize("mac", MACS)
def test_build_tree_per_mac(tmp_path, mac, capsys):
    assert build(tmp_path, core=StandInCore(), run=False, mac=mac) == 0
    v = (tmp_path / "itchfpga_u250.v").read_text()
    tcl = (tmp_path / "itchfpga_u250.tcl").read_text()
    if mac == "100g":
        assert "cmac_usplus_0 cmac" in v and "xxv_ethernet_0" not in v
        assert "create_ip -name cmac_usplus" in tcl and "INCLUDE_RS_FEC {1}" in tcl
    else:
        assert "xxv_ethernet_0 xxv" in v and "cmac_usplus_0" not in v
        assert "MMCME4_BASE" in v  # the core clock
        assert "rxfifo" in v
        assert "create_ip -name xxv_ethernet" in tcl
        assert f"CONFIG.LINE_RATE {{{mac[:-1]}}}" in tcl and "cmac_usplus" not in tcl
    assert "create_ip -name xdma" in tcl


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_mac_option_validated():
    with pytest.raises(ValueError, match="mac must be one of"):
        AlveoWrapper(StandInCore(), mac="40g")
    with pytest.raises(ValueError):
        ip_tcl("40g")


def test_top_stamps_from_mac_sop():
    """``mac_stamp=True``: the ingress reads the frame stamp from ``mac_sop_ns`` and the
    clock leaves on ``ns_now``; the default build has neither port."""
    from amaranth.sim import Simulator

    from hw.top import Top

    assert "mac_sop_ns" not in Top(slots=4, capacity=64, ways=2, levels=64, k=4).signature.members
    dut = Top(slots=4, capacity=64, ways=2, levels=64, k=4, mac_stamp=True)
    seen = []

    async def bench(ctx):
        for v in (0, 123_456_789, 2**63 + 5):
            ctx.set(dut.mac_sop_ns, v)
            await ctx.tick()
            seen.append((ctx.get(dut._ingress.rx_ns), v))
        a = ctx.get(dut.ns_now)
        await ctx.tick().repeat(10)
        seen.append((ctx.get(dut.ns_now) > a, True))  # the clock runs

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(got == want for got, want in seen), seen
    with pytest.raises(ValueError):
        Top(slots=4, capacity=64, ways=2, levels=64, k=4, mac_stamp=True, lines=2)
