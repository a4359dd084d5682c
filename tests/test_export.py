"""Export pipeline end to end on two tiny generated notebooks (a few seconds of kernel time)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cnnlab import paths
from cnnlab.export import NotebookExecutionError, build, execute_notebooks
from cnnlab.export.build import read_back_note
from cnnlab.export.offline import network_references, reveal_assets

from .conftest import SHARED_HOME

FIGURE = """\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([0, 1, 2], [0.2, 0.6, 0.9], marker="o")
ax.set_title("accuracy")
plt.show()
"""
TABLE = """\
import pandas as pd
pd.DataFrame({"model": ["scratch", "transfer"], "accuracy": [0.61, 0.87]}).set_index("model")
"""


def _cell(cell, slide: str | None = None, tags: list[str] | None = None):
    if slide:
        cell.metadata["slideshow"] = {"slide_type": slide}
    if tags:
        cell.metadata["tags"] = tags
    return cell


def _write_notebooks(folder: Path) -> None:
    nb1 = new_notebook(cells=[
        _cell(new_markdown_cell("# Data exploration\n\nWhat the **images** look like.\n\n- ten classes\n- 32x32 pixels"), "slide"),
        new_code_cell("import os, pathlib\nprint('profile=' + os.environ['CNNLAB_PROFILE'])\nprint('cwd=' + str(pathlib.Path.cwd()))"),
        _cell(new_code_cell(FIGURE), "-", ["hide-input"]),
        _cell(new_markdown_cell("## Results table"), "slide"),
        _cell(new_code_cell(TABLE), "-"),
        new_markdown_cell("Narrative that only the report shows."),
        _cell(new_code_cell("print('skipped on slides')"), "skip"),
    ])
    nb2 = new_notebook(cells=[
        _cell(new_markdown_cell("# From scratch\n\nA second notebook."), "-"),  # promoted to a new slide
        _cell(new_markdown_cell("## Training curve"), "subslide"),
        _cell(new_code_cell(FIGURE), "-"),
        _cell(new_markdown_cell("Say why the curve flattens."), "notes"),
    ])
    for name, nb in [("01_data_exploration.ipynb", nb1), ("02_cnn_from_scratch.ipynb", nb2)]:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / name)
    (folder / "notes.ipynb").write_text("not numbered: must be ignored")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    nb_dir = root / "notebooks"
    nb_dir.mkdir()
    _write_notebooks(nb_dir)
    before = {p.name: p.read_text() for p in nb_dir.glob("*.ipynb")}
    meta = {"data": "fake (64 images)", "device": "cpu"}
    result = build("smoke", nb_dir, root / "report", root / "slides", meta, timeout=120)
    return result, nb_dir, before


def _no_network(html: str) -> None:
    assert network_references(html) == []
    assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", html, re.I)
    assert not re.search(r"<link[^>]+href=[\"']?(https?:)?//", html, re.I)
    assert "//cdn" not in html and "unpkg.com" not in html and "cdnjs" not in html


def test_execution_keeps_sources_clean_and_sets_profile_and_cwd(built):
    result, nb_dir, before = built
    assert {p.name: p.read_text() for p in nb_dir.glob("*.ipynb")} == before
    executed = result["executed"]
    assert [p.name for p in executed] == ["01_data_exploration.ipynb", "02_cnn_from_scratch.ipynb"]
    printed = nbformat.read(executed[0], as_version=4).cells[1].outputs[0]["text"]
    assert "profile=smoke" in printed and f"cwd={nb_dir.resolve()}" in printed
    timings = result["timings"]
    assert set(timings["notebooks"]) == {p.name for p in executed}
    assert all(s > 0 for s in timings["notebooks"].values())
    assert result["meta"]["wall_time_s"] > 0 and result["meta"]["profile"] == "smoke"


def test_report_pages_are_self_contained(built):
    result, _, _ = built
    index = result["report"]
    assert index.name == "index.html"
    html = index.read_text()
    assert "01_data_exploration.html" in html and "02_cnn_from_scratch.html" in html
    assert "fake (64 images)" in html and "smoke" in html and "Total wall time" in html
    _no_network(html)
    page = (index.parent / "01_data_exploration.html").read_text()
    assert "data:image/png;base64," in page
    assert "<table" in page and "transfer" in page and "0.87" in page
    assert "Narrative that only the report shows." in page
    assert "fake (64 images)" in page  # header box on each page
    assert "<details" in page  # other code folded
    assert "plt.subplots" not in page  # hide-input cell's code removed
    _no_network(page)


def test_slides_deck_is_one_offline_file(built):
    result, _, _ = built
    deck = result["slides"].read_text()
    assert result["slides"].suffix == ".html"
    assert "Reveal.initialize" in deck and len(deck) > len(reveal_assets().js)
    assert "data:image/png;base64," in deck
    assert "<table" in deck and "transfer" in deck
    assert "fake (64 images)" in deck and "CNN from scratch vs transfer learning" in deck
    assert "skipped on slides" not in deck and "Narrative that only the report shows." not in deck
    assert "import pandas" not in deck  # code inputs hidden
    slides_part = deck[: deck.index("<script")]
    # nbconvert nests: each 'slide' is an outer <section> holding one per subslide -> 4 slides x 2 + 1 subslide
    assert slides_part.count("<section") == 9
    _no_network(deck)


def test_pptx_has_the_same_slides(built):
    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    result, _, _ = built
    prs = Presentation(str(result["pptx"]))
    slides = list(prs.slides)
    assert len(slides) == 5  # title, intro+figure, table, second notebook, training curve
    kinds = [{s.shape_type for s in slide.shapes} for slide in slides]
    assert MSO_SHAPE_TYPE.PICTURE in kinds[1] and MSO_SHAPE_TYPE.PICTURE in kinds[4]
    tables = [s for s in slides[2].shapes if s.has_table]
    assert len(tables) == 1
    cells = [c.text for row in tables[0].table.rows for c in row.cells]
    assert "transfer" in cells and "0.87" in cells
    texts = " ".join(s.text_frame.text for s in slides[0].shapes if s.has_text_frame)
    texts += " ".join(c.text for s in slides[0].shapes if s.has_table for row in s.table.rows for c in row.cells)
    assert "fake (64 images)" in texts and "smoke" in texts
    assert "Say why the curve flattens." in slides[4].notes_slide.notes_text_frame.text


def test_failure_names_notebook_and_cell(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("1 / 0")])
    src = tmp_path / "03_broken.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(NotebookExecutionError) as info:
        execute_notebooks([src], tmp_path / "out", "smoke", timeout=60)
    message = str(info.value)
    assert "03_broken.ipynb" in message and "cell 1" in message and "ZeroDivisionError" in message
    assert (tmp_path / "out" / "03_broken.ipynb").exists()


PROGRESS = """\
from tqdm.auto import tqdm
for epoch in tqdm(range(3), desc="train demo", unit="epoch"):
    for batch in tqdm(range(4), desc=f"epoch {epoch + 1}", leave=False):
        pass
