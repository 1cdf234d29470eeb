"""Latency and throughput of the gateware ingress chain (hw.ingress.Ingress) in simulation.

Runs the chain bench ``sim/ingress/tb_ingress.py::realistic_full_rate`` (a generated trading
day, random MoldUDP64 packing, back-to-back frames, no backpressure; every record checked
against the host model), which writes its measurements to a JSON file under the build
directory, then prints the per-type latency table: cycles from the MAC beat holding a message's
last byte to its decoded record being valid.

Usage: ``python bench/bench_ingress.py [--messages N]`` (default 20000; SIM=icarus works too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--data-width", type=int, default=64)
    args = ap.parse_args(argv)

    from hw.ingress import Ingress
    from sim.harness import run_component as run

    test_dir = ROOT / "sim" / "ingress"
    out = test_dir / "sim_build" / f"latency-{args.data_width}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    run(
        Ingress(data_width=args.data_width),
        toplevel="ingress",
        test_module="tb_ingress",
        test_dir=test_dir,
        params={"data_width": args.data_width},
        extra_env={"N_MESSAGES": str(args.messages), "LATENCY_JSON": str(out)},
        testcase="realistic_full_rate",
    )
    if not out.exists():
        print("bench did not write its measurements", file=sys.stderr)
        return 1
    res = json.loads(out.read_text())
    sim = os.environ.get("SIM", "verilator")
    print(
        f"ingress chain, {res['data_width']}-bit MAC, {sim}: {res['messages']} messages in "
        f"{res['frames']} frames, {res['beats']} beats, {res['cycles']} cycles "
        f"({res['beats'] / res['cycles']:.3f} beats/cycle offered back to back), "
        f"input stall cycles: {res['input_stall_cycles']}"
    )
    print()
    print("| type | messages | latency min | latency max | latency mean |")
    print("|------|---------:|------------:|------------:|-------------:|")
    for t, r in res["latency"].items():
        print(f"| {t} | {r['n']} | {r['min']} | {r['max']} | {r['mean']:.2f} |")
    print()
    print(f"(measurements: {out.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
