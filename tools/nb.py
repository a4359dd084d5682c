"""Tiny helpers to write the tutorial notebooks from Python (keeps them output-free and diffable).

Usage: `python tools/make_notebooks.py` rewrites notebooks/*.ipynb from the cell lists there.
"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _tagged(cell, slide: str | None, tags: tuple[str, ...]):
    if slide:
        cell.metadata["slideshow"] = {"slide_type": slide}
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def md(text: str, slide: str | None = None, tags: tuple[str, ...] = ()):
    """A markdown cell; `slide` ('slide', 'subslide', '-') puts it in the deck, None keeps it report-only."""
    return _tagged(new_markdown_cell(text.strip()), slide, tags)


def code(src: str, slide: str | None = None, tags: tuple[str, ...] = ()):
    """A code cell; give `slide='-'` to show its output (never its code) on the current slide."""
    return _tagged(new_code_cell(src.strip()), slide, tags)


def write(path, cells) -> None:
    """Write the notebook; cell ids are the position in it, so regenerating an unchanged notebook changes nothing."""
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)
