"""One reveal.js deck (a single self-contained HTML file) from the slide-tagged cells of all notebooks.

nbconvert's SlidesExporter turns `slideshow.slide_type` into <section>s; our template replaces its
CDN <script>/<link> tags with reveal.js inlined from the locally installed copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat
from jinja2 import DictLoader
from nbconvert import SlidesExporter

from .deck import deck_notebook
from .meta import HEADER_CSS
from .notebooks import source_dir
from .offline import reveal_assets, strip_network_references

# Sized in slide pixels (the deck is 1280x720 and reveal.js scales it to the screen).
SLIDES_CSS = HEADER_CSS + """
:root { --jp-ui-font-size1: 20px; --jp-content-font-size1: 20px; --jp-code-font-size: 19px; }
.reveal { font-size: 140%; }
.reveal a.anchor-link { display: none; }
/* A slide never scrolls: the deck's test asserts that every slide's content fits 1280x720. */
.reveal .slides section { height: 100%; overflow: hidden; }
.reveal .slides section.stack { overflow: visible; }
.reveal .slides section > .jp-Cell { padding: 0; }
.reveal .jp-RenderedHTMLCommon h1, .reveal .jp-RenderedHTMLCommon h2, .reveal .jp-RenderedHTMLCommon h3 {
  text-transform: none; line-height: 1.15; margin: 0 0 0.35em; color: #1d2a3a; }
.reveal .jp-RenderedHTMLCommon h1 { font-size: 52px; }
.reveal .jp-RenderedHTMLCommon h2 { font-size: 36px; }
.reveal .jp-RenderedHTMLCommon h3 { font-size: 34px; }
.reveal .jp-RenderedHTMLCommon p, .reveal .jp-RenderedHTMLCommon li { font-size: 24px; line-height: 1.35; }
.reveal .jp-OutputArea { display: flex; flex-wrap: wrap; justify-content: center; align-items: flex-start; gap: 0.6em; }
.reveal .jp-OutputArea-child { flex: 1 1 0; min-width: 0; }
/* Only figures share a row; printed text and tables take the full width. */
.reveal .jp-OutputArea-child:has(.jp-RenderedText, .jp-RenderedMarkdown, table) { flex-basis: 100%; }
.reveal .jp-RenderedMarkdown h2 { margin-bottom: 0.25em; }
.reveal .jp-OutputArea-output img { height: 520px; max-width: 100%; width: auto;
  object-fit: contain; display: block; margin: 0 auto; }
.reveal .jp-OutputPrompt { display: none; }
.reveal table.dataframe, .reveal .jp-RenderedHTMLCommon table { font-size: 24px; margin: 0.3em auto;
  border-collapse: collapse; }
.reveal table th, .reveal table td { padding: 0.25em 0.7em; border-bottom: 1px solid #ccd5df; }
.reveal table thead th { border-bottom: 2px solid #3b6ea5; }
.reveal table tbody tr:nth-child(odd) { background: #f3f6fa; }
.reveal div.jp-OutputArea-output > pre, .reveal .jp-RenderedText pre { font-size: 20px; line-height: 1.3; }
.reveal section.cnnlab-title { text-align: center; }
.reveal .cnnlab-title h1 { font-size: 48px; margin-top: 40px; }
.reveal .cnnlab-subtitle { font-size: 26px !important; color: #3b4b5e; max-width: 1000px; margin: 0.6em auto 0; }
.reveal .cnnlab-meta { justify-content: center; font-size: 21px; margin-top: 0.8em; }
.reveal .cnnlab-meta-item { align-items: center; }
"""

_SLIDES_TEMPLATE = """
{%- extends 'base.html.j2' -%}
{%- block header -%}
<!DOCTYPE html>
<html lang="{{ resources.language_code }}">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ nb.metadata.get('title', resources.metadata.name) | escape_html_keep_quotes }}</title>
{% for css in resources.inlining.css -%}<style type="text/css">{{ css }}</style>{% endfor %}
{{ resources.include_css("static/index.css") }}
{{ resources.include_css("static/theme-light.css") }}
<style type="text/css">{{ resources.cnnlab.reveal_css }}</style>
{{ resources.include_css("static/custom_reveal.css") }}
<style type="text/css">{{ resources.cnnlab.css }}</style>
</head>
{%- endblock header -%}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<main><div class="reveal"><div class="slides">
{%- endblock body_header -%}
{%- block body_footer -%}
</div></div></main>
{%- endblock body_footer -%}
{%- block footer -%}
<script>{{ resources.cnnlab.reveal_js }}</script>
{% if resources.cnnlab.notes_js %}<script>{{ resources.cnnlab.notes_js }}</script>{% endif %}
<script>
document.querySelectorAll('.cnnlab-title-cell').forEach(function (el) {
  var s = el.closest('section'); if (s) { s.classList.add('cnnlab-title'); }
});
// Shrink figures on a slide whose content is taller than the slide (CSS alone cannot see the
// space left under a slide's text); runs on the visible slide, the only one with a layout.
// Figures never go below MIN_FIGURE px: on a crowded slide the section scrolls instead.
var MIN_FIGURE = 260;
function fitFigures(section) {
  if (!section) { return; }
  var limit = Reveal.getConfig().height;
  var imgs = section.querySelectorAll('.jp-OutputArea-output img');
  for (var k = 0; k < 6 && imgs.length; k++) {
    var over = section.scrollHeight - limit;
    if (over <= 2) { break; }
    imgs.forEach(function (img) { img.style.maxHeight = Math.max(MIN_FIGURE, img.offsetHeight - over) + 'px'; });
  }
}
Reveal.on('ready', function (e) { fitFigures(e.currentSlide); });
Reveal.on('slidechanged', function (e) { fitFigures(e.currentSlide); });
Reveal.initialize({
  controls: true, progress: true, hash: true, center: false,
  transition: "{{ resources.reveal.transition }}",
  slideNumber: {{ (resources.reveal.number or false) | json_dumps }},
  width: {{ resources.reveal.width }}, height: {{ resources.reveal.height }}, margin: 0.04,
  plugins: (typeof RevealNotes !== 'undefined') ? [RevealNotes] : []
});
</script>
</body>
</html>
{%- endblock footer -%}
{%- block markdowncell scoped -%}
{%- if cell.metadata.get('cnnlab_role') == 'title' -%}
<div class="cnnlab-title-cell">{{ super() }}</div>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock markdowncell -%}
"""


def slides_exporter(theme: str = "white") -> SlidesExporter:
    """SlidesExporter with our offline template; code inputs and prompts hidden."""
    return SlidesExporter(
        template_name="reveal",
        template_file="cnnlab_slides.html.j2",
        extra_loaders=[DictLoader({"cnnlab_slides.html.j2": _SLIDES_TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        reveal_theme=theme,
        reveal_transition="none",
        reveal_number="c/t",
        reveal_width="1280",
        reveal_height="720",
    )


def export_slides(
    executed_notebooks: Iterable[Path], slides_dir: Path, meta: Mapping[str, Any], name: str = "cnnlab",
    deck: nbformat.NotebookNode | None = None,
) -> Path:
    """Write <slides_dir>/<name>.html: title slide plus the deck's slide cells, reveal.js inlined.

    `deck` is `deck.deck_notebook(executed_notebooks, meta)`, built here unless the caller has it."""
    notebooks = [Path(p) for p in executed_notebooks]
    slides_dir = Path(slides_dir)
    slides_dir.mkdir(parents=True, exist_ok=True)
    deck = deck if deck is not None else deck_notebook(notebooks, meta)
    first = nbformat.read(notebooks[0], as_version=4) if notebooks else None
    image_dir = source_dir(first, notebooks[0].parent) if first else slides_dir  # for markdown ![](x.png)
    exporter = slides_exporter()
    assets = reveal_assets(exporter.reveal_theme)
    resources = {
        "metadata": {"name": name, "path": str(image_dir)},
        "cnnlab": {"css": SLIDES_CSS, "reveal_css": assets.css, "reveal_js": assets.js, "notes_js": assets.notes_js},
    }
    body, _ = exporter.from_notebook_node(deck, resources=resources)
    out = slides_dir / f"{name}.html"
    out.write_text(strip_network_references(body), encoding="utf-8")
    return out
