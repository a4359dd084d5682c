"""The whole export: execute the numbered notebooks, then write the report, the reveal.js deck and the .pptx."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from .deck import deck_notebook
from .html import export_report
from .meta import format_seconds
from .notebooks import commit_of, discover_notebooks, execute_notebooks, wall_time
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


def _relative_link(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


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
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Run every notebooks_dir/NN_*.ipynb under `profile` and export them.

    Executed copies go to executed_dir (default report_dir/notebooks) so the committed notebooks
    stay output-free. `meta` supplies data/device (and optionally title); profile, date and the
    total wall time are filled in here. Returns the written paths and the timings in seconds.
    With `runs_dir`, runs the notebooks read back instead of training are named in the meta, so a
    wall time that excludes their training is never mistaken for the cost of the whole study, and
    the talk's summary (runs_dir/talk/summary.json) gives the title slide its question and answer.
    `only` (numbers such as '08') re-executes just those notebooks and exports the others' executed
    copies as they are: a changed slide is rebuilt in seconds, the recorded wall times stay true.
    """
    notebooks = discover_notebooks(notebooks_dir)
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_*.ipynb) in {notebooks_dir}")
    report_dir, slides_dir = Path(report_dir), Path(slides_dir)
    executed_dir = Path(executed_dir) if executed_dir else report_dir / "notebooks"

    t0 = time.perf_counter()
    chosen = [p for p in notebooks if not only or any(p.name.startswith(prefix) for prefix in only)]
    kept = [executed_dir / p.name for p in notebooks if p not in chosen]
    missing = [p.name for p in kept if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no executed copy of {', '.join(missing)} in {executed_dir}: run the whole report first")
    fresh = execute_notebooks(chosen, executed_dir, profile, env_extra=env_extra, timeout=timeout)
    executed = sorted([*fresh, *kept], key=lambda p: p.name)
    executed_nbs = {p.name: nbformat.read(p, as_version=4) for p in executed}
    per_notebook = {name: wall_time(nb) for name, nb in executed_nbs.items()}
    timings: dict[str, Any] = {"notebooks": per_notebook, "execute_s": time.perf_counter() - t0}

    full_meta = {"profile": profile, "date": datetime.now().strftime("%Y-%m-%d %H:%M"), **(meta or {})}
    full_meta["profile"] = profile
    commits = dict.fromkeys(c for c in map(commit_of, executed_nbs.values()) if c)
    full_meta["commit"] = ", ".join(commits)
    full_meta["wall_time_s"] = round(sum(per_notebook.values()), 1)
    if runs_dir is not None:
        if not only:
            full_meta["read_back"] = read_back_note(Path(runs_dir), started=time.time() - timings["execute_s"])
        summary = Path(runs_dir) / "talk" / "summary.json"
        if summary.exists():
            talk = json.loads(summary.read_text())
            full_meta.setdefault("title", talk.get("question"))
            full_meta.setdefault("subtitle", talk.get("answer"))
            full_meta["summary"] = {**talk, "key_figure": str(summary.parent / talk.get("key_figure", ""))}

    deck = deck_notebook(executed, full_meta)  # one deck for the reveal.js slides and the .pptx
    steps = {
        "report": lambda: export_report(executed, report_dir, full_meta, links={
            "slides (reveal.js, press S for notes)": _relative_link(slides_dir / f"{name}.html", report_dir),
            "PowerPoint (.pptx)": _relative_link(slides_dir / f"{name}.pptx", report_dir)}),
        "slides": lambda: export_slides(executed, slides_dir, full_meta, name=name, deck=deck),
        "pptx": lambda: export_pptx(executed, slides_dir / f"{name}.pptx", full_meta, deck=deck),
    }
    result: dict[str, Any] = {"executed": executed, "meta": full_meta, "timings": timings}
    for key, step in steps.items():
        t = time.perf_counter()
        result[key] = step()
        timings[f"{key}_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    return result
