#!/bin/sh
# The simulated fault suite for make check: its TAP goes to the TAP driver.
# Seeds: SIM_SEEDS / SIM_SEED (see tests/sim/test_sim.c).
exec "${top_builddir:-.}/tests/sim/test_sim" "$@"
