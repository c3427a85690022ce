"""`python -m firmware_bridge.simboard --pty`: the simulated board without the kiosk CLI."""

import sys

from firmware_bridge.simboard.cli import main_simulate

raise SystemExit(main_simulate(sys.argv[1:]))
