"""`python -m kiosk_cloud`: the same as the `kiosk-cloud` command."""

import sys

from kiosk_cloud.cli import main

sys.exit(main())
