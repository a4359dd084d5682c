"""Your own photos at phone size: what `cnnlab data info` costs in memory, cache and time, and what
the default transfer run on a real photo folder reaches.

    python benchmarks/bench_photos.py --memory 1000             # 1,000 4032x3024 JPEGs; target: peak < 3 GB, cache < 1 GB
    python benchmarks/bench_photos.py --memory 12               # the plumbing, in seconds
    python benchmarks/bench_photos.py --accuracy path/to/photos # cnnlab train --backbone efficientnet_lite0 --strategy frozen

--memory N writes N phone-size photos (4032x3024 JPEGs at quality 90: smooth random colour fields
with a little grain, ~1-2 MB each, like a phone's) into a temporary folder laid out as
train/val/test/<class>/, then runs `cnnlab data info --source FOLDER` in a subprocess under
`/usr/bin/time -v` twice, with a fresh CNNLAB_HOME: the first run decodes (every photo straight to
its capped size, `data.readers.PHOTO_MAX_SIDE`) and writes the cache, the second reads the cache.
It prints each run's peak resident memory and wall time, and the cache's size on disk.

--accuracy FOLDER runs `cnnlab train --source FOLDER --backbone efficientnet_lite0 --strategy frozen`
with default settings (profile $CNNLAB_PROFILE or full; the backbone at its native 224 px on photos)
under `/usr/bin/time -v`, with a fresh CNNLAB_HOME unless --home is given (so the time includes
decoding the photos and extracting features), and prints the test accuracy and wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

PHONE = (4032, 3024)  # a 12-megapixel phone photo, width x height
CLASSES = ("beach", "city", "forest", "kitchen")
TARGET_PEAK_GB, TARGET_CACHE_GB = 3.0, 1.0


def photo(seed: int, path: Path, size: tuple[int, int] = PHONE, quality: int = 90) -> int:
    """One smooth random photo (a bicubic-upsampled 8x6 colour field, plus grain), saved as a JPEG."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    grain = rng.integers(-6, 7, (256, 256, 3), dtype=np.int16)
    tiles = np.tile(grain, (size[1] // 256 + 1, size[0] // 256 + 1, 1))[: size[1], : size[0]]
    pixels = np.clip(np.asarray(img, dtype=np.int16) + tiles, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=quality)
    return path.stat().st_size


def make_photos(root: Path, n: int, workers: int = 2) -> int:
    """`n` phone photos as train/val/test/<class>/: 10 % val and 10 % test (at least one per class each)."""
    k = len(CLASSES)
    if n < 3 * k:
        raise SystemExit(f"--memory needs at least {3 * k} photos (one per class in train, val and test)")
    held = max(k, n // 10)
    counts = {"train": n - 2 * held, "val": held, "test": held}
    jobs, seed = [], 0
    for split, count in counts.items():
        for j in range(count):
            folder = root / split / CLASSES[j % k]
            folder.mkdir(parents=True, exist_ok=True)
            jobs.append((seed, folder / f"IMG_{seed:05d}.jpg"))
            seed += 1
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(photo, *zip(*jobs), chunksize=4))


def timed(argv: list[str], env: dict) -> dict:
    """Run `argv` under /usr/bin/time -v: exit status, wall seconds, peak RSS (GB) and its output."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {"code": proc.returncode, "wall": wall, "peak_gb": int(peak.group(1)) / 2**20 if peak else float("nan"),
            "stdout": proc.stdout, "stderr": proc.stderr}


def folder_gb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**30


def cnnlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnnlab", *args]


def check(result: dict, what: str) -> None:
    if result["code"] != 0:
        sys.stdout.write(result["stdout"][-3000:] + result["stderr"][-3000:])
        raise SystemExit(f"{what} failed with exit status {result['code']}")


def memory(n: int, workdir: Path | None, keep: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-photos-", dir=workdir))
    try:
        photos, home = base / "photos", base / "home"
        t0 = time.perf_counter()
        written = make_photos(photos, n)
        print(f"wrote {n} photos of {PHONE[0]}x{PHONE[1]} px ({written / 2**30:.2f} GB of JPEG) into {photos} "
              f"in {time.perf_counter() - t0:.0f} s")
        env = {**os.environ, "CNNLAB_HOME": str(home)}
        env.pop("CNNLAB_DATA", None)
        rows = []
        for label in ("decode + cache", "from the cache"):
            result = timed(cnnlab("data", "info", "--source", str(photos)), env)
            check(result, f"cnnlab data info ({label})")
            rows.append((label, result))
        cache_gb = folder_gb(home / "data" / "cache")
        sizes = re.search(r"^image size .*$", rows[0][1]["stdout"], re.M)
        print(sizes.group(0) if sizes else "")
        print(f"{'cnnlab data info':<18}{'peak RSS':>10}{'wall':>9}{'photos/s':>10}")
        for label, r in rows:
            print(f"{label:<18}{r['peak_gb']:>8.2f} GB{r['wall']:>7.1f} s{n / r['wall']:>10.1f}")
        print(f"cache on disk     {cache_gb:.3f} GB ({cache_gb * 2**30 / n / 1e3:.0f} kB a photo)")
        peak = max(r["peak_gb"] for _, r in rows)
        verdict = "meets" if peak < TARGET_PEAK_GB and cache_gb < TARGET_CACHE_GB else "MISSES"
        print(f"{verdict} the target for {n} photos: peak < {TARGET_PEAK_GB:g} GB (got {peak:.2f}), "
              f"cache < {TARGET_CACHE_GB:g} GB (got {cache_gb:.3f})")
    finally:
        if keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def accuracy(folder: Path, home: Path | None, out: Path | None) -> None:
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder of photos (train/<class>/ plus val/ and/or test/)")
    base = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    env = {**os.environ, "CNNLAB_HOME": str(home or base / "home")}
    run = out or base / "lite0-frozen"
    try:
        argv = cnnlab("train", "--source", str(folder.resolve()), "--backbone", "efficientnet_lite0", "--strategy",
                      "frozen", "--out", str(run), "--restart")
        print("$ cnnlab " + " ".join(argv[3:]))
        result = timed(argv, env)
        check(result, "cnnlab train")
        import json

        m = json.loads((run / "metrics.json").read_text())
        for line in result["stdout"].splitlines():
            if line.startswith(("profile:", "image size:", "efficientnet_lite0 (")):
                print(line)
        print(f"test accuracy {m['test_accuracy']:.2%} on {m['test_images']} test photos ({len(m['classes'])} classes; "
              f"{m['train_images']} train, {m['val_images']} val)   macro F1 {m['macro_f1']:.4f}")
        print(f"wall {result['wall']:.0f} s (features {m['feature_seconds']:.0f} s, head {m['train_seconds']:.0f} s, "
              f"{m['epochs']} epochs)   peak RSS {result['peak_gb']:.2f} GB   {m['device']}, {m['precision']}")
        if out:
            print(f"run kept in {run}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--memory", type=int, metavar="N", help="generate N phone-size photos and measure data info")
    which.add_argument("--accuracy", type=Path, metavar="FOLDER", help="train lite0 frozen on FOLDER, print test accuracy")
    parser.add_argument("--workdir", type=Path, default=None, help="--memory: where the temporary folder goes (default $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="--memory: keep the photos and cache afterwards")
    parser.add_argument("--home", type=Path, default=None, help="--accuracy: CNNLAB_HOME (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="--accuracy: keep the run in this folder")
    args = parser.parse_args()
    if args.memory is not None:
        memory(args.memory, args.workdir, args.keep)
    else:
        accuracy(args.accuracy, args.home, args.out)


if __name__ == "__main__":
    main()
