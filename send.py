#!/usr/bin/env python3
"""Thin entry point: ``python send.py <command>`` is ``digest <command>``."""

import sys

from digest.cli import main

if __name__ == "__main__":
    sys.exit(main())
