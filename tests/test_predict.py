"""`cnnlab predict`: a trained run on photos of any size and format, through its own preprocessing."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab import checkpoint, predict
from cnnlab.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny baseline run on fake data (with flip test-time augmentation), trained once for the module."""
    from cnnlab.runs import train_run

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(home))
        out = home / "run"
        train_run("baseline", "fake", out, profile="smoke", epochs=1, device="cpu", progress=False, tta="flip")
    return out


def _photo(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def photos(tmp_path) -> dict[str, object]:
    """PNG, JPEG and WebP files of different sizes, and a JPEG whose EXIF says "rotate 90 degrees clockwise"."""
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    files = {"png": folder / "wide.png", "jpeg": folder / "tall.jpg", "webp": folder / "nested" / "small.webp"}
    Image.fromarray(_photo(0, 48, 64)).save(files["png"])
    Image.fromarray(_photo(1, 300, 200)).save(files["jpeg"], quality=90)
    Image.fromarray(_photo(2, 20, 50)).save(files["webp"], lossless=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels are shown rotated 90 degrees clockwise
    files["exif"] = folder / "rotated.jpg"
    Image.fromarray(_photo(3, 40, 80)).save(files["exif"], quality=95, exif=exif.tobytes())
    return {"folder": folder, **files}


def _json(capsys, argv: list[str]) -> list[dict]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_every_image_with_its_top_k(run_dir, photos, capsys):
    files = [str(photos[k]) for k in ("png", "jpeg", "webp", "exif")]
    out = _json(capsys, ["predict", str(run_dir), *files, "--json", "--top-k", "3", "--device", "cpu"])
    classes = checkpoint.load(run_dir / "model.pth")["classes"]
    assert [r["image"] for r in out] == files
    for r in out:
        assert set(r) == {"image", "top"} and len(r["top"]) == 3
        assert all(set(t) == {"class", "probability"} and t["class"] in classes for t in r["top"])
        probs = [t["probability"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-5


def test_top1_is_the_argmax_of_the_runs_own_logits(run_dir, photos, capsys):
    """Decoded the same way (EXIF, RGB, shorter side to 32 px, centre crop), normalised by hand,
    the model's flip-averaged logits give the class and probabilities `cnnlab predict` prints."""
    model, ckpt = checkpoint.load_model(run_dir / "model.pth")
    files = [photos[k] for k in ("png", "jpeg", "webp", "exif")]
    out = _json(capsys, ["predict", str(run_dir), *map(str, files), "--json", "--top-k", "10", "--device", "cpu"])
    for f, r in zip(files, out):
        x = predict.crop(predict.decode(f), 32)[None].float() / 255
        x = (x - torch.tensor(ckpt["mean"]).view(1, 3, 1, 1)) / torch.tensor(ckpt["std"]).view(1, 3, 1, 1)
        with torch.no_grad():
            probs = torch.softmax(0.5 * (model(x) + model(x.flip(3))), 1)[0]
        assert r["top"][0]["class"] == ckpt["classes"][int(probs.argmax())]
        got = {t["class"]: t["probability"] for t in r["top"]}
        assert np.allclose([got[c] for c in ckpt["classes"]], probs.numpy(), atol=1e-4)


def test_predict_reproduces_the_runs_test_logits(run_dir, tmp_path, capsys):
    """The run's own test images, saved as PNGs, get the probabilities its evaluation stored."""
    from cnnlab.runs import load_data

    data = load_data("fake", "smoke")
    saved = torch.softmax(checkpoint.load(run_dir / "test_logits.pt")["logits"], 1)
    files = []
    for i in (0, 57, 123):
        files.append(tmp_path / f"test-{i}.png")
        Image.fromarray(data.test.images[i].permute(1, 2, 0).numpy()).save(files[-1])
    out = _json(capsys, ["predict", str(run_dir), *map(str, files), "--json", "--top-k", "10", "--device", "cpu"])
    for i, r in zip((0, 57, 123), out):
        got = {t["class"]: t["probability"] for t in r["top"]}
        assert np.allclose([got[c] for c in data.classes], saved[i].numpy(), atol=1e-4)


def test_exif_orientation_is_applied(photos, run_dir, tmp_path, capsys):
    with Image.open(photos["exif"]) as img:
        stored = np.asarray(img.convert("RGB"))  # the pixels as stored, before the EXIF rotation
    upright = predict.decode(photos["exif"]).permute(1, 2, 0).numpy()
    assert upright.shape == (80, 40, 3) and np.array_equal(upright, np.rot90(stored, k=-1))
    Image.fromarray(upright).save(tmp_path / "upright.png")
    a, b = _json(capsys, ["predict", str(run_dir), str(photos["exif"]), str(tmp_path / "upright.png"), "--json"])
    assert a["top"] == b["top"]


def test_folders_are_searched_recursively_with_a_progress_bar_and_cams(run_dir, photos, tmp_path, capsys):
    (photos["folder"] / "notes.md").write_text("not an image, and not picked up: wrong extension")
    cams = tmp_path / "cams"
    assert main(["predict", str(run_dir), str(photos["folder"]), "--cam", str(cams), "--top-k", "2"]) == 0
    out, err = capsys.readouterr()
    for name in ("wide.png", "tall.jpg", "small.webp", "rotated.jpg"):
        assert name in out
    assert "predicting" in err and "4/4" in err  # tqdm on stderr, stdout stays clean for --json
    pngs = sorted(cams.glob("*.png"))
    assert len(pngs) == 4
    with Image.open(pngs[0]) as img:
        assert img.mode == "RGB" and img.size == (predict.CAM_SIDE, predict.CAM_SIDE)


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_missing_run_folder_or_model(photos, tmp_path, capsys):
    err = _error(capsys, ["predict", str(tmp_path / "no-such-run"), str(photos["png"])])
    assert "no-such-run" in err and "not found" in err
    (tmp_path / "empty-run").mkdir()
    assert "has no model.pth" in _error(capsys, ["predict", str(tmp_path / "empty-run"), str(photos["png"])])


def test_a_text_file_is_named_as_not_an_image(run_dir, tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("these are notes, not a photo")
    err = _error(capsys, ["predict", str(run_dir), str(bad)])
    assert str(bad) in err and "not an image" in err


def test_a_folder_without_images(run_dir, tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hello")
    assert "no images found" in _error(capsys, ["predict", str(run_dir), str(tmp_path / "docs")])


@pytest.mark.parametrize("kind", ["truncated", "foreign dict", "not a dict"])
def test_a_model_file_that_is_not_a_cnnlab_checkpoint(run_dir, photos, tmp_path, capsys, kind):
    fake = tmp_path / "fake-run"
    fake.mkdir()
    if kind == "truncated":
        data = (run_dir / "model.pth").read_bytes()
        (fake / "model.pth").write_bytes(data[: len(data) // 2])
    else:
        buf = io.BytesIO()
        torch.save({"weights": torch.randn(3, 3), "epoch": 4} if kind == "foreign dict" else [torch.zeros(2)], buf)
        (fake / "model.pth").write_bytes(buf.getvalue())
    err = _error(capsys, ["predict", str(fake), str(photos["png"])])
    assert f"{fake / 'model.pth'} is not a cnnlab checkpoint (damaged or from elsewhere): retrain with cnnlab train" in err


def test_an_older_checkpoint_without_stored_side_falls_back_to_32(run_dir, tmp_path, photos, capsys):
    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old)
    ckpt = checkpoint.load(old / "model.pth")
    del ckpt["stored_side"]
    checkpoint.save_atomic(ckpt, old / "model.pth")
    assert predict.load_run(old).side == 32
    a = _json(capsys, ["predict", str(old), str(photos["jpeg"]), "--json"])
    b = _json(capsys, ["predict", str(run_dir), str(photos["jpeg"]), "--json"])
    assert a[0]["top"] == b[0]["top"]
