"""Command-line value types: each rejects a bad value with a sentence that says what to give instead.

argparse turns an `ArgumentTypeError` into a usage message (never a traceback); `val_size` raises
`DataError`, which `cnnlab.cli.main` prints the same way.
"""

from __future__ import annotations

import argparse

from .data import DataError


def _checked(kind: type, ok, rule: str):
    """A value type that reads `kind` and refuses, with `rule`, what `ok` rejects and what is not a number
    at all ('many' gets the rule, not argparse's "invalid value")."""
    def check(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text}")
        return value
    return check


positive_int = _checked(int, lambda v: v >= 1, "must be a whole number of at least 1")
positive_float = _checked(float, lambda v: v > 0, "must be more than 0")
rate = _checked(float, lambda v: 0 <= v < 1, "must be a rate from 0 up to (not including) 1")
fraction = _checked(float, lambda v: 0 < v <= 1, "must be a share of the training images, above 0 and at most 1")


def val_size(value: float | None) -> int | float | None:
    """--val-size as load_dataset takes it: a count from 1 (and 0 for none), a share below 1."""
    if value is not None and not value >= 0:
        raise DataError(f"--val-size must be 0 or more, got {value:g}: give a number of images (e.g. 500), "
                        "a share of the training images below 1 (e.g. 0.1), or 0 for no validation split")
    if value is not None and value >= 1 and value != int(value):
        raise DataError(f"--val-size {value:g} is neither a whole number of images nor a share below 1: "
                        f"give e.g. {int(value)} or 0.1")
    return None if value is None else (int(value) if value >= 1 or value == 0 else value)
