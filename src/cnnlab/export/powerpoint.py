"""PowerPoint deck (python-pptx) with the same slides as the reveal.js deck.

Every slide uses a layout with a title placeholder (Title Slide, Title Only), so outlines, screen
readers and PowerPoint's own tools see real titles; the placeholders are moved to 16:9 positions.
Speaker notes come from the deck's notes cells; no text is smaller than 12 pt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
from PIL import Image
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.shapes import MSO_SHAPE
from pptx.enum.text import MSO_AUTO_SIZE, PP_ALIGN
from pptx.util import Emu, Inches, Pt

from .deck import deck_notebook
from .meta import meta_items, title_notes, title_of
from .slide_model import Paragraph, Slide, slides_from_deck

WIDTH, HEIGHT = Inches(13.333), Inches(7.5)
MARGIN = Inches(0.5)
BODY_TOP, BODY_BOTTOM = Inches(1.55), Inches(7.0)
GAP = Inches(0.2)
TEXT_COLUMN = Inches(4.4)  # text beside figures/tables
MAX_TABLE_ROWS, MAX_TABLE_COLS = 15, 12
WIDE_TABLE_COLS = 3  # tables with more columns than this get the full slide width

INK = RGBColor(0x1D, 0x2A, 0x3A)
ACCENT = RGBColor(0x3B, 0x6E, 0xA5)
MUTED = RGBColor(0x5A, 0x6B, 0x80)
STRIPE = RGBColor(0xF3, 0xF6, 0xFA)
WHITE = RGBColor(0xFF, 0xFF, 0xFF)


def _textbox(slide, left: int, top: int, width: int, height: int):
    frame = slide.shapes.add_textbox(left, top, width, height).text_frame
    frame.word_wrap = True
    return frame


TITLE_ONLY, TITLE_SLIDE = 5, 0  # layouts of python-pptx's default template
MIN_PT = 12


def _title(slide, text: str) -> None:
    """Fill the layout's title placeholder, moved to the 16:9 top band."""
    shape = slide.shapes.title
    shape.left, shape.top, shape.width, shape.height = MARGIN, Inches(0.25), WIDTH - 2 * MARGIN, Inches(1.0)
    frame = shape.text_frame
    frame.word_wrap = True
    frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
    frame.text = text
    p = frame.paragraphs[0]
    p.alignment = PP_ALIGN.LEFT
    for run in p.runs:
        run.font.size, run.font.bold, run.font.color.rgb = Pt(28 if len(text) < 70 else 24), True, INK
    bar = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, MARGIN, Inches(1.3), Inches(1.2), Inches(0.06))
    bar.fill.solid()
    bar.fill.fore_color.rgb = ACCENT
    bar.line.fill.background()


