"""Read the deck notebook into plain slide records (title, text, figures, tables) for PowerPoint.

python-pptx needs plain text and data, not HTML, so this walks the cells once: markdown through
mistune's AST (nbconvert's own markdown parser), outputs by MIME type.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from io import StringIO

import lxml.html
import mistune
import nbformat
import pandas as pd

from .deck import ROLE_KEY, STARTS_SLIDE, slide_type

MAX_TEXT_LINES = 12  # longer printed output is cut: a slide is not a log viewer

_markdown_ast = mistune.create_markdown(renderer=None, plugins=["table", "strikethrough"])


@dataclass
class Paragraph:
    text: str
    level: int = 0  # list nesting depth
    bullet: bool = False
    heading: bool = False
    monospace: bool = False


@dataclass
class Slide:
    title: str | None = None
    paragraphs: list[Paragraph] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)  # PNG or JPEG bytes
    tables: list[pd.DataFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    is_title: bool = False

    @property
    def visuals(self) -> int:
        return len(self.images) + len(self.tables)


def _plain(nodes: list[dict]) -> str:
    """Inline markdown nodes as plain text."""
    parts = []
    for node in nodes:
        kind = node.get("type")
        if kind in ("softbreak", "linebreak"):
            parts.append(" ")
        elif "children" in node:
            parts.append(_plain(node["children"]))
        elif kind in ("text", "codespan", "inline_html"):
            parts.append(node.get("raw", "") if kind != "inline_html" else "")
    return "".join(parts)


def _md_table(node: dict) -> pd.DataFrame:
    head = next(c for c in node["children"] if c["type"] == "table_head")
    body = next((c for c in node["children"] if c["type"] == "table_body"), {"children": []})
    columns = [_plain(c["children"]) for c in head["children"]]
    rows = [[_plain(c["children"]) for c in row["children"]] for row in body["children"]]
    return pd.DataFrame(rows, columns=columns)


def _add_markdown(slide: Slide, source: str) -> None:
    def walk(nodes: list[dict], depth: int) -> None:
        for node in nodes:
            kind = node["type"]
            if kind == "heading":
                text = _plain(node["children"])
                if slide.title is None:
                    slide.title = text
                else:
                    slide.paragraphs.append(Paragraph(text, heading=True))
            elif kind == "paragraph":
                text = _plain(node["children"]).strip()
                if text:
                    slide.paragraphs.append(Paragraph(text))
            elif kind == "list":
                for item in node["children"]:
                    for child in item["children"]:
                        if child["type"] in ("block_text", "paragraph"):
                            slide.paragraphs.append(Paragraph(_plain(child["children"]), depth, bullet=True))
                        else:
                            walk([child], depth + 1)
            elif kind == "block_code":
                slide.paragraphs.append(Paragraph(node.get("raw", "").rstrip(), monospace=True))
            elif kind == "block_quote":
                walk(node["children"], depth)
            elif kind == "table":
                slide.tables.append(_md_table(node))

    walk(_markdown_ast(source), 0)


def _read_table(table_html: str) -> pd.DataFrame:
    """One <table> as strings, so cells keep pandas' display formatting ('0.800', not 0.8)."""
    width = len(pd.read_html(StringIO(table_html), flavor="lxml")[0].columns)
    df = pd.read_html(
        StringIO(table_html), flavor="lxml", keep_default_na=False, converters={i: str for i in range(width)}
    )[0]
    if isinstance(df.columns, pd.MultiIndex):  # a named index adds a second header row
        df.columns = [" ".join(dict.fromkeys(p for p in map(str, col) if not p.startswith("Unnamed"))) for col in df.columns]
    else:
        df.columns = ["" if str(c).startswith("Unnamed") else str(c) for c in df.columns]
    return df


def html_tables(html: str) -> list[pd.DataFrame]:
    """DataFrames from a text/html output (e.g. pandas' own HTML), one header row each."""
    tables = lxml.html.fromstring(html).iter("table")
    return [_read_table(lxml.html.tostring(t, encoding="unicode")) for t in tables]


def _truncate(text: str) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) > MAX_TEXT_LINES:
        lines = lines[:MAX_TEXT_LINES] + [f"… ({len(lines) - MAX_TEXT_LINES} more lines)"]
    return "\n".join(lines)


def _add_outputs(slide: Slide, outputs: list[nbformat.NotebookNode]) -> None:
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout" and out.get("text", "").strip():
            slide.paragraphs.append(Paragraph(_truncate(out["text"]), monospace=True))
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if "image/png" in data or "image/jpeg" in data:
                slide.images.append(base64.b64decode(data.get("image/png") or data["image/jpeg"]))
            elif "<table" in data.get("text/html", ""):
                slide.tables.extend(html_tables(data["text/html"]))
            elif "text/markdown" in data:
                _add_markdown(slide, data["text/markdown"])
            elif kind == "execute_result" and "text/plain" in data:
                slide.paragraphs.append(Paragraph(_truncate(data["text/plain"]), monospace=True))


def _output_text(outputs: list[nbformat.NotebookNode]) -> str:
    """A notes cell's displayed markdown or printed text, as plain text."""
    parts = []
    for out in outputs:
        data = out.get("data", {})
        if "text/markdown" in data:
            parts.append(data["text/markdown"].strip())
        elif out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append(out.get("text", "").strip())
    return "\n\n".join(p for p in parts if p)


def slides_from_deck(deck: nbformat.NotebookNode) -> list[Slide]:
    """Group the deck's cells into slides, with nbconvert's slide_type rules."""
    slides: list[Slide] = []
    for cell in deck.cells:
        kind = slide_type(cell)
        if kind in STARTS_SLIDE or not slides:
            slides.append(Slide(is_title=cell.metadata.get(ROLE_KEY) == "title"))
        slide = slides[-1]
        if slide.is_title:
            continue  # drawn from meta directly
        if kind == "notes":  # written in markdown, or computed by a code cell that displays markdown
            slide.notes.append(cell.source if cell.cell_type == "markdown" else _output_text(cell.get("outputs", [])))
        elif cell.cell_type == "markdown":
            _add_markdown(slide, cell.source)
        elif cell.cell_type == "code":
            _add_outputs(slide, cell.get("outputs", []))
    return slides
