"""Your own photos as a first-class source: any size decodes bounded, upright and cached; every scratch
model trains on them; `cnnlab predict` prepares a photo as training did; a backbone sees its native size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab import checkpoint
from cnnlab.cli import main
from cnnlab.data import load_dataset, readers
from cnnlab.models.backbones import BACKBONES, LITE_PACKAGES, preprocessing
from cnnlab.transfer import transfer_run

pytestmark = pytest.mark.usefixtures("one_thread")
ORIENTATION = 0x0112


def _smooth(rng: np.random.Generator, h: int, w: int, colour: int) -> np.ndarray:
    """A smooth random picture (a blurred 4x4 grid of colours, brighter for higher `colour`): JPEG-friendly."""
    coarse = rng.integers(0, 120, (4, 4, 3), dtype=np.uint8) + np.uint8(colour)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR))


def photo_folder(root: Path, per_class=(6, 2), sizes=((300, 200), (180, 320)), classes=("day", "night")) -> Path:
    """train/ and test/ folders of JPEGs whose sizes cycle through `sizes` (height, width)."""
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = sizes[i % len(sizes)]
                Image.fromarray(_smooth(rng, h, w, 110 * c)).save(root / split / cls / f"{i:02d}.jpg", quality=90)
    return root


@pytest.fixture
def large_photos(tmp_path) -> Path:
    """Two classes of 1200x900 and 900x1600 JPEGs; train/a/rotated.jpg is stored landscape with a bright
    left half and an EXIF tag saying "rotate 90 degrees clockwise to show": upright, bright on top."""
    root = photo_folder(tmp_path / "large", per_class=(2, 1), sizes=((900, 1200), (1600, 900)), classes=("a", "b"))
    stored = np.full((900, 1200, 3), 30, np.uint8)
    stored[:, :600] = 220
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(stored).save(root / "train" / "a" / "rotated.jpg", quality=90, exif=exif.tobytes())
    return root


def test_the_cap_covers_every_native_input_size():
    """Photos are cached large enough for every backbone's native input: none is ever upsampled to it."""
    assert readers.PHOTO_MAX_SIDE >= max(preprocessing(b)["default_input_size"] for b in LITE_PACKAGES)
    assert readers.PHOTO_MAX_SIDE >= 224 and set(LITE_PACKAGES) <= set(BACKBONES)


def test_large_photos_load_capped_upright_and_are_cached_once(large_photos, monkeypatch):
    data = load_dataset(large_photos, val_size=0)
    cap = readers.PHOTO_MAX_SIDE
    images = [img for split in (data.train, data.val, data.test) for img in split.images]
    assert len(images) == 7 and all(min(img.shape[-2:]) == cap for img in images)  # the shorter side, exactly
    # aspect kept: 1200x900 landscape, 900x1600 portrait, and the rotated 1200x900 shown as 900x1200 portrait
    assert sorted({tuple(img.shape[-2:]) for img in images}) == [(cap, 347), (347, cap), (462, cap)]
    [rotated] = [img for img in data.train.images if tuple(img.shape[-2:]) == (347, cap)]
    top, bottom = rotated[:, :170].float().mean(), rotated[:, 177:].float().mean()
    assert top > 200 and bottom < 50  # upright: the stored left (bright) half is on top

    def no_decoding(*args, **kwargs):
        raise AssertionError("the second load must come from the cache")

    monkeypatch.setattr(readers, "decode_image", no_decoding)
    again = load_dataset(large_photos, val_size=0)
    assert again.cache_path == data.cache_path and again.cache_path.stat().st_size < 7 * 462 * cap * 3  # full size: 7 x 3.2 MB
    assert all(torch.equal(a, b) for a, b in zip(again.train.images, data.train.images))


def test_max_side_is_configurable_and_keys_the_cache(large_photos):
    small = load_dataset(large_photos, val_size=0, max_side=100)
    assert all(min(img.shape[-2:]) == 100 for img in small.train.images)
    assert small.cache_path != load_dataset(large_photos, val_size=0).cache_path
    full = readers.decode_image(large_photos / "train" / "a" / "00.jpg", "x", None)
    assert tuple(full.shape) == (3, 900, 1200)  # None keeps every pixel


def test_photos_decode_on_threads_in_order(large_photos, monkeypatch):
    """Photo-sized files decode on DECODE_WORKERS threads; the order (and so the labels) is the files'."""
    monkeypatch.setattr(readers, "DECODE_WORKERS", 2)
    threaded = readers.read_folder(large_photos)
    monkeypatch.setattr(readers, "DECODE_WORKERS", 1)
    single = readers.read_folder(large_photos)
    for name in ("train", "test"):
        assert threaded.splits[name].labels == single.splits[name].labels
        assert all(torch.equal(a, b) for a, b in zip(threaded.splits[name].images, single.splits[name].images))


