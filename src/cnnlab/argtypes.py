"""Command-line value types: each rejects a bad value with a sentence that says what to give instead.

argparse turns an `ArgumentTypeError` into a usage message (never a traceback); `val_size` raises
`DataError`, which `cnnlab.cli.main` prints the same way.
"""

from __future__ import annotations

import argparse

from .data import DataError


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a rate from 0 up to (not including) 1, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share of the training images, above 0 and at most 1, got {text}")
    return value


def val_size(value: float | None) -> int | float | None:
    """--val-size as load_dataset takes it: a count from 1 (and 0 for none), a share below 1."""
    if value is not None and not value >= 0:
        raise DataError(f"--val-size must be 0 or more, got {value:g}: give a number of images (e.g. 500), "
                        "a share of the training images below 1 (e.g. 0.1), or 0 for no validation split")
    if value is not None and value >= 1 and value != int(value):
        raise DataError(f"--val-size {value:g} is neither a whole number of images nor a share below 1: "
                        f"give e.g. {int(value)} or 0.1")
    return None if value is None else (int(value) if value >= 1 or value == 0 else value)
