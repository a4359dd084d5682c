"""`cnnlab app RUN [RUN ...]`: a local web page to try trained runs on a photo, side by side.

Drop, paste or upload a photo (or click an example test image): every run answers with its top-5
probabilities and a Grad-CAM overlay, so a scratch CNN and a transfer-learned one can be compared
on the same picture. The model work is `predict.py`'s (one code path with `cnnlab predict`); this
module only lays out the page. It runs offline: no analytics, no web fonts, bound to 127.0.0.1 by
default. The first run also answers the API endpoint `/predict` (one image in, its label
confidences out), for `gradio_client`. Gradio is imported only here, only when the app starts.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .data import DataError
from .predict import Run, decode, explain_photo, load_run

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
# A 32-px test image would show as a stamp in the upload box: fit every photo to the box instead.
CSS = "#cnnlab-photo img { width: 100%; height: 100%; object-fit: contain }"


def _gradio():
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read at import: no telemetry, no version check
    import gradio as gr

    return gr


def describe(run: Run, run_dir: Path) -> str:
    """A model's heading: its name, what it is, and its test accuracy from metrics.json when present."""
    ckpt = run.ckpt
    kind = f"{ckpt['arch']} / {ckpt['strategy']}" if ckpt.get("strategy") else f"{ckpt['arch']} (from scratch)"
    side = ckpt.get("image_size") or run.side
    line = f"{kind}, {side} px"
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        line += f", {metrics['test_accuracy']:.1%} test accuracy"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"### {run.name}\n{line}"


def example_images(run: Run, out: Path, count: int = 8) -> list[str]:
    """Up to `count` test images of the run's source (one per class first) as PNGs in `out`;
    none when the source cannot be read here (e.g. CIFAR not downloaded, an archive elsewhere)."""
    from PIL import Image

    from .data import load_dataset

    try:
        data = load_dataset(run.ckpt.get("source", ""), download=False, seed=run.ckpt.get("data", {}).get("seed", 0))
    except (DataError, OSError, RuntimeError, ValueError, KeyError) as err:
        print(f"no example images ({err})")
        return []
    labels = data.test.labels.tolist()
    picked = [labels.index(c) for c in sorted(set(labels))][:count]  # the first test image of each class
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in picked:
        path = out / f"{data.classes[labels[i]]}-{i}.png"
        Image.fromarray(data.test.images[i].permute(1, 2, 0).numpy()).save(path)
        files.append(str(path))
    return files


def build(run_dirs: list[str | Path], device: str | None = None, examples: bool = True):
    """The Gradio Blocks page for these runs (not started): `build(...).launch(**launch_options())`."""
    from .device import pick_device

    dev = pick_device(device)
    run_dirs = [Path(r) for r in run_dirs]
    runs = [load_run(r, dev) for r in run_dirs]  # a bad run fails here, before gradio's import
    gr = _gradio()
    names = [r.name for r in runs]
    for i, r in enumerate(runs):  # two runs called `fast` in different folders still get their own heading
        if names.count(r.name) > 1:
            r.name = f"{run_dirs[i].parent.name}/{r.name}"

    def read(path: str):
        try:
            return decode(path)
        except DataError as err:  # shown on the page as a message, not a stack trace
            raise gr.Error(str(err).replace(str(path), Path(path).name)) from err

    def compare(path: str | None):
        if not path:
            return [None] * (2 * len(runs))
        photo = read(path)
        out = []
        for run in runs:
            top, cam = explain_photo(run, photo)
            out += [{t["class"]: t["probability"] for t in top}, cam]
        return out

    def predict(path: str) -> dict[str, float]:
        """The first run's top-5 classes and probabilities for one image."""
        top, _ = explain_photo(runs[0], read(path))
        return {t["class"]: t["probability"] for t in top}

    with gr.Blocks(title="cnnlab: try a model", analytics_enabled=False) as page:
        gr.Markdown("## cnnlab: what do the models see?\nDrop, paste or upload a photo, or click an example. "
                    "Each model shows its five most likely classes and a Grad-CAM map of where it looked "
                    "for the top one (red: most).")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                photo = gr.Image(type="filepath", label="Photo", sources=["upload", "clipboard"], height=320,
                                 elem_id="cnnlab-photo")
                files = example_images(runs[0], Path(tempfile.mkdtemp(prefix="cnnlab-examples-"))) if examples else []
                if files:
                    gr.Examples(files, inputs=photo, label=f"Test images ({runs[0].ckpt.get('source')})",
                                examples_per_page=len(files))
            outputs = []
            for run, run_dir in zip(runs, run_dirs):
                with gr.Column(scale=1, min_width=240):
                    gr.Markdown(describe(run, run_dir))
                    label = gr.Label(num_top_classes=5, label=f"{run.name}: top 5", show_label=False)
                    cam = gr.Image(label=f"{run.name}: Grad-CAM", type="numpy", interactive=False, height=240)
                    outputs += [label, cam]
        photo.change(compare, inputs=photo, outputs=outputs, api_visibility="private", concurrency_limit=1)
        api_trigger = gr.Button(visible=False)
        api_trigger.click(predict, inputs=photo, outputs=outputs[0], api_name="predict", concurrency_limit=1)
    return page


def launch_options(host: str = "127.0.0.1", port: int | None = 7860) -> dict:
    """`launch()` arguments: this address only, no share link or server-side rendering, system fonts."""
    gr = _gradio()
    return {"server_name": host, "server_port": port, "share": False, "ssr_mode": False, "mcp_server": False,
            "footer_links": ["api"], "css": CSS, "theme": gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)}


def serve(run_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 7860, device: str | None = None) -> None:
    """Build the page and serve it until Ctrl-C."""
    page = build(run_dirs, device)
    print(f"cnnlab app: http://{host}:{port} (Ctrl-C stops it)")
    try:
        page.launch(**launch_options(host, port))
    except OSError as err:
        raise DataError(f"cannot serve on {host}:{port} ({err}): choose another --port") from err


__all__ = ["build", "describe", "example_images", "launch_options", "serve"]
