"""Use a trained run on your own photos: `cnnlab predict RUN IMAGE_OR_FOLDER...` (and the web app).

A photo goes through the run's own preprocessing, read from its `model.pth` alone: decoded with
Pillow as training decodes a folder of photos (`data.readers.bound_image`: EXIF orientation applied,
RGB, shorter side at most `PHOTO_MAX_SIDE`), shorter side resized to the side the training images were
stored at and centre-cropped (`data.fix_size`, as folder photos are stacked for training), then
the same `BatchLoader` resize and mean/std and the same test-time augmentation
(`evaluate.predict_logits`) as the run's evaluation. So a prediction here is the one `cnnlab
evaluate` would make on that image. `cnnlab app` calls these functions too: one code path.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from . import checkpoint, evaluate
from .data import BatchLoader, DataError, Split, fix_size
from .data.readers import IMAGE_EXTENSIONS, PHOTO_MAX_SIDE, bound_image

CKPT_KEYS = ("arch", "classes", "mean", "std", "state_dict")
# what torch.load raises for a damaged file or one it will not unpickle with weights_only
LOAD_ERRORS = (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError,
               IndexError)  # IndexError: the weights-only unpickler on text ("pop from empty list")
CAM_SIDE = 224  # Grad-CAM overlays are drawn at this size at least, so a 32-px input stays readable


@dataclass
class Run:
    """A loaded run: its model in eval mode, checkpoint, and how an image must be prepared for it."""

    name: str
    model: torch.nn.Module
    ckpt: dict
    device: torch.device
    side: int  # photos are cropped to side x side uint8, as the training images were stored
    _cam_layer: torch.nn.Module | None = field(default=None, repr=False)

    @property
    def classes(self) -> list[str]:
        return list(self.ckpt["classes"])

    @property
    def tta(self) -> str | None:
        return self.ckpt.get("config", {}).get("tta")


def stored_side(ckpt: dict) -> int:
    """The side of the run's training images: recorded since `stored_side`, else image_size, else CIFAR's 32."""
    return int(ckpt.get("stored_side") or ckpt.get("image_size") or 32)


def load_run(run: str | Path, device: torch.device | str = "cpu") -> Run:
    """RUN (a run folder, or its model.pth) -> `Run`; a clear DataError for anything that is not a cnnlab run."""
    run = Path(run)
    path = run if run.is_file() else run / "model.pth"
    if not run.exists():
        raise DataError(f"run folder {run} not found: train one with `cnnlab train --out {run}`")
    if not path.is_file():
        raise DataError(f"{run} has no model.pth: train it with `cnnlab train --out {run}`, or give another run folder")
    foreign = f"{path} is not a cnnlab checkpoint (damaged or from elsewhere): retrain with cnnlab train"
    try:
        ckpt = checkpoint.load(path)
    except LOAD_ERRORS as err:  # truncated zip, a pickle weights_only refuses, not a torch file at all
        raise DataError(foreign) from err
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CKPT_KEYS):
        raise DataError(foreign)
    try:
        model, ckpt = checkpoint.load_model(path)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:  # unknown arch, weights that do not fit it
        if ckpt.get("arch") == "custom":  # a model object's run: load_model's message says how to rebuild it
            raise DataError(str(err)) from err
        raise DataError(foreign) from err
    device = torch.device(device)
    model = model.to(device).eval()
    if ckpt.get("config", {}).get("channels_last", True):  # as `cnnlab evaluate` runs it
        model = model.to(memory_format=torch.channels_last)
    name = run.resolve().parent.name if run.is_file() else run.resolve().name
    return Run(name, model, ckpt, device, stored_side(ckpt))


def find_images(inputs: list[str | Path]) -> list[Path]:
    """Files as given, and every image (by extension) under each folder, recursively and sorted."""
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not p.name.startswith("."))
            if not found:
                raise DataError(f"no images found in {item} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise DataError(f"{item} not found: give image files or folders of images")
    return files


def decode(image: str | Path | Image.Image) -> torch.Tensor:
    """A photo (path or PIL image) -> (3, H, W) uint8, upright by its EXIF orientation, in RGB, its shorter
    side at most PHOTO_MAX_SIDE: decoded as training decodes a folder of photos (a JPEG at reduced scale,
    so a batch of phone photos never sits in memory at 12 megapixels each)."""
    try:
        with (image if isinstance(image, Image.Image) else Image.open(image)) as img:
            array = np.asarray(bound_image(img, PHOTO_MAX_SIDE))  # decodes fully: a truncated file fails here
    except UnidentifiedImageError as err:
        raise DataError(f"cannot read image {image}: not an image file (Pillow reads JPEG, PNG, WebP, ...)") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {image}: damaged or unsupported ({err})") from err
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def crop(image: torch.Tensor, side: int) -> torch.Tensor:
    """(3, H, W) uint8 -> (3, side, side): shorter side to `side`, centre crop (training's own `fix_size`)."""
    return fix_size(Split([image], torch.zeros(1, dtype=torch.long)), side).images[0]


@torch.no_grad()
def probabilities(run: Run, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """(N, 3, side, side) uint8 -> (N, classes) probabilities, with the run's test-time augmentation."""
    channels_last = run.ckpt.get("config", {}).get("channels_last", True)
    loader = BatchLoader(Split(images, torch.zeros(len(images), dtype=torch.long)), batch_size, run.ckpt["mean"],
                         run.ckpt["std"], run.device, image_size=run.ckpt.get("image_size"), channels_last=channels_last)
    return torch.softmax(evaluate.predict_logits(run.model, loader, tta=run.tta).float(), 1)


def top_k(probs: torch.Tensor, classes: list[str], k: int = 5) -> list[dict]:
    """One image's [{"class": NAME, "probability": P}, ...], most likely first."""
    p, idx = probs.topk(min(k, len(classes)))
    return [{"class": classes[i], "probability": round(float(q), 6)} for q, i in zip(p.tolist(), idx.tolist())]


def cam_overlays(run: Run, images: torch.Tensor, targets: list[int], shown: torch.Tensor | None = None) -> list[np.ndarray]:
    """Grad-CAM overlays (H, W, 3 uint8) for class `targets[i]` of `images[i]`, drawn on `shown` (larger
    crops of the same photos) when given, else on the images themselves."""
    from . import explain  # grad-cam (and OpenCV) take seconds to import: only when a map is asked for

    if run._cam_layer is None:
        run._cam_layer = explain.gradcam_layer(run.model, run.ckpt.get("image_size") or run.side)
    x = explain.prepare(images, run.ckpt, run.device)
    with torch.enable_grad():
        cams = explain.gradcam(run.model, x, targets, run._cam_layer)
    shown = images if shown is None else shown
    side = shown.shape[-1]
    cams = torch.nn.functional.interpolate(torch.from_numpy(cams)[:, None], size=(side, side), mode="bilinear",
                                           align_corners=False)[:, 0].clamp(0, 1).numpy()
    return explain.overlay(shown, cams)


def explain_photo(run: Run, photo: torch.Tensor, k: int = 5) -> tuple[list[dict], np.ndarray]:
    """One decoded photo -> (its top-k, a Grad-CAM overlay of the top class): what the app shows per model."""
    images = crop(photo, run.side)[None]
    probs = probabilities(run, images)[0]
    shown = crop(photo, max(CAM_SIDE, run.side))[None]
    return top_k(probs, run.classes, k), cam_overlays(run, images, [int(probs.argmax())], shown)[0]


def predict_files(run: Run, files: list[Path], k: int = 5, cam_dir: Path | None = None, batch_size: int = 64,
                  progress: bool = True) -> list[dict]:
    """Top-k per file, in batches (a progress bar for more than one); Grad-CAM PNGs into `cam_dir`."""
    results = []
    if cam_dir is not None:
        cam_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(files), desc=f"predicting ({run.name})", unit="img", disable=not progress or len(files) < 2)
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        photos = [decode(f) for f in chunk]
        images = torch.stack([crop(p, run.side) for p in photos])
        shown = torch.stack([crop(p, max(CAM_SIDE, run.side)) for p in photos]) if cam_dir is not None else None
        del photos
        probs = probabilities(run, images)
        for f, p in zip(chunk, probs):
            results.append({"image": str(f), "top": top_k(p, run.classes, k)})
        if cam_dir is not None:
            for j, (f, ov) in enumerate(zip(chunk, cam_overlays(run, images, probs.argmax(1).tolist(), shown))):
                Image.fromarray(ov).save(cam_dir / f"{start + j:04d}-{f.stem}-cam.png")
        bar.update(len(chunk))
    bar.close()
    return results


def format_results(results: list[dict]) -> str:
    lines = []
    for r in results:
        lines.append(r["image"])
        lines += [f"  {i}. {t['class']:<20} {t['probability']:7.2%}" for i, t in enumerate(r["top"], 1)]
    return "\n".join(lines)


__all__ = ["Run", "cam_overlays", "crop", "decode", "explain_photo", "find_images", "format_results", "load_run", "predict_files",
           "probabilities", "stored_side", "top_k"]
