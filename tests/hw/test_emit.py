"""hw.emit: the fast memory-initialiser emitter writes Amaranth's own RTLIL; the Verilog loop
rewrite keeps the meaning (checked by simulating with Icarus)."""

import shutil
import subprocess

import pytest
from amaranth import Module, Signal
from amaranth.back import rtlil, verilog
from amaranth.lib import data
from amaranth.lib.memory import Memory

from hw.emit import add_zero_inits, compact_zero_inits, fast_memory_init, to_rtlil, to_verilog


def _design(init, depth=64, shape=None):
    m = Module()
    shape = shape or data.StructLayout({"a": 5, "b": 11})
    m.submodules.mem = mem = Memory(shape=shape, depth=depth, init=init)
    m.submodules.zero = zero = Memory(shape=7, depth=depth, init=[])
    rp, wp, zp = mem.read_port(), mem.write_port(), zero.read_port()
    addr, din = Signal(range(depth), name="addr"), Signal(16, name="din")
    dout, zout, en = Signal(16, name="dout"), Signal(7, name="zout"), Signal(name="en")
    m.d.comb += [rp.addr.eq(addr), wp.addr.eq(addr), wp.data.eq(din), wp.en.eq(en),
                 dout.eq(rp.data), zp.addr.eq(addr), zout.eq(zp.data)]  # fmt: skip
    return m, [addr, din, dout, zout, en]


@pytest.mark.parametrize(
    "init",
    [[], [{"a": 1, "b": 2}], [{"a": i % 32, "b": (i * 37) % 2048} for i in range(64)]],
)
def test_fast_rtlil_equals_amaranth(init):
    m, ports = _design(init)
    slow = rtlil.convert(m, ports=ports, emit_src=False)
    m, ports = _design(init)
    with fast_memory_init():
        fast = rtlil.convert(m, ports=ports, emit_src=False)
    assert fast == slow
    m, ports = _design(init)
    assert to_rtlil(m, ports=ports) == slow


def test_patch_is_undone():
    from amaranth.back.rtlil import ModuleEmitter

    before = ModuleEmitter.emit_memory
    with fast_memory_init():
        assert ModuleEmitter.emit_memory is not before
    assert ModuleEmitter.emit_memory is before


def test_compact_rewrites_only_zero_blocks():
    m, ports = _design([{"a": 3, "b": 9}])
    text = verilog.convert(m, ports=ports, emit_src=False)
    out = compact_zero_inits(text)
    assert out.count("for (_zero_init_") == 1  # the all-zero memory only
    assert "16'h0123" in out or "'h" in out  # the non-zero table is still spelled out
    assert out.count("initial begin") == text.count("initial begin")
    assert len(out) < len(text)


def test_compact_leaves_partial_or_unordered_blocks():
    text = "\n".join(
        ["module t;", "  reg [3:0] m [2:0];", "  initial begin", "    m[0] = 4'h0;",
         "    m[2] = 4'h0;", "    m[1] = 4'h0;", "  end", "endmodule"]  # fmt: skip
    )
    assert compact_zero_inits(text) == text


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
def test_compacted_verilog_simulates_the_same(tmp_path):
    """Read every word after reset with Icarus: zeros and the table, before and after."""
    depth = 64
    table = [{"a": i % 32, "b": (i * 37) % 2048} for i in range(depth // 2)]
    outs = []
    for conv in (lambda m, p: verilog.convert(m, ports=p, emit_src=False),
                 lambda m, p: to_verilog(m, ports=p)):  # fmt: skip
        m, ports = _design(table)
        (tmp_path / "dut.v").write_text(conv(m, ports))
        (tmp_path / "tb.v").write_text(
            "module tb; reg clk=0, rst=0, en=0; reg [5:0] addr=0; reg [15:0] din=0;\n"
            "wire [15:0] dout; wire [6:0] zout; integer i;\n"
            "top dut(.clk(clk), .rst(rst), .addr(addr), .din(din), .dout(dout), .zout(zout),"
            " .en(en));\n"
            "initial begin for (i = 0; i < 64; i = i + 1) begin addr = i; #1 clk = 1; #1 clk = 0;"
            " $display(\"%0d %h %h\", i, dout, zout); end $finish; end endmodule\n"
        )
        subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.out"),
                        str(tmp_path / "tb.v"), str(tmp_path / "dut.v")], check=True)  # fmt: skip
        run = subprocess.run(["vvp", str(tmp_path / "a.out")], capture_output=True, text=True,
                             check=True)  # fmt: skip
        outs.append(run.stdout)
    assert outs[0] == outs[1]
    assert "x" not in outs[1]
    assert outs[1].count("\n") >= depth


def test_zero_memories_get_a_loop_and_tables_keep_their_words():
    m, ports = _design([{"a": 3, "b": 9}])
    text = to_verilog(m, ports=ports)
    assert text.count("for (_zero_mem_") == 1
    assert text.count("initial begin") == 2  # the loop and the table's words


def test_add_zero_inits_refuses_a_lost_memory():
    with pytest.raises(RuntimeError, match="not found"):
        add_zero_inits("module t;\nendmodule", [("\\nowhere", 4, 8)])
