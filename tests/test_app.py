"""`cnnlab app`: the Gradio page answers `/predict` as `cnnlab predict` does, and renders offline."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main

pytest.importorskip("gradio")
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # gradio's own pandas calls


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two runs (a tiny baseline and a renamed copy) served on a free loopback port for the module."""
    from cnnlab import app
    from cnnlab.runs import train_run

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(home))
        mp.setenv("GRADIO_TEMP_DIR", str(home / "gradio"))
        first = home / "scratch-baseline"
        train_run("baseline", "fake", first, profile="smoke", epochs=1, device="cpu", progress=False)
        second = home / "baseline-copy"
        shutil.copytree(first, second)
        page = app.build([first, second], device="cpu")
        port = _free_port()
        page.launch(**app.launch_options("127.0.0.1", port), prevent_thread_lock=True, quiet=True)
        try:
            yield {"url": f"http://127.0.0.1:{port}/", "runs": [first, second]}
        finally:
            page.close()


def test_api_predict_matches_cnnlab_predict(served, tmp_path, capsys):
    from gradio_client import Client, handle_file

    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (120, 90, 3), dtype=np.uint8)).save(photo)
    result = Client(served["url"], verbose=False).predict(handle_file(str(photo)), api_name="/predict")
    assert main(["predict", str(served["runs"][0]), str(photo), "--json", "--device", "cpu"]) == 0
    expected = json.loads(capsys.readouterr().out)[0]["top"]
    assert result["label"] == expected[0]["class"]
    got = {c["label"]: c["confidence"] for c in result["confidences"]}
    assert got == pytest.approx({t["class"]: t["probability"] for t in expected}, abs=1e-5)


def test_app_refuses_a_missing_run_with_a_message(tmp_path, capsys):
    assert main(["app", str(tmp_path / "nothing-here")]) == 2
    err = capsys.readouterr().err
    assert "nothing-here" in err and "Traceback" not in err


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def test_page_renders_offline_with_upload_area_and_model_names(served, tmp_path):
    """Headless Chromium with every host but loopback unresolvable: the JS-rendered page still shows
    the upload area and each model's heading (no CDN, no web fonts needed)."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=15000",
           "--dump-dom", served["url"]]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
    assert "Drop Image Here" in dom and 'type="file"' in dom  # the upload area
    for run in served["runs"]:
        assert f"<h3>{run.name}</h3>" in dom
    assert "Test images (fake)" in dom  # the examples from the run's test split
