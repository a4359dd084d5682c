"""The whole export: execute the numbered notebooks, then write the report, the reveal.js deck and the .pptx."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from .html import export_report
from .meta import format_seconds
from .notebooks import discover_notebooks, execute_notebooks, wall_time
from .powerpoint import export_pptx
from .slides import export_slides


def read_back_note(runs_dir: Path, started: float) -> str:
    """'' when every run was trained by this export, else which were read back and their training time."""
    reused = {}
    for path in sorted(runs_dir.glob("*/metrics.json")):
        if path.stat().st_mtime < started:
            m = json.loads(path.read_text())
            reused[path.parent.name] = m.get("pipeline_seconds") or m.get("train_seconds") or 0.0
    if not reused:
        return ""
    return (f"{', '.join(reused)} trained earlier by the same code and read back; "
            f"their {format_seconds(sum(reused.values()))} of training are not in the wall time")


def build(
    profile: str,
    notebooks_dir: Path,
    report_dir: Path,
    slides_dir: Path,
    meta: Mapping[str, Any] | None = None,
    *,
    executed_dir: Path | None = None,
    env_extra: Mapping[str, str] | None = None,
    timeout: int | None = None,
    name: str = "cnnlab",
    runs_dir: Path | None = None,
) -> dict[str, Any]:
    """Run every notebooks_dir/NN_*.ipynb under `profile` and export them.

    Executed copies go to executed_dir (default report_dir/notebooks) so the committed notebooks
    stay output-free. `meta` supplies data/device (and optionally title); profile, date and the
    total wall time are filled in here. Returns the written paths and the timings in seconds.
    With `runs_dir`, runs the notebooks read back instead of training are named in the meta, so a
    wall time that excludes their training is never mistaken for the cost of the whole study.
    """
    notebooks = discover_notebooks(notebooks_dir)
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_*.ipynb) in {notebooks_dir}")
    report_dir, slides_dir = Path(report_dir), Path(slides_dir)
    executed_dir = Path(executed_dir) if executed_dir else report_dir / "notebooks"

    t0 = time.perf_counter()
    executed = execute_notebooks(notebooks, executed_dir, profile, env_extra=env_extra, timeout=timeout)
    per_notebook = {p.name: wall_time(nbformat.read(p, as_version=4)) for p in executed}
    timings: dict[str, Any] = {"notebooks": per_notebook, "execute_s": time.perf_counter() - t0}

    full_meta = {"profile": profile, "date": datetime.now().strftime("%Y-%m-%d %H:%M"), **(meta or {})}
    full_meta["profile"] = profile
    full_meta["wall_time_s"] = round(sum(per_notebook.values()), 1)
    if runs_dir is not None:
        full_meta["read_back"] = read_back_note(Path(runs_dir), started=time.time() - timings["execute_s"])

    steps = {
        "report": lambda: export_report(executed, report_dir, full_meta),
        "slides": lambda: export_slides(executed, slides_dir, full_meta, name=name),
        "pptx": lambda: export_pptx(executed, slides_dir / f"{name}.pptx", full_meta),
    }
    result: dict[str, Any] = {"executed": executed, "meta": full_meta, "timings": timings}
    for key, step in steps.items():
        t = time.perf_counter()
        result[key] = step()
        timings[f"{key}_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    return result
