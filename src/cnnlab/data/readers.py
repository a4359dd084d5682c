"""Readers turn one kind of source into decoded uint8 images, labels and class names.

Every reader returns a `RawData`: per split, a list of (C, H, W) uint8 tensors (sizes may
differ for folder images) and a list of int labels. Caching, validation splits and
statistics live in `dataset.py`, so a reader only has to decode.
"""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from .errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SPLIT_DIRS = ("train", "val", "test")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# Photos are decoded straight to this size: shorter side at most PHOTO_MAX_SIDE px, aspect kept. It is the
# largest input any recipe feeds a network photos at (EfficientNet-Lite2's native 260 px; Lite0 224, Lite1
# 240, the torchvision backbones 224; the scratch nets 64), so no photo is ever upsampled for a network,
# while a 12-megapixel phone photo (36 MB decoded) is stored as ~270 kB: 1,000 photos cache in ~0.3 GB.
PHOTO_MAX_SIDE = 260
EXIF_ORIENTATION = 0x0112
DECODE_WORKERS = min(2, os.cpu_count() or 1)  # Pillow releases the GIL while it decodes and resizes
# Sources whose image files average at least this many bytes decode on DECODE_WORKERS threads. CIFAR-sized
# files (1-3 kB) decode faster than a thread hand-off, so they keep the one-thread loop.
PARALLEL_MIN_BYTES = 64 * 1024


@dataclass
class RawSplit:
    images: list[torch.Tensor] = field(default_factory=list)  # each (3, H, W) uint8
    labels: list[int] = field(default_factory=list)


@dataclass
class RawData:
    classes: list[str]
    splits: dict[str, RawSplit]  # keys among train / val / test