def _text_size(paragraphs: list[Paragraph]) -> int:
    lines = sum(p.text.count("\n") + 1 + len(p.text) // 70 for p in paragraphs)
    return 22 if lines <= 8 else 20 if lines <= 12 else 16 if lines <= 16 else 14


def _paragraphs(slide, paragraphs: list[Paragraph], left: int, top: int, width: int, height: int) -> None:
    frame = _textbox(slide, left, top, width, height)
    frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
    size = _text_size(paragraphs)
    for i, para in enumerate(paragraphs):
        p = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        p.space_after = Pt(6)
        prefix = ("    " * para.level + ("• " if para.level == 0 else "– ")) if para.bullet else ""
        run = p.add_run()
        run.text = prefix + para.text
        run.font.color.rgb = INK
        if para.monospace:
            run.font.name, run.font.size = "Consolas", Pt(max(size - 6, MIN_PT))
        else:
            run.font.size = Pt(size + 2 if para.heading else size)
            run.font.bold = para.heading


def _picture(slide, data: bytes, left: int, top: int, width: int, height: int) -> None:
    """Largest size that fits the box with the image's aspect ratio, centred."""
    w_px, h_px = Image.open(BytesIO(data)).size
    scale = min(width / w_px, height / h_px)
    w, h = int(w_px * scale), int(h_px * scale)
    slide.shapes.add_picture(BytesIO(data), left + (width - w) // 2, top + (height - h) // 2, w, h)


def _cell_text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _table(slide, df: pd.DataFrame, left: int, top: int, width: int, height: int) -> None:
    """A real pptx table, font and column widths sized to the box; long tables are cut with a note."""
    more_rows = len(df) - MAX_TABLE_ROWS
    df = df.iloc[:MAX_TABLE_ROWS, :MAX_TABLE_COLS]
    header = [str(c) for c in df.columns]
    body = [[_cell_text(v) for v in row] for row in df.itertuples(index=False)]
    if more_rows > 0:
        body.append([f"… {more_rows} more rows"] + [""] * (len(header) - 1))
    n_rows, n_cols = len(body) + 1, max(len(header), 1)
    chars = [max([len(header[j])] + [len(r[j]) for r in body]) + 2 for j in range(n_cols)]
    # the largest font at which the rows fit the height and the widest cells fit the width unwrapped
    font = max(MIN_PT, min(22, int(Emu(height).pt / (n_rows * 1.9)), int(Emu(width).pt / (sum(chars) * 0.62))))
    natural = sum(chars) * Pt(font * 0.65)
    total = min(width, max(natural, Inches(2.2) * min(n_cols, 3)))
    row_h = Pt(font * 1.9)
    shape = slide.shapes.add_table(n_rows, n_cols, left + (width - total) // 2, top, total, row_h * n_rows)
    table = shape.table
    for j, c in enumerate(chars):
        table.columns[j].width = int(total * c / sum(chars))
    for i in range(n_rows):
        table.rows[i].height = row_h
        for j in range(n_cols):
            cell = table.cell(i, j)
            cell.text = header[j] if i == 0 else body[i - 1][j]
            cell.margin_top = cell.margin_bottom = Pt(2)
            cell.fill.solid()
            cell.fill.fore_color.rgb = ACCENT if i == 0 else (STRIPE if i % 2 else WHITE)
            for p in cell.text_frame.paragraphs:
                p.alignment = PP_ALIGN.LEFT if j == 0 or i == 0 else PP_ALIGN.RIGHT
                for run in p.runs:
                    run.font.size, run.font.bold = Pt(font), i == 0
                    run.font.color.rgb = WHITE if i == 0 else INK


def _visuals(slide, content: Slide, left: int, top: int, width: int, height: int) -> None:
    items: list[tuple[str, Any]] = [("image", d) for d in content.images] + [("table", t) for t in content.tables]
    cols = len(items) if len(items) <= 3 else math.ceil(len(items) / 2)
    rows = math.ceil(len(items) / cols)
    cw, ch = (width - GAP * (cols - 1)) // cols, (height - GAP * (rows - 1)) // rows
    for k, (kind, item) in enumerate(items):
        x, y = left + (k % cols) * (cw + GAP), top + (k // cols) * (ch + GAP)
        (_picture if kind == "image" else _table)(slide, item, x, y, cw, ch)


def _title_slide(prs, meta: Mapping[str, Any]) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[TITLE_SLIDE])
    title, subtitle = slide.shapes.title, slide.placeholders[1]
    title.left, title.top, title.width, title.height = MARGIN, Inches(0.9), WIDTH - 2 * MARGIN, Inches(1.5)
    title.text_frame.word_wrap = True
    title.text = title_of(meta)
    for run in title.text_frame.paragraphs[0].runs:
        run.font.size, run.font.bold, run.font.color.rgb = Pt(36), True, INK
    subtitle.left, subtitle.top, subtitle.width, subtitle.height = Inches(1.0), Inches(2.45), WIDTH - Inches(2.0), Inches(1.3)
    subtitle.text_frame.word_wrap = True
    subtitle.text = str(meta.get("subtitle") or "")
    for run in subtitle.text_frame.paragraphs[0].runs:
        run.font.size, run.font.color.rgb = Pt(20), MUTED
    # A borderless two-column table keeps labels and values aligned even when a value wraps.
    items = meta_items(meta)
    slide.notes_slide.notes_text_frame.text = title_notes(meta)
    if not items:
        return
    shape = slide.shapes.add_table(len(items), 2, Inches(1.4), Inches(3.95), Inches(10.5), Inches(0.42) * len(items))
    table = shape.table
    table.first_row = table.horz_banding = False
    table.columns[0].width, table.columns[1].width = Inches(2.6), Inches(7.9)
    for i, (label, value) in enumerate(items):
        for j, (text, align, color, bold) in enumerate(((label, PP_ALIGN.RIGHT, MUTED, False),
                                                        (value, PP_ALIGN.LEFT, INK, True))):
            cell = table.cell(i, j)
            cell.fill.background()
            cell.margin_top = cell.margin_bottom = Pt(1)
            cell.text = text
            p = cell.text_frame.paragraphs[0]
            p.alignment = align
            for run in p.runs:
                run.font.size, run.font.color.rgb, run.font.bold = Pt(15), color, bold


def _content_slide(prs, content: Slide, fallback_title: str) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[TITLE_ONLY])
    _title(slide, content.title or fallback_title)
    width, height = WIDTH - 2 * MARGIN, BODY_BOTTOM - BODY_TOP
    wide = any(len(t.columns) > WIDE_TABLE_COLS for t in content.tables)
    if content.paragraphs and content.visuals and wide:  # a wide table needs the whole width: text above it
        band = min(height // 3, Inches(0.45) * (1 + sum(len(p.text) // 110 for p in content.paragraphs)))
        _paragraphs(slide, content.paragraphs, MARGIN, BODY_TOP, width, band)
        _visuals(slide, content, MARGIN, BODY_TOP + band + GAP, width, height - band - GAP)
    elif content.paragraphs and content.visuals:
        _paragraphs(slide, content.paragraphs, MARGIN, BODY_TOP, TEXT_COLUMN, height)
        offset = TEXT_COLUMN + GAP
        _visuals(slide, content, MARGIN + offset, BODY_TOP, width - offset, height)
    elif content.paragraphs:
        _paragraphs(slide, content.paragraphs, MARGIN, BODY_TOP, width, height)
    elif content.visuals:
        _visuals(slide, content, MARGIN, BODY_TOP, width, height)
    if content.notes:
        slide.notes_slide.notes_text_frame.text = "\n\n".join(content.notes)


def export_pptx(executed_notebooks: Iterable[Path], pptx_path: Path, meta: Mapping[str, Any],
                deck: nbformat.NotebookNode | None = None) -> Path:
    """Write the deck as .pptx: title slide, then one slide per slide/subslide of the reveal.js deck
    (`deck` as for `export_slides`: built here unless the caller has it)."""
    prs = Presentation()
    prs.slide_width, prs.slide_height = WIDTH, HEIGHT
    previous_title = title_of(meta)
    deck = deck if deck is not None else deck_notebook([Path(p) for p in executed_notebooks], meta)
    for content in slides_from_deck(deck):
        if content.is_title:
            _title_slide(prs, meta)
            continue
        _content_slide(prs, content, previous_title)
        previous_title = content.title or previous_title  # untitled continuation slides keep the last title
    pptx_path = Path(pptx_path)
    pptx_path.parent.mkdir(parents=True, exist_ok=True)
    prs.save(pptx_path)
    return pptx_path
