"""Transfer learning vs the scratch `fast` CNN on CIFAR-10 (JPEG q75 mirror), on the device at hand.

Part 1, strategies side by side on the whole training set: Lite0 frozen / partial / finetune and
`fast` from scratch (runs.train_run), each through the same code path as `cnnlab train`.
Part 2, the small-data question: 1 % and 10 % of the training images (stratified, seeded),
Lite0 frozen vs `fast`. Validation (5k) and test (10k) splits are the same in every run.

Targets on 2 CPU cores, full profile: Lite0 frozen >= 80 % (aim 85 %) in <= 15 min for the whole
pipeline; partial >= 88 % in <= 30 min; at 1 % of the data transfer beats fast by >= 15 points.
"Whole pipeline" = feature extraction + training + test pass (`pipeline_seconds`); extraction
seconds are recorded when the feature cache is built, so a cache hit still reports the real
cost (use --fresh-features to measure it again). One seed per row: on 2 cores a full run is an
hour, so n >= 3 seeds is left to a GPU (--seeds).

    python benchmarks/bench_transfer.py --profile smoke            # ~1-2 min: checks the plumbing
    python benchmarks/bench_transfer.py --profile full             # the real numbers (~1.5-2 h on 2 cores)
    python benchmarks/bench_transfer.py --profile full --strategies frozen,partial,fast --fractions 0.01
    python benchmarks/bench_transfer.py --profile full --out runs/full --reuse   # the table of `make run`'s runs

Run names are the notebooks' (`fast`, `lite0-frozen`, `lite0-partial`, `fast-1pct`, ...), so with
--reuse the table reads the runs `make run` trained and trains only what is missing. Small-data
`fast` runs get `study.small_data_overrides` (smaller batches, enough steps), as in notebook 04.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import time
from pathlib import Path

import torch

from cnnlab import paths, study
from cnnlab.data import load_dataset
from cnnlab.device import describe_device, pick_device

SOURCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpeg.tar.gz"
COLUMNS = ("run", "train imgs", "size", "test acc", "feature s", "train s", "pipeline s", "epochs", "device")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def row(name: str, m: dict, train_images: int) -> dict:
    """One fixed-width table row from a metrics.json (transfer or scratch)."""
    feature = m.get("feature_seconds", 0.0)
    pipeline = m.get("pipeline_seconds", m["fit_wall_seconds"])  # scratch: its whole fit (+ val passes)
    cached = " (cached)" if m.get("feature_cache_hit") and not m.get("reused") else ""
    return {"run": name + (" (reused)" if m.get("reused") else ""), "train imgs": train_images, "size": f"{m.get('image_size') or 32} px",
            "test acc": f"{m['test_accuracy']:.4f}", "feature s": f"{feature:.0f}{cached}",
            "train s": f"{m['train_seconds']:.0f}", "pipeline s": f"{pipeline:.0f}", "epochs": m["epochs"],
            "device": m["device"]}


def print_table(rows: list[dict]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    print("  ".join(f"{c:<{widths[c]}}" for c in COLUMNS))
    for r in rows:
        print("  ".join(f"{str(r[c]):<{widths[c]}}" for c in COLUMNS))


def clear_features(backbone: str) -> None:
    for path in paths.cache_dir().glob(f"features-{backbone}-*.pt"):
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full", choices=["smoke", "quick", "full"])
    parser.add_argument("--source", default=str(SOURCE.resolve()))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--strategies", default="frozen,partial,finetune,fast",
                        help="comma list of frozen, partial, finetune, fast")
    parser.add_argument("--fractions", default="0.01,0.1", help="small-data shares of the training set ('' = skip)")
    parser.add_argument("--seeds", default="0", help="comma list; each seed repeats every run")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--fresh-features", action="store_true", help="delete cached features first")
    parser.add_argument("--out", default=None, help="default: runs/bench_transfer/PROFILE")
    parser.add_argument("--reuse", action="store_true", help="read finished runs in --out instead of retraining them")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out = Path(args.out) if args.out else paths.runs_dir() / "bench_transfer" / args.profile
    if args.fresh_features:
        clear_features(args.backbone)
    strategies = [s for s in args.strategies.split(",") if s]
    fractions = [float(f) for f in args.fractions.split(",") if f]
    print(f"bench_transfer: {args.backbone} vs fast, profile {args.profile}, device {describe_device(device)}, "
          f"torch {torch.__version__}, commit {git_commit()}; data CIFAR-10 (JPEG q75 mirror)")
    start, rows, results = time.perf_counter(), [], []

    short = args.backbone.replace("efficientnet_", "")

    def run(name: str, kind: str, data, fraction: float | None, seed: int) -> None:
        name = name if seed == 0 else f"{name}-seed{seed}"
        reused = args.reuse and (out / name / "metrics.json").exists()
        if not args.reuse:
            shutil.rmtree(out / name, ignore_errors=True)  # a benchmark measures, it never resumes
        try:  # one failed run must not cost the hour of results around it
            if kind == "fast":
                extra = study.small_data_overrides("fast", args.profile, len(data.train)) if fraction else {}
                m = study.scratch(name, "fast", data, out, args.profile, str(device), seed=seed, **extra)
            else:
                m = study.transfer(name, data, out, args.profile, str(device), backbone=args.backbone, strategy=kind,
                                   seed=seed)
        except Exception as err:  # noqa: BLE001
            print(f"{name} FAILED: {type(err).__name__}: {err}")
            results.append({"run": name, "kind": kind, "fraction": fraction, "seed": seed, "error": repr(err)})
            return
        m["reused"] = reused
        rows.append(row(name, m, len(data.train)))
        results.append({"run": name, "kind": kind, "fraction": fraction, "seed": seed, "train_images": len(data.train),
                        "reused": reused,
                        **{k: m.get(k) for k in ("test_accuracy", "macro_f1", "image_size", "feature_seconds",
                                                 "feature_cache_hit", "train_seconds", "pipeline_seconds",
                                                 "fit_wall_seconds", "epochs", "device", "config")}})
        print_table(rows[-1:])

    for seed in [int(s) for s in args.seeds.split(",")]:
        # ------------------------------------------------------------------- part 1: strategies
        data = load_dataset(args.source, seed=seed, profile=args.profile)
        for kind in strategies:
            run(kind if kind == "fast" else f"{short}-{kind}", kind, data, None, seed)
        # ------------------------------------------------------------------- part 2: small data
        for fraction in fractions:
            small = load_dataset(args.source, seed=seed, profile=args.profile, train_fraction=fraction)
            for kind in ("frozen", "fast"):
                name = f"{'fast' if kind == 'fast' else short + '-frozen'}-{fraction * 100:g}pct"
                run(name, kind, small, fraction, seed)

    print(f"\n== {args.backbone} vs fast, CIFAR-10 (JPEG q75 mirror), profile {args.profile} ==")
    if rows:
        print_table(rows)
    for fraction in fractions:
        acc = {r["kind"]: r["test_accuracy"] for r in results if r["fraction"] == fraction and "error" not in r}
        if len(acc) == 2:
            print(f"{fraction:.0%} of the training set: transfer {acc['frozen']:.1%} vs fast {acc['fast']:.1%} "
                  f"({100 * (acc['frozen'] - acc['fast']):+.1f} points)")
    wall = time.perf_counter() - start
    print(f"wall time {wall:.0f} s")
    summary = {"profile": args.profile, "backbone": args.backbone, "device": describe_device(device),
               "torch": torch.__version__, "python": platform.python_version(), "commit": git_commit(),
               "threads": torch.get_num_threads(), "wall_seconds": wall, "results": results}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