def bound_image(img: Image.Image, max_side: int | None) -> Image.Image:
    """Upright (EXIF orientation applied) RGB, shorter side at most `max_side` (aspect kept).

    A JPEG larger than that is decoded at 1/2, 1/4 or 1/8 scale by its DCT (`Image.draft`, never
    below the target), so a 12-megapixel photo never exists in memory at full size; a smaller image
    (CIFAR's 32 px) is decoded as it is."""
    large = max_side is not None and min(img.size) > max_side
    if large and img.format == "JPEG":
        scale = max_side / min(img.size)
        img.draft("RGB", (max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    img.load()  # force the full decode now so truncated files fail here, not later
    if img.getexif().get(EXIF_ORIENTATION, 1) != 1:  # as a phone shows it; cheap when there is no EXIF
        img = ImageOps.exif_transpose(img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if max_side is not None and min(img.size) > max_side:
        scale = max_side / min(img.size)
        size = (max(max_side, round(img.width * scale)), max(max_side, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)  # antialiased; reduce() first
    return img


def decode_image(data: bytes | Path, where: str, max_side: int | None = None) -> torch.Tensor:
    """Decode one image file to a (3, H, W) uint8 tensor, upright by its EXIF orientation, its shorter
    side at most `max_side` (None: as stored); a clear error names the file."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            array = np.asarray(bound_image(img, max_side))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {where}: {err}. Delete or replace this file and run again.") from err
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _decoded(items: Iterable[tuple[str, str, str, Callable[[], bytes | Path]]], where: str,
             max_side: int | None, workers: int):
    """(split, class, image) for each item, in order. With `workers` > 1 the decoding runs on a thread
    pool a few images ahead (a bounded window, so memory stays bounded); `load` (reading an archive
    member) stays on this thread, as tarfile is not thread-safe."""
    def decode(name: str, data: bytes | Path) -> torch.Tensor:
        return decode_image(data, f"{where}:{name}", max_side)

    if workers <= 1:
        for split, cls, name, load in items:
            yield split, cls, decode(name, load())
        return
    with ThreadPoolExecutor(workers) as pool:
        window: deque = deque()
        for split, cls, name, load in items:
            window.append((split, cls, pool.submit(decode, name, load())))
            if len(window) >= 4 * workers:
                split, cls, image = window.popleft()
                yield split, cls, image.result()
        while window:
            split, cls, image = window.popleft()
            yield split, cls, image.result()


def _is_image(name: str) -> bool:
    base = PurePosixPath(name).name
    return not base.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def _assemble(items: Iterable[tuple[str, str, str, Callable[[], bytes | Path]]], total: int,
              class_dirs: dict[str, set[str]], where: str, desc: str, max_side: int | None = PHOTO_MAX_SIDE,
              total_bytes: int = 0) -> RawData:
    """Check the layout, then decode (split, class, name, loader) items with one progress bar: on
    DECODE_WORKERS threads when the files are photo-sized (`total_bytes` of them in all)."""
    splits_present = [s for s in SPLIT_DIRS if s in class_dirs]
    if "train" not in class_dirs or len(splits_present) < 2:
        raise DataError(
            f"{where} does not have the expected layout: it needs train/<class>/ images plus val/<class>/ "
            f"or test/<class>/ images (found top-level folders: {sorted(class_dirs) or 'none'})."
        )
    classes = sorted(class_dirs["train"])
    for split in splits_present[1:]:
        if set(class_dirs[split]) != set(classes):
            only_train = sorted(set(classes) - class_dirs[split])
            only_other = sorted(class_dirs[split] - set(classes))
            raise DataError(
                f"{where}: class folders differ between train/ and {split}/ "
                f"(only in train: {only_train or '-'}; only in {split}: {only_other or '-'}). "
                "Every split needs the same class folders."
            )
    index = {c: i for i, c in enumerate(classes)}
    raw = RawData(classes, {s: RawSplit() for s in splits_present})
    counts = {(s, c): 0 for s in splits_present for c in classes}
    workers = DECODE_WORKERS if total and total_bytes / total >= PARALLEL_MIN_BYTES else 1
    decoded = _decoded(items, where, max_side, workers)
    for split, cls, image in tqdm(decoded, total=total, desc=desc, unit="img", leave=False):
        raw.splits[split].images.append(image)
        raw.splits[split].labels.append(index[cls])
        counts[(split, cls)] += 1
    empty = [f"{s}/{c}" for (s, c), n in counts.items() if n == 0]
    if empty:
        raise DataError(f"{where}: empty class folder(s) {', '.join(empty)}. Add images or remove the folder from every split.")
    return raw


def read_folder(root: Path, max_side: int | None = PHOTO_MAX_SIDE) -> RawData:
    """A folder laid out as train/<class>/*, plus val/<class>/* and/or test/<class>/*; images larger
    than `max_side` (shorter side) are decoded straight to that size."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    class_dirs = {s: {d.name for d in (root / s).iterdir() if d.is_dir() and not d.name.startswith(".")}
                  for s in SPLIT_DIRS if (root / s).is_dir()}
    files, total_bytes = [], 0
    for split, classes in class_dirs.items():
        for cls in sorted(classes):
            for path in sorted((root / split / cls).rglob("*")):
                if path.is_file() and _is_image(path.name):
                    files.append((split, cls, str(path.relative_to(root)), (lambda p=path: p)))
                    total_bytes += path.stat().st_size
    return _assemble(files, len(files), class_dirs, str(root), f"decoding {root.name}", max_side, total_bytes)


def _safe_member_name(member: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    """Refuse members that could escape a destination: absolute, `..`, links, devices."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ".." in name.parts or ":" in name.parts[0]:
        raise DataError(f"unsafe member {member.name!r} in {archive} (absolute path or '..'): refusing to read this archive.")
    if member.issym() or member.islnk():
        raise DataError(f"unsafe member {member.name!r} in {archive} (a link): refusing to read this archive.")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"unsafe member {member.name!r} in {archive} (a device or special file): refusing to read this archive.")
    return PurePosixPath(*[p for p in name.parts if p != "."])


def read_archive(path: Path, max_side: int | None = PHOTO_MAX_SIDE) -> RawData:
    """A .tar/.tar.gz of the folder layout, read straight into memory: nothing is extracted to disk.
    Images larger than `max_side` (shorter side) are decoded straight to that size."""
    try:
        tar = tarfile.open(path)
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"cannot open archive {path}: {err}") from err
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"archive {path} is damaged: {err}. Download or build it again.") from err
        names = [(m, _safe_member_name(m, path)) for m in members]
        names = [(m, n) for m, n in names if n.parts]
        # Tolerate one wrapping folder (e.g. cifar10/train/...), as archives are often built that way.
        tops = {n.parts[0] for _, n in names}
        if len(tops) == 1 and not tops & set(SPLIT_DIRS):
            names = [(m, PurePosixPath(*n.parts[1:])) for m, n in names if len(n.parts) > 1]
        class_dirs: dict[str, set[str]] = {}
        files = []
        for member, name in names:
            parts = name.parts
            if len(parts) >= 2 and parts[0] in SPLIT_DIRS and not parts[1].startswith("."):
                if member.isdir() or len(parts) >= 3:
                    class_dirs.setdefault(parts[0], set()).add(parts[1])
                if member.isfile() and len(parts) >= 3 and _is_image(parts[-1]):
                    files.append((parts[0], parts[1], str(name), member))
        # Read in archive order: a gzip stream cannot seek backwards cheaply. The order is fixed by the file.
        files.sort(key=lambda f: f[3].offset)
        items = ((split, cls, name, (lambda m=member: tar.extractfile(m).read())) for split, cls, name, member in files)
        total_bytes = sum(member.size for *_, member in files)
        try:
            return _assemble(items, len(files), class_dirs, str(path), f"decoding {path.name}", max_side, total_bytes)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise DataError(f"archive {path} is damaged: {err}. Download or build it again.") from err


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def source_files(path: Path) -> list[Path]:
    """Files whose identity keys the cache for a folder or archive source."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file())


def file_fingerprint(paths: list[Path]) -> list[tuple[str, int, int]]:
    return [(os.fspath(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