from cnnlab.train import end_bar
bar = tqdm(desc="stopped demo", unit="epoch", total=100)
for epoch in range(100):
    bar.update()
    if epoch == 26:
        end_bar(bar, "early stop")
        break
bar.close()
"""


def test_progress_bars_are_kept_as_finished_text(tmp_path):
    """tqdm.auto draws widgets in a kernel; the executed copy must hold the finished bar as text
    (the offline exports cannot render widgets) and drop the per-epoch bars that hid themselves."""
    src = tmp_path / "01_progress.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(PROGRESS)]), src)
    (out,) = execute_notebooks([src], tmp_path / "out", "smoke", timeout=120)
    outputs = nbformat.read(out, as_version=4).cells[0].outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert re.search(r"train demo: 100%\|█{10}\| 3/3 \[", text), text
    assert "epoch 1" not in text
    assert re.search(r"stopped demo: 100%\|█{10}\| 27/27 \[.*, early stop\]", text), text  # train.end_bar


def test_network_guard_catches_cdn_tags():
    html = '<script src="https://cdn.example/x.js"></script><link rel="stylesheet" href="//cdn.x/y.css">'
    assert len(network_references(html)) == 2
    assert network_references('<a href="https://example.org">link</a>') == []


# ------------------------------------------------------------------ the real notebooks, smoke profile

# This export is where `make test` executes the lesson notebooks (nbmake runs their solutions). Under
# `make test` SHARED_HOME is build/smoke, so the runs trained here are read back, not retrained, by nbmake.


@pytest.fixture(scope="module")
def real_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    source = os.environ.get("CNNLAB_SOURCE", "fake")
    env = {"CNNLAB_HOME": SHARED_HOME or str(root / "home"), "CNNLAB_SOURCE": source}
    meta = {"data": f"{Path(source).name} (smoke)", "device": "cpu"}
    return build("smoke", paths.PROJECT_ROOT / "notebooks", root / "report", root / "slides", meta,
                 env_extra=env, timeout=1800, runs_dir=Path(env["CNNLAB_HOME"]) / "runs" / "smoke")


def test_real_notebooks_export_with_the_comparison_table_and_figures(real_export):
    executed = [p.name for p in real_export["executed"]]
    assert executed == sorted(p.name for p in (paths.PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert {"04_comparison.ipynb", "05_explainability.ipynb", "08_the_talk.ipynb"} <= set(executed)
    index = real_export["report"].read_text()
    _no_network(index)
    for name in executed:
        page = (real_export["report"].parent / name.replace(".ipynb", ".html")).read_text()
        assert "data:image/png;base64," in page, name
        _no_network(page)
    comparison = (real_export["report"].parent / "04_comparison.html").read_text()
    assert "<table" in comparison and "scratch · fast" in comparison and "transfer · frozen" in comparison


def test_report_shows_no_stderr_or_machine_paths_and_its_index_gives_the_results(real_export):
    report = real_export["report"].parent
    root = str(paths.PROJECT_ROOT)
    for page in report.glob("*.html"):
        text = page.read_text()
        assert 'data-mime-type="application/vnd.jupyter.stderr"' not in text, page.name
        assert root not in text, f"{page.name} shows this machine's path {root}"
    index = real_export["report"].read_text()
    for part in ("Abstract", "Results", "Conclusion", "fast (scratch)", "Lite0 frozen", "data:image/png;base64,"):
        assert part in index, part
    assert 'href="../slides/cnnlab.html"' in index and 'href="../slides/cnnlab.pptx"' in index


def test_the_deck_is_the_talk_with_notes_on_every_slide(real_export):
    deck = real_export["slides"].read_text()
    _no_network(deck)
    import lxml.html

    slides = [s for s in lxml.html.fromstring(deck).iter("section") if not s.findall(".//section")]  # not the stacks
    sections = len(slides)
    assert 12 <= sections <= 18, sections
    assert "The answer:" in deck and "fast (scratch)" in deck and "Lite0 partial" in deck
    assert "scratch · baseline" not in deck  # the lessons' own slide cells stay out of the talk
    assert all(s.find_class("notes") for s in slides)


def test_the_deck_fits_every_slide_at_1280x720_in_chromium(real_export):
    from .deck_check import chromium, measure_deck, problems

    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    slides = measure_deck(real_export["slides"], browser)
    assert 12 <= len(slides) <= 18
    assert problems(slides) == []


def test_real_pptx_has_titles_notes_and_readable_text(real_export):
    from pptx import Presentation
    from pptx.util import Pt

    prs = Presentation(str(real_export["pptx"]))
    slides = list(prs.slides)
    assert 12 <= len(slides) <= 18
    html_deck = real_export["slides"].read_text()
    for i, slide in enumerate(slides, start=1):
        title = slide.shapes.title
        assert title is not None and title.text.strip(), f"slide {i} has no title placeholder"
        assert slide.has_notes_slide and slide.notes_slide.notes_text_frame.text.strip(), f"slide {i} has no notes"
        sizes = [r.font.size for shape in slide.shapes if shape.has_text_frame
                 for p in shape.text_frame.paragraphs for r in p.runs if r.font.size is not None]
        sizes += [r.font.size for shape in slide.shapes if shape.has_table for row in shape.table.rows
                  for c in row.cells for p in c.text_frame.paragraphs for r in p.runs if r.font.size is not None]
        assert all(size >= Pt(12) for size in sizes), f"slide {i} has text under 12 pt"
    cells = {c.text for slide in slides for s in slide.shapes if s.has_table for row in s.table.rows for c in row.cells}
    assert {"fast (scratch)", "Lite0 frozen"} <= cells
    pictures = sum(1 for slide in slides for s in slide.shapes if s.shape_type == 13)  # MSO_SHAPE_TYPE.PICTURE
    assert pictures >= 8
    assert slides[1].shapes.title.text.startswith("The answer:") and "The answer:" in html_deck


def test_a_talk_notebook_is_the_deck_on_its_own(tmp_path):
    from cnnlab.export.deck import deck_notebook

    lesson = new_notebook(cells=[_cell(new_markdown_cell("# A lesson slide"), "slide")])
    talk = new_notebook(cells=[_cell(new_markdown_cell("## The talk's slide"), "slide"),
                               _cell(new_markdown_cell("What to say."), "notes")])
    talk.metadata["cnnlab_deck"] = True
    for name, nb in (("01_lesson.ipynb", lesson), ("08_talk.ipynb", talk)):
        nbformat.write(nb, tmp_path / name)
    deck = deck_notebook([tmp_path / "01_lesson.ipynb", tmp_path / "08_talk.ipynb"], {"subtitle": "the answer"})
    text = [c.source for c in deck.cells]
    assert not any("A lesson slide" in t for t in text) and any("The talk's slide" in t for t in text)
    assert "the answer" in text[0] and 'class="notes"' in text[0]  # the title slide: subtitle and notes


def test_runs_read_back_are_named_with_their_training_time(tmp_path):
    for name, seconds in (("fast", 1343.0), ("lite0-frozen", 600.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"train_seconds": seconds}))
    os.utime(tmp_path / "fast" / "metrics.json", (time.time() - 3600, time.time() - 3600))
    note = read_back_note(tmp_path, started=time.time() - 60)
    assert note.startswith("fast trained earlier") and "22 min 23 s" in note and "lite0" not in note
    assert read_back_note(tmp_path, started=time.time() - 7200) == ""


def test_only_re_executes_the_named_notebooks_and_keeps_the_others(tmp_path):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    _write_notebooks(nb_dir)
    meta = {"data": "fake", "device": "cpu"}
    first = build("smoke", nb_dir, tmp_path / "report", tmp_path / "slides", meta, timeout=120)
    kept = tmp_path / "report" / "notebooks" / "01_data_exploration.ipynb"
    before = kept.stat().st_mtime_ns
    again = build("smoke", nb_dir, tmp_path / "report", tmp_path / "slides", meta, timeout=120, only=["02"])
    assert kept.stat().st_mtime_ns == before  # read as it was, not run again
    assert [p.name for p in again["executed"]] == [p.name for p in first["executed"]]
    assert again["meta"]["wall_time_s"] > 0 and (tmp_path / "slides" / "cnnlab.pptx").exists()
    with pytest.raises(FileNotFoundError, match="run the whole report first"):
        build("smoke", nb_dir, tmp_path / "other", tmp_path / "slides", meta, timeout=120, only=["02"])
