"""tqdm progress widgets in executed notebooks -> the finished bar as plain text.

In a kernel, `tqdm.auto` draws a Jupyter widget. The executed copy keeps it as a widget view whose
text fallback is the bar at 0 %, and the bar's final state only in the notebook's widget-state
metadata, which the offline report and decks cannot render (the widget JavaScript lives on a CDN).
So the exports would show an empty box where the reader wants "train fast: 100% 10/10 [06:38]".
"""

from __future__ import annotations

import html

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BAR_WIDTH = 10
_TQDM_PARTS = ["HTMLModel", "FloatProgressModel", "HTMLModel"]  # tqdm.notebook: prefix, bar, counts and rate


def _model(state: dict, ref: object) -> dict:
    return state.get(str(ref).removeprefix("IPY_MODEL_"), {}) if ref else {}


def bar_text(model_id: str, state: dict) -> str | None:
    """The finished tqdm bar as a terminal prints it, or None for a bar hidden at its end
    (`leave=False`), a widget that is not a tqdm bar, or one whose state was not saved."""
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    layout = _model(state, box["state"].get("layout")).get("state", {})
    if layout.get("visibility") == "hidden" or layout.get("display") == "none":
        return None
    parts = [_model(state, ref) for ref in box["state"].get("children", [])]
    if [p.get("model_name") for p in parts] != _TQDM_PARTS:
        return None
    prefix, bar, counts = (p["state"] for p in parts)
    fraction = bar.get("value", 0.0) / bar["max"] if bar.get("max") else 0.0
    filled = min(BAR_WIDTH, max(0, round(fraction * BAR_WIDTH)))
    text = f"{prefix.get('value', '')}|{'█' * filled}{' ' * (BAR_WIDTH - filled)}|{counts.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ")  # tqdm pads with figure spaces in HTML


def progress_widgets_to_text(nb: nbformat.NotebookNode) -> int:
    """Replace each widget output by its finished bar as stderr text (hidden or unknown widgets are
    dropped: offline they render as nothing anyway). Returns how many outputs were replaced or dropped."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    changed = 0
    for cell in nb.cells:
        if not cell.get("outputs"):
            continue
        kept = []
        for out in cell.outputs:
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                kept.append(out)
                continue
            changed += 1
            text = bar_text(view.get("model_id", ""), state)
            if text is not None:
                kept.append(nbformat.v4.new_output("stream", name="stderr", text=text + "\n"))
        cell.outputs = kept
    return changed
