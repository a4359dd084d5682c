"""Committed notebooks carry no outputs (they are run by nbmake and by `cnnlab report`)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SOLUTIONS = sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))  # the lessons with their exercises solved
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb")) + SOLUTIONS


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS and all(p.name[:2].isdigit() and p.name[2] == "_" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them (jupyter nbconvert --clear-output --inplace)"


def _exercise_cell(cell) -> bool:
    """A cell a solution may change: a TODO blank, the strict-mode switch, or a cell tagged `exercise`."""
    return "TODO" in cell.source or "strict_mode(" in cell.source or "exercise" in cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_a_solution_is_its_lesson_with_the_todos_filled(path):
    """nbmake runs each solution in strict mode (a failing check raises); outside its exercise cells a
    solution must stay its lesson, so an edit to a lesson is copied to its solution."""
    lesson_path = NOTEBOOK_DIR / path.name
    assert lesson_path.exists(), f"{path.name} has no lesson notebooks/{path.name}"
    lesson, solution = nbformat.read(lesson_path, as_version=4), nbformat.read(path, as_version=4)
    assert len(lesson.cells) == len(solution.cells), f"{path.name}: the solution and the lesson differ in cells"
    changed = [i for i, (c, s) in enumerate(zip(lesson.cells, solution.cells)) if c.source != s.source]
    title = lesson.cells[0].source.partition("\n")[0]  # the solution's title may add " (solutions)"
    strays = [i for i in changed if not _exercise_cell(lesson.cells[i])
              and not (i == 0 and solution.cells[0].source == lesson.cells[0].source.replace(title, f"{title} (solutions)", 1))]
    assert changed and not strays, f"{path.name}: cells {strays} differ from the lesson but are no exercise"
    sources = [c.source for c in solution.cells]
    assert any("strict_mode(True)" in s or "STRICT = True" in s and "strict_mode(STRICT)" in s for s in sources), \
        f"{path.name}: the solution must switch on strict mode"
    left = [i for i, s in enumerate(sources) if "= TODO" in s or "return TODO" in s]
    assert not left, f"{path.name}: cells {left} still hold a TODO blank"


def test_every_lesson_with_exercises_has_a_solution():
    for lesson in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(lesson, as_version=4)
        if any("= TODO" in c.source or "return TODO" in c.source for c in nb.cells if c.cell_type == "code"):
            assert (NOTEBOOK_DIR / "solutions" / lesson.name).exists(), f"{lesson.name} has exercises but no solution"
