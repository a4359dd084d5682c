"""The run facts (data, device, profile, date, wall time) shown on every report page and the title slide.

One place formats them so the HTML report, the reveal.js deck and the PowerPoint deck agree.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

# Known keys first, in this order; any other key in `meta` follows under its own name.
_LABELS = {
    "commit": "Commit",
    "data": "Data",
    "device": "Device",
    "profile": "Profile",
    "date": "Date",
    "wall_time_s": "Total wall time",
    "read_back": "Runs read back",
}
_HIDDEN = {"title", "subtitle", "summary"}

DEFAULT_TITLE = "CNN from scratch vs transfer learning"


def format_seconds(seconds: float) -> str:
    """Human wall time: '42.1 s', '3 min 05 s', '1 h 02 min'."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _format_value(key: str, value: Any) -> str:
    if key.endswith("_s") and isinstance(value, (int, float)):
        return format_seconds(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def meta_items(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) pairs in display order; empty values are left out."""
    keys = [k for k in _LABELS if k in meta] + [k for k in meta if k not in _LABELS and k not in _HIDDEN]
    return [
        (_LABELS.get(k, k.replace("_", " ").capitalize()), _format_value(k, meta[k]))
        for k in keys
        if meta[k] not in (None, "")
    ]


def title_of(meta: Mapping[str, Any]) -> str:
    return str(meta.get("title") or DEFAULT_TITLE)


def title_notes(meta: Mapping[str, Any]) -> str:
    """The title slide's speaker notes: the answer, and where the numbers come from."""
    facts = "; ".join(f"{label}: {value}" for label, value in meta_items(meta))
    answer = f" The short answer: {meta['subtitle']}" if meta.get("subtitle") else ""
    return f"Ask the question first and let the class guess.{answer} Where the numbers come from: {facts}."


def header_html(meta: Mapping[str, Any]) -> str:
    """A self-styled box (class cnnlab-meta); pages include HEADER_CSS once."""
    rows = "".join(
        f'<div class="cnnlab-meta-item"><span class="cnnlab-meta-label">{html.escape(label)}</span>'
        f'<span class="cnnlab-meta-value">{html.escape(value)}</span></div>'
        for label, value in meta_items(meta)
    )
    return f'<div class="cnnlab-meta">{rows}</div>'


HEADER_CSS = """
.cnnlab-meta { display: flex; flex-wrap: wrap; gap: 0.4em 1.6em; margin: 0.6em 0 1em;
  padding: 0.6em 1em; border: 1px solid #c9d3e0; border-left: 5px solid #3b6ea5;
  border-radius: 4px; background: #f3f6fa; font-family: system-ui, sans-serif; font-size: 0.95em; }
.cnnlab-meta-item { display: flex; flex-direction: column; }
.cnnlab-meta-label { font-size: 0.75em; text-transform: uppercase; letter-spacing: 0.05em; color: #5a6b80; }
.cnnlab-meta-value { font-weight: 600; color: #1d2a3a; }
"""