@pytest.fixture
def photos(tmp_path) -> Path:
    return photo_folder(tmp_path / "photos")


@pytest.mark.parametrize("model", ["baseline", "fast"])
def test_a_scratch_model_trains_on_mixed_size_photos_and_predict_matches_its_test_logits(model, photos, tmp_path,
                                                                                       capsys):
    out = tmp_path / model
    assert main(["train", "--source", str(photos), "--model", model, "--profile", "smoke", "--epochs", "1",
                 "--val-size", "2", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "image size: 64 px" in printed and "test accuracy" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    ckpt = checkpoint.load(out / "model.pth")
    assert metrics["image_size"] == 64 and ckpt["stored_side"] == 64 and metrics["test_images"] == 4
    # `cnnlab predict` on the test photos: decoded, capped and cropped as training stacked them
    files = sorted(str(p) for p in (photos / "test").rglob("*.jpg"))
    assert main(["predict", str(out), *files, "--json", "--top-k", "2", "--device", "cpu"]) == 0
    got = json.loads(capsys.readouterr().out)
    saved = torch.softmax(checkpoint.load(out / "test_logits.pt")["logits"].float(), 1)
    for r, p in zip(got, saved):
        probs = {t["class"]: t["probability"] for t in r["top"]}
        assert np.allclose([probs[c] for c in ckpt["classes"]], p.numpy(), atol=1e-3)
    assert main(["evaluate", str(out), "--device", "cpu"]) == 0  # re-evaluation stacks them the same way
    assert json.loads((out / "eval.json").read_text())["test_accuracy"] == metrics["test_accuracy"]


def test_image_size_sets_the_side_for_a_scratch_model_and_fast_sizes_scale_with_it(photos, tmp_path, capsys):
    from cnnlab.runs import scaled_sizes

    assert scaled_sizes((16, 24, 32), 64) == (32, 48, 64) and scaled_sizes((16, 24, 32), 32) == (16, 24, 32)
    out = tmp_path / "r48"
    assert main(["train", "--source", str(photos), "--model", "residual", "--profile", "smoke", "--epochs", "1",
                 "--val-size", "2", "--image-size", "48", "--device", "cpu", "--out", str(out)]) == 0
    assert "image size: 48 px (--image-size)" in capsys.readouterr().out
    assert checkpoint.load(out / "model.pth")["stored_side"] == 48
    assert json.loads((out / "metrics.json").read_text())["image_size"] == 48


def test_fast_trains_its_progressive_sizes_scaled_to_the_photo_side(photos, tmp_path):
    from cnnlab.runs import train_run

    m = train_run("fast", str(photos), tmp_path / "fast", profile="smoke", epochs=2, device="cpu", progress=False,
                  val_size=2, epoch_image_sizes=(16, 24, 32))
    history = json.loads((tmp_path / "fast" / "history.json").read_text())
    assert [h["image_size"] for h in history] == [32, 64] and tuple(m["config"]["epoch_image_sizes"]) == (32, 48, 64)


def test_a_backbone_sees_photos_at_its_native_size_unless_told(photos, tmp_path, capsys):
    m = transfer_run("efficientnet_lite0", "frozen", str(photos), tmp_path / "native", profile="smoke", device="cpu",
                     progress=False, val_size=2, epochs=2)
    assert "image size: 224 px (efficientnet_lite0's native input size" in capsys.readouterr().out
    stored = json.loads((tmp_path / "native" / "metrics.json").read_text())
    assert m["image_size"] == stored["image_size"] == 224
    assert checkpoint.load(tmp_path / "native" / "model.pth")["stored_side"] == 224
    m = transfer_run("efficientnet_lite0", "frozen", str(photos), tmp_path / "told", profile="smoke", device="cpu",
                     progress=False, val_size=2, epochs=2, image_size=96)
    assert "image size: 96 px (--image-size)" in capsys.readouterr().out
    assert json.loads((tmp_path / "told" / "metrics.json").read_text())["image_size"] == 96


def test_cifar_sized_images_keep_the_recipes_sizes(tmp_path, capsys):
    from .conftest import make_folder

    tiny = make_folder(tmp_path / "tiny")  # 32x32 PNGs: CIFAR-sized
    m = transfer_run("efficientnet_lite0", "frozen", str(tiny), tmp_path / "cifar", profile="smoke", device="cpu",
                     progress=False, epochs=1, val_size=3)
    assert m["image_size"] == 64 and "the frozen recipe's size for CIFAR-sized images" in capsys.readouterr().out
