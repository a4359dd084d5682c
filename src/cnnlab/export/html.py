"""HTML report: one self-contained page per executed notebook plus an index.html linking them.

nbconvert's lab template does the rendering; a small template on top removes its CDN scripts
(require.js, MathJax, mermaid, widgets), adds the run-facts header and folds code into <details>.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

from .clean import read_for_readers
from .meta import HEADER_CSS, format_seconds, header_html, title_of
from .notebooks import source_dir, wall_time
from .offline import strip_network_references

HIDE_INPUT_TAGS = {"hide-input", "remove-input"}
REMOVE_CELL_TAGS = {"remove-cell"}
REMOVE_OUTPUT_TAGS = {"remove-output"}
OPEN_INPUT_TAG = "show-input"  # code cells with this tag are shown unfolded

REPORT_CSS = HEADER_CSS + """
body { max-width: 1100px; margin: 0 auto; padding: 0 1.5em 3em; }
.cnnlab-nav { display: flex; gap: 1.5em; padding: 0.8em 0 0.2em; font-family: system-ui, sans-serif; }
.cnnlab-nav a { color: #3b6ea5; text-decoration: none; }
details.cnnlab-code > summary { cursor: pointer; color: #5a6b80; font-size: 0.85em;
  font-family: system-ui, sans-serif; padding: 0.2em 0 0.2em 0.5em; }
details.cnnlab-code[open] > summary { margin-bottom: 0.3em; }
.jp-RenderedHTMLCommon table { font-size: 0.95em; }
"""

_REPORT_TEMPLATE = """
{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}<style type="text/css">{{ resources.cnnlab.css }}</style>{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.cnnlab.nav }}
{{ resources.cnnlab.header }}
{%- endblock body_header -%}
{% block input_group -%}
<details class="cnnlab-code"{% if resources.cnnlab.open_tag in cell.metadata.get('tags', []) %} open{% endif %}>
<summary>Code</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""


def report_exporter() -> HTMLExporter:
    """The lab-template exporter with our offline template and tag-driven hiding."""
    exporter = HTMLExporter(
        template_name="lab",
        template_file="cnnlab_report.html.j2",
        extra_loaders=[DictLoader({"cnnlab_report.html.j2": _REPORT_TEMPLATE})],
        embed_images=True,  # markdown ![](figure.png) becomes a data: URI, so a page works alone
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(
            remove_input_tags=HIDE_INPUT_TAGS,
            remove_cell_tags=REMOVE_CELL_TAGS,
            remove_all_outputs_tags=REMOVE_OUTPUT_TAGS,
            enabled=True,
        ),
        enabled=True,
    )
    return exporter


def notebook_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first markdown heading, else the file stem."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def _nav(pages: Sequence[Path], i: int) -> str:
    links = ['<a href="index.html">&#8962; Index</a>']
    if i > 0:
        links.append(f'<a href="{pages[i - 1].name}">&larr; {html.escape(pages[i - 1].stem)}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1].name}">{html.escape(pages[i + 1].stem)} &rarr;</a>')
    return f'<nav class="cnnlab-nav">{" ".join(links)}</nav>'


def _summary_html(meta: Mapping[str, Any], links: Mapping[str, str]) -> str:
    """Abstract, headline table, key figure and conclusion from the talk's summary, with links to the decks."""
    summary = meta.get("summary") or {}
    deck_links = " · ".join(f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for label, href in links.items())
    if not summary:
        return f"<p>{deck_links}</p>" if deck_links else ""
    rows = summary.get("headline") or []
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in (rows[0] if rows else {}))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    figure = ""
    key = Path(summary.get("key_figure", ""))
    if key.is_file():
        data = base64.b64encode(key.read_bytes()).decode()
        figure = (f'<figure><img src="data:image/png;base64,{data}" alt="test accuracy against training images">'
                  f"<figcaption>Test accuracy against the number of training images (log scale), scratch and "
                  f"transfer on the same validation and test images.</figcaption></figure>")
    return f"""<h2>Abstract</h2>
<p>{html.escape(summary.get('abstract', ''))}</p>
<h2>Results</h2>
<table class="headline"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{figure}
<h2>Conclusion</h2>
<p>{html.escape(summary.get('conclusion', ''))}</p>
<p class="decks">The talk: {deck_links}</p>
<h2>The notebooks</h2>"""


def _index_html(meta: Mapping[str, Any], entries: Sequence[tuple[str, str, float]],
                links: Mapping[str, str] | None = None) -> str:
    # Hand-written: the index is not a notebook, so no nbconvert exporter applies.
    rows = "\n".join(
        f'<tr><td><a href="{html.escape(href)}">{html.escape(title)}</a></td>'
        f"<td>{html.escape(href)}</td><td class=\"num\">{format_seconds(seconds)}</td></tr>"
        for title, href, seconds in entries
    )
    subtitle = f"<p class=\"subtitle\">{html.escape(str(meta['subtitle']))}</p>" if meta.get("subtitle") else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title_of(meta))}</title>
<style>{HEADER_CSS}
body {{ font-family: system-ui, sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1.5em; color: #1d2a3a;
  line-height: 1.5; }}
table {{ border-collapse: collapse; width: 100%; margin: 0.5em 0 1em; }}
th, td {{ text-align: left; padding: 0.45em 0.8em; border-bottom: 1px solid #dde3ea; }}
thead th {{ border-bottom: 2px solid #3b6ea5; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
table.headline td:not(:first-child), table.headline th:not(:first-child) {{ text-align: right; }}
figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; }} figcaption {{ color: #5a6b80; font-size: 0.9em; }}
.subtitle {{ font-size: 1.2em; color: #3b4b5e; }}
a {{ color: #3b6ea5; }}
</style></head>
<body>
<h1>{html.escape(title_of(meta))}</h1>
{subtitle}
{header_html(meta)}
{_summary_html(meta, links or {})}
<table><thead><tr><th>Notebook</th><th>File</th><th class="num">Wall time</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def export_report(executed_notebooks: Iterable[Path], report_dir: Path, meta: Mapping[str, Any],
                  links: Mapping[str, str] | None = None) -> Path:
    """Write <stem>.html per executed notebook and index.html; returns the index path.

    `links` (label -> href relative to the report) are the decks the index points to."""
    notebooks = [Path(p) for p in executed_notebooks]
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    pages = [report_dir / f"{p.stem}.html" for p in notebooks]
    exporter = report_exporter()
    entries: list[tuple[str, str, float]] = []
    for i, (src, page) in enumerate(zip(notebooks, pages)):
        nb = read_for_readers(src)
        resources = {
            "metadata": {"name": src.stem, "path": str(source_dir(nb, src.parent))},
            "cnnlab": {"css": REPORT_CSS, "header": header_html(meta), "nav": _nav(pages, i), "open_tag": OPEN_INPUT_TAG},
        }
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        page.write_text(strip_network_references(body), encoding="utf-8")
        entries.append((notebook_title(nb, src.stem), page.name, wall_time(nb)))
    index = report_dir / "index.html"
    index.write_text(_index_html(meta, entries, links), encoding="utf-8")
    return index
