"""Transfer learning vs the scratch `fast` CNN: test accuracy and pipeline seconds, on the device at hand.

Part 1, on the whole training split: a backbone (default EfficientNet-Lite0) `frozen`, `partial`
and `finetune` (`transfer.transfer_run`) beside `fast` from scratch (`runs.train_run`), the code
paths of `cnnlab train`. Part 2, the small-data study: a stratified, seeded share of the training
images (default 1 % and 10 %), the backbone frozen vs `fast`, as notebook 04 runs it (the share's
transfer run at the recipe's input size unless --small-image-size, `fast` with `study.small_data_overrides`). The
validation and test splits are the same in every run. "pipeline s" is the cost from nothing:
feature extraction (timed when the cache was built, so a cache hit still reports it;
--fresh-features times it again) + training + the test pass.

    python benchmarks/bench_transfer.py --profile full --source ../shared/data/cifar10-png.tar.gz --strategies frozen,partial --fractions ''
    python benchmarks/bench_transfer.py --profile full --source ../shared/data/cifar10-png.tar.gz --strategies '' --fractions 0.01
    python benchmarks/bench_transfer.py --profile full                                             # everything (hours on 2 cores)
    python benchmarks/bench_transfer.py --profile full --out runs/full --reuse   # the table of `make run`'s runs
    python benchmarks/bench_transfer.py --profile smoke --source fake            # checks the plumbing

The data default to the lossless archive ../shared/data/cifar10-png.tar.gz (`--source` for another).
Run names are the notebooks' (`fast`, `lite0-frozen`, `lite0-partial`, `fast-1pct`, `lite0-frozen-1pct`,
...), so --reuse reads the runs `make run` trained and trains only what is missing.
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
from cnnlab.device import describe_device, pick_device
from cnnlab.runs import load_data
from tune_fast import ARCHIVE, data_label, host_info  # the sibling script: one rule for each

COLUMNS = ("run", "train imgs", "size", "test acc", "val@best", "feature s", "train s", "pipeline s", "epochs",
           "precision", "device")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def row(name: str, m: dict, train_images: int) -> dict:
    """One fixed-width table row from a metrics.json (transfer or scratch)."""
    feature = m.get("feature_seconds") or 0.0
    cached = " (cached)" if m.get("feature_cache_hit") and not m.get("reused") else ""
    val = m.get("val_acc_at_best")
    return {"run": name + (" (reused)" if m.get("reused") else ""), "train imgs": train_images,
            "size": f"{m.get('image_size') or 32} px", "test acc": f"{m['test_accuracy']:.4f}",
            "val@best": "n/a" if val is None else f"{val:.4f}", "feature s": f"{feature:.0f}{cached}",
            "train s": f"{m['train_seconds']:.0f}", "pipeline s": f"{m['pipeline_seconds']:.0f}",
            "epochs": m["epochs"], "precision": m.get("precision", "?"), "device": m["device"]}


def print_table(rows: list[dict]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    print("  ".join(f"{c:<{widths[c]}}" for c in COLUMNS))
    for r in rows:
        print("  ".join(f"{str(r[c]):<{widths[c]}}" for c in COLUMNS))


def clear_features(backbone: str) -> None:
    for path in paths.cache_dir().glob(f"features-{backbone}-*.pt"):
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="full", choices=["smoke", "quick", "full"])
    parser.add_argument("--source", default=str(ARCHIVE), help="default: the lossless CIFAR-10 archive in ../shared/data")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--strategies", default="frozen,partial,finetune,fast",
                        help="part 1: comma list of frozen, partial, finetune, fast ('' = skip)")
    parser.add_argument("--fractions", default="0.01,0.1", help="part 2: shares of the training split ('' = skip)")
    parser.add_argument("--small-image-size", type=int, default=None,
                        help="part 2: the shares' transfer input side in px (default: the recipe's, as notebook 04)")
    parser.add_argument("--seeds", default="0", help="comma list; each seed repeats every run (and its data split)")
    parser.add_argument("--device", default=None, help="auto (default) | cpu | cuda | mps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--fresh-features", action="store_true", help="delete the backbone's cached features first")
    parser.add_argument("--out", default=None, help="default: $CNNLAB_HOME/runs/bench_transfer/PROFILE")
    parser.add_argument("--reuse", action="store_true", help="read finished runs in --out instead of retraining them")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out = Path(args.out) if args.out else paths.runs_dir() / "bench_transfer" / args.profile
    if args.fresh_features:
        clear_features(args.backbone)
    strategies = [s for s in args.strategies.split(",") if s]
    fractions = [float(f) for f in args.fractions.split(",") if f]
    label = data_label(args.source)
    print(f"bench_transfer: {args.backbone} vs fast, profile {args.profile}, commit {git_commit()}; "
          f"data {label} ({args.source})")
    print(host_info(device))
    start, rows, results = time.perf_counter(), [], []
    short = args.backbone.replace("efficientnet_", "")
    progress = not args.no_progress

    def run(name: str, kind: str, data, fraction: float | None, seed: int, **overrides) -> None:
        name = name if seed == 0 else f"{name}-seed{seed}"
        reused = args.reuse and (out / name / "metrics.json").exists()
        if not args.reuse:
            shutil.rmtree(out / name, ignore_errors=True)  # a benchmark measures, it never resumes
        try:  # one failed run must not cost the hour of results around it
            if kind == "fast":
                m = study.scratch(name, "fast", data, out, args.profile, str(device), seed=seed, progress=progress,
                                  **overrides)
            else:
                m = study.transfer(name, data, out, args.profile, str(device), backbone=args.backbone, strategy=kind,
                                   seed=seed, progress=progress, **overrides)
        except Exception as err:  # noqa: BLE001
            print(f"{name} FAILED: {type(err).__name__}: {err}")
            results.append({"run": name, "kind": kind, "fraction": fraction, "seed": seed, "error": repr(err)})
            return
        m["reused"] = reused
        rows.append(row(name, m, len(data.train)))
        results.append({"run": name, "kind": kind, "fraction": fraction, "seed": seed, "train_images": len(data.train),
                        "reused": reused,
                        **{k: m.get(k) for k in ("test_accuracy", "macro_f1", "val_acc_at_best", "epoch_of_best",
                                                 "image_size", "feature_seconds", "feature_cache_hit", "train_seconds",
                                                 "eval_seconds", "pipeline_seconds", "fit_wall_seconds", "epochs",
                                                 "precision", "device", "config")}})
        print_table(rows[-1:])

    for seed in [int(s) for s in args.seeds.split(",")]:
        # ------------------------------------------------------------------- part 1: strategies
        data = load_data(args.source, args.profile, seed=seed)
        for kind in strategies:
            run(kind if kind == "fast" else f"{short}-{kind}", kind, data, None, seed)
        # ------------------------------------------------------------------- part 2: small data
        for fraction in fractions:
            small = load_data(args.source, args.profile, seed=seed, train_fraction=fraction)
            if len(small.train) >= len(data.train):  # a profile's image limit can make the share the whole
                print(f"{fraction:.0%} of the training split keeps all {len(small.train)} images here: skipped")
                continue
            tag = f"-{fraction * 100:g}pct"
            run(f"{short}-frozen{tag}", "frozen", small, fraction, seed,
                image_size=args.small_image_size)
            run(f"fast{tag}", "fast", small, fraction, seed,
                **study.small_data_overrides("fast", args.profile, len(small.train), device_type=device.type))

    print(f"\n== {args.backbone} vs fast, {label}, profile {args.profile} ==")
    if rows:
        print_table(rows)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for fraction in fractions:
            acc = {r["kind"]: r for r in results if r["fraction"] == fraction and r["seed"] == seed and "error" not in r}
            if len(acc) == 2:
                t, f = acc["frozen"], acc["fast"]
                print(f"{fraction:.0%} of the training split ({t['train_images']} images, seed {seed}): transfer "
                      f"{t['test_accuracy']:.2%} in {t['pipeline_seconds']:.0f} s pipeline vs fast "
                      f"{f['test_accuracy']:.2%} in {f['pipeline_seconds']:.0f} s "
                      f"({100 * (t['test_accuracy'] - f['test_accuracy']):+.1f} points)")
    wall = time.perf_counter() - start
    print(f"wall time {wall:.0f} s")
    summary = {"profile": args.profile, "backbone": args.backbone, "source": args.source, "data": label,
               "host": host_info(device), "device": describe_device(device), "torch": torch.__version__,
               "python": platform.python_version(), "commit": git_commit(), "threads": torch.get_num_threads(),
               "wall_seconds": wall, "results": results}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
