"""Argument types shared by the subcommands (argparse ``type=`` callables: a bad value becomes one line naming the flag)."""

from __future__ import annotations

import argparse


def comma_list(value: str) -> list[str]:
    """``"el, hi"`` -> ``["el", "hi"]``; an empty list or an empty item (``""``, ``","``, ``"el,,hi"``) is refused."""
    parts = [part.strip() for part in value.split(",")]
    if not value.strip() or not all(parts):
        raise argparse.ArgumentTypeError(f"{value!r} has an empty item: give one or more comma-separated values")
    return parts
