"""Find the numbered notebooks and execute them with nbclient into an output folder.

The committed notebooks stay free of outputs; executed copies carry their wall time in
`metadata.cnnlab` so the exporters can show it without a side file, and their tqdm bars as text.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .widgets import progress_widgets_to_text

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
META_KEY = "cnnlab"


class NotebookExecutionError(RuntimeError):
    """A notebook failed; names the notebook and the cell so the fix starts at the right place."""

    def __init__(self, notebook: Path, cell_index: int | None, detail: str, executed_copy: Path | None = None):
        self.notebook = notebook
        self.cell_index = cell_index
        self.executed_copy = executed_copy
        where = f"cell {cell_index}" if cell_index is not None else "kernel start-up"
        msg = f"notebook {notebook.name} failed at {where}: {detail}"
        if executed_copy is not None:
            msg += f"\n(partially executed copy with the traceback: {executed_copy})"
        super().__init__(msg)


def discover_notebooks(notebooks_dir: Path) -> list[Path]:
    """The numbered notebooks (01_..., 02_...) in run order."""
    return sorted(Path(notebooks_dir).glob(NOTEBOOK_GLOB))


def kernel_env(profile: str, env_extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: ours plus the profile."""
    env = dict(os.environ)
    # A parent MPLBACKEND (e.g. Agg from a test runner) would stop ipykernel showing inline figures.
    env.pop("MPLBACKEND", None)
    env["CNNLAB_PROFILE"] = profile
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences the debugger's frozen-modules warning
    env.update(env_extra or {})
    return env


GENERATED = ("report/", "slides/")


def git_commit(folder: Path) -> str:
    """The checkout's short commit, with '+changes' when tracked sources differ from it; '' outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout.rstrip()

    try:
        changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
                   if not line[3:].startswith(GENERATED)]  # the exports a report run rewrites are not changes
        return git("rev-parse", "--short", "HEAD").strip() + ("+changes" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return ""


def commit_of(nb: nbformat.NotebookNode) -> str:
    """The commit the notebook was executed at, as recorded by execute_notebooks ('' if unknown)."""
    return str(nb.metadata.get(META_KEY, {}).get("commit", ""))


def wall_time(nb: nbformat.NotebookNode) -> float:
    """Seconds the notebook took to execute, as recorded by execute_notebooks (0 if unknown)."""
    return float(nb.metadata.get(META_KEY, {}).get("wall_time_s", 0.0))


def source_dir(nb: nbformat.NotebookNode, fallback: Path) -> Path:
    """The folder the notebook was executed in: relative image links resolve from there."""
    return Path(nb.metadata.get(META_KEY, {}).get("source_dir", fallback))


def _error_detail(cell: nbformat.NotebookNode | None, exc: BaseException) -> str:
    detail = f"{type(exc).__name__}"
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        detail = f"{ename}: {evalue}"
    elif str(exc):
        detail += f": {str(exc).strip().splitlines()[0]}"
    if cell is not None:
        src = "\n".join("    " + line for line in cell.source.splitlines()[:8])
        detail += f"\n  cell source:\n{src}"
    return detail


def execute_notebook(
    path: Path,
    out_dir: Path,
    profile: str,
    env_extra: Mapping[str, str] | None = None,
    timeout: int | None = None,
) -> Path:
    """Execute one notebook with its own folder as cwd; write the executed copy to out_dir."""
    path = Path(path).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / path.name
    nb = nbformat.read(path, as_version=4)
    started: list[int] = []
    client = NotebookClient(
        nb,
        timeout=timeout,  # per cell; None = no limit (full-profile training cells run for long)
        kernel_name="python3",  # jupyter_client runs 'python' as sys.executable, i.e. this venv
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=lambda cell, cell_index: started.append(cell_index),
    )
    t0 = time.perf_counter()
    try:
        client.execute(env=kernel_env(profile, env_extra))
    except Exception as exc:  # CellExecutionError, CellTimeoutError, DeadKernelError, start-up failures
        index = started[-1] if started else None
        cell = nb.cells[index] if index is not None else None
        progress_widgets_to_text(nb)
        nbformat.write(nb, out_path)
        raise NotebookExecutionError(path, index, _error_detail(cell, exc), out_path) from exc
    seconds = time.perf_counter() - t0
    nb.metadata[META_KEY] = {"wall_time_s": round(seconds, 2), "profile": profile, "source_dir": str(path.parent),
                             "commit": git_commit(path.parent)}
    progress_widgets_to_text(nb)  # the exports show finished bars, not empty widget boxes
    nbformat.write(nb, out_path)
    return out_path


def execute_notebooks(
    notebook_paths: Iterable[Path],
    out_dir: Path,
    profile: str,
    env_extra: Mapping[str, str] | None = None,
    timeout: int | None = None,
) -> list[Path]:
    """Execute the notebooks in order (later ones may read earlier results); stop at the first failure."""
    return [execute_notebook(p, out_dir, profile, env_extra, timeout) for p in notebook_paths]
