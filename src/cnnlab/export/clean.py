"""What readers of the report and the deck should not see: stderr (progress bars, warnings) and this machine's paths.

The executed notebooks keep everything; only the exported copies are cleaned.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import nbformat

from .. import paths


def _machine_paths() -> list[tuple[str, str]]:
    """(absolute prefix, what readers see instead), longest first: the project, its data home, its parent."""
    root = paths.PROJECT_ROOT
    pairs = {f"{paths.runs_dir().parent}/": "", f"{root}/": "", f"{root.parent}/": "../", str(root): "."}
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def _relative(text: str, pairs: Iterable[tuple[str, str]]) -> str:
    for prefix, instead in pairs:
        text = text.replace(prefix, instead)
    return text


def for_readers(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without stderr outputs and with this machine's paths made relative to the project."""
    nb = copy.deepcopy(nb)
    pairs = _machine_paths()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out.get("name") == "stderr":
                    continue
                out["text"] = _relative(out.get("text", ""), pairs)
            for mime in ("text/plain", "text/markdown", "text/html"):
                if mime in out.get("data", {}):
                    out["data"][mime] = _relative(out["data"][mime], pairs)
            kept.append(out)
        cell.outputs = kept
    return nb


def read_for_readers(path: Path) -> nbformat.NotebookNode:
    return for_readers(nbformat.read(path, as_version=4))
