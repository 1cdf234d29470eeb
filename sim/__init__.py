"""cocotb benches, one folder per block; :mod:`sim.harness` builds and runs them."""
