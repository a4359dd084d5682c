"""Every path the project writes, derived from one root so no module builds its own."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _root() -> Path:
    # CNNLAB_HOME lets tests and installed users move all outputs away from the checkout.
    return Path(os.environ.get("CNNLAB_HOME", PROJECT_ROOT)).resolve()


def data_dir() -> Path:
    return Path(os.environ.get("CNNLAB_DATA", _root() / "data")).resolve()


def cache_dir() -> Path:
    return data_dir() / "cache"


def runs_dir() -> Path:
    return _root() / "runs"


def report_dir() -> Path:
    return _root() / "report"


def slides_dir() -> Path:
    return _root() / "slides"
