"""Merge the slide-tagged cells of all executed notebooks into one deck notebook.

Both the reveal.js deck and the PowerPoint deck are built from this one notebook, so they show
the same slides in the same order. The rules use nbconvert's own `slideshow.slide_type` metadata:

* only cells that carry a slide type are kept; 'skip' and untagged cells are left out
  (notebooks are reports first, and their setup cells have no place on a slide);
* 'slide' / 'subslide' start a slide, '-' and 'fragment' continue it, 'notes' are speaker notes;
* each notebook starts on a fresh slide, even if its first tagged cell says '-';
* cells tagged 'remove-cell' are dropped and 'remove-output' cells lose their outputs, as in the report;
* a notebook whose metadata says `cnnlab_deck: true` (notebook 08, the talk) is the deck on its own: the
  lessons' slide tags then stay out, so the deck is a designed talk, not a dump of every notebook.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_markdown_cell, new_notebook

from .clean import read_for_readers
from .meta import header_html, title_notes, title_of

SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "notes"}
STARTS_SLIDE = {"slide", "subslide"}
ROLE_KEY = "cnnlab_role"  # cell metadata marking generated cells ('title')
DECK_KEY = "cnnlab_deck"  # notebook metadata: this notebook is the talk


def slide_type(cell: nbformat.NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def title_cell(meta: Mapping[str, Any]) -> nbformat.NotebookNode:
    """The generated opening slide: title plus the run facts."""
    subtitle = f"\n\n<p class=\"cnnlab-subtitle\">{html.escape(str(meta['subtitle']))}</p>" if meta.get("subtitle") else ""
    notes = f'<aside class="notes">{html.escape(title_notes(meta))}</aside>'
    cell = new_markdown_cell(f"# {title_of(meta)}{subtitle}\n\n{header_html(meta)}\n\n{notes}\n")
    cell.metadata["slideshow"] = {"slide_type": "slide"}
    cell.metadata[ROLE_KEY] = "title"
    return cell


def slide_cells(nb: nbformat.NotebookNode, prefix: str) -> list[nbformat.NotebookNode]:
    """The cells of one notebook that belong in the deck, with unique ids."""
    kept: list[nbformat.NotebookNode] = []
    for cell in nb.cells:
        kind = slide_type(cell)
        if kind not in SLIDE_TYPES or "remove-cell" in _tags(cell):
            continue
        cell = copy.deepcopy(cell)
        cell.id = f"{prefix}-{cell.get('id', len(kept))}"[:64]
        if "remove-output" in _tags(cell) and cell.cell_type == "code":
            cell.outputs = []
        if not kept and kind not in STARTS_SLIDE and kind != "notes":
            cell.metadata["slideshow"]["slide_type"] = "slide"
        kept.append(cell)
    return kept


def deck_notebooks(executed_notebooks: Iterable[Path]) -> list[tuple[Path, nbformat.NotebookNode]]:
    """The notebooks the deck is made of: the talk notebook(s) if any, else all of them."""
    notebooks = [(Path(p), read_for_readers(p)) for p in executed_notebooks]
    talks = [(p, nb) for p, nb in notebooks if nb.metadata.get(DECK_KEY)]
    return talks or notebooks


def deck_notebook(executed_notebooks: Iterable[Path], meta: Mapping[str, Any]) -> nbformat.NotebookNode:
    """One notebook: the title slide, then the slide cells of the deck's notebooks in order."""
    deck = new_notebook(cells=[title_cell(meta)])
    deck.metadata["title"] = title_of(meta)
    for i, (path, nb) in enumerate(deck_notebooks(executed_notebooks)):
        if i == 0:
            for key in ("kernelspec", "language_info"):
                if key in nb.metadata:
                    deck.metadata[key] = nb.metadata[key]
        deck.cells.extend(slide_cells(nb, f"nb{i}"))
    return deck
