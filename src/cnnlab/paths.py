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


def tune_dir() -> Path:
    """`cnnlab tune`'s default --out: <study>.db (Optuna's SQLite storage), <study>-best.json, <study>/trial-N."""
    return runs_dir() / "tune"


def report_dir(profile: str = "full") -> Path:
    """Only a `full` run writes the committed report/; other profiles write build/<profile>/report."""
    return _root() / "report" if profile == "full" else build_dir() / profile / "report"


def slides_dir(profile: str = "full") -> Path:
    return _root() / "slides" if profile == "full" else build_dir() / profile / "slides"


def build_dir() -> Path:
    return _root() / "build"
