"""`kiosk config check [FILE]`: every error of the file, one line each; exit 78 if any."""

from __future__ import annotations

import argparse
import sys

from kiosk.domain.errors import EX_CONFIG, EXIT_OK


def config_check(args: argparse.Namespace, configured: str) -> int:
    """FILE, else the configured file (--config, $KIOSK_CONFIG, the default)."""
    from kiosk.config.check import diagnose

    file = args.file or configured
    report = diagnose(file, strict=args.strict)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(error, file=sys.stderr)
    if report.errors:
        return EX_CONFIG
    print(f"{file}: ok")
    return EXIT_OK
