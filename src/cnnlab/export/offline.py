"""Keep exported HTML self-contained: local reveal.js assets, and a guard against network references.

Reports and decks are opened from USB sticks and offline classrooms, so nothing may load from a CDN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

# <script src="http..."> / <link href="//cdn..."> and the like: tags that would load something remotely.
_REMOTE_TAG = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//[^>]*>(?:\s*</script>)?",
    re.IGNORECASE,
)
# CSS @import of a remote stylesheet (e.g. web fonts).
_REMOTE_IMPORT = re.compile(r"@import\s+url\(\s*[\"']?(?:https?:)?//[^)]*\)\s*;?", re.IGNORECASE)
_SOURCE_MAP = re.compile(r"^\s*(?://|/\*)# sourceMappingURL=.*$", re.MULTILINE)
_CSS_IMPORT = re.compile(r"^\s*@import\s+url\([^)]*\)\s*;?\s*$", re.MULTILINE)


def network_references(html: str) -> list[str]:
    """Tags and imports that would fetch from the network (empty for a self-contained page)."""
    return _REMOTE_TAG.findall(html) + _REMOTE_IMPORT.findall(html)


def strip_network_references(html: str) -> str:
    """Last-line safety net after the templates: drop anything that would still reach the network."""
    return _REMOTE_IMPORT.sub("", _REMOTE_TAG.sub("", html))


def inline_safe_js(code: str) -> str:
    """Script text that can sit inside <script>...</script> without closing it early."""
    return _SOURCE_MAP.sub("", code).replace("</script", "<\\/script")


@dataclass(frozen=True)
class RevealAssets:
    js: str
    css: str  # reveal.css followed by the theme
    notes_js: str  # speaker-notes plugin ('' when absent)


def reveal_dist_candidates() -> list[Path]:
    """Where a reveal.js dist/ may be: sphinx-revealjs' bundled copy, then an npm install."""
    found: list[Path] = []
    spec = find_spec("sphinx_revealjs")
    if spec and spec.origin:
        pkg = Path(spec.origin).parent
        found += [pkg / "_static/revealjs/dist", pkg / "themes/sphinx_revealjs/static/revealjs/dist"]
    here = Path.cwd()
    found += [d / "node_modules/reveal.js/dist" for d in (here, *here.parents)]
    return found


@lru_cache(maxsize=4)
def reveal_assets(theme: str = "white") -> RevealAssets:
    """reveal.js, its CSS and a theme, read from the first local dist/ found."""
    for dist in reveal_dist_candidates():
        if (dist / "reveal.js").is_file() and (dist / "reveal.css").is_file():
            break
    else:
        raise FileNotFoundError(
            "reveal.js not found: install sphinx-revealjs (pip) or reveal.js (npm install reveal.js)"
        )
    theme_file = dist / "theme" / f"{theme}.css"
    if not theme_file.is_file():
        raise FileNotFoundError(f"reveal.js theme {theme!r} not in {dist / 'theme'}")
    # Theme @imports point at font files next to the theme: not there once inlined, so drop them.
    css = _CSS_IMPORT.sub("", (dist / "reveal.css").read_text() + "\n" + theme_file.read_text())
    notes = dist.parent / "plugin/notes/notes.js"
    return RevealAssets(
        js=inline_safe_js((dist / "reveal.js").read_text()),
        css=_SOURCE_MAP.sub("", css),
        notes_js=inline_safe_js(notes.read_text()) if notes.is_file() else "",
    )
