"""Scratch models side by side: test accuracy, training seconds, and time to the baseline's best validation.

Trains each model with `cnnlab.runs.train_run` (the code path of `cnnlab train`) on one decoded
dataset and prints a fixed-width row per run. With `baseline` among the models it reads every run's
history.json: the baseline's time is its training seconds (validation passes excluded) up to the
first epoch at its best validation accuracy; a `fast` run's is its training seconds up to the first
epoch whose validation accuracy is at least that; "N x sooner" is the ratio of the two.
`name:profile` trains a model with another profile's recipe on the same data (quick and full both
use all of CIFAR-10); `name:profile:key=value+key=value` also overrides recipe values.

    python benchmarks/bench_scratch.py --profile full --source ../shared/data/cifar10-png.tar.gz --models baseline,fast:quick
    python benchmarks/bench_scratch.py --profile full --models baseline,fast,fast:quick
    python benchmarks/bench_scratch.py --profile full --models "baseline,fast:quick:epochs=2+epoch_image_sizes=[24,32]" --reuse
    python benchmarks/bench_scratch.py --profile smoke --source fake                     # checks the plumbing

The data default to the lossless archive ../shared/data/cifar10-png.tar.gz (`--source` for another).
Runs and results.json go to $CNNLAB_HOME/runs/bench-scratch-<profile>/ unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

from cnnlab import paths
from cnnlab.checkpoint import write_json_atomic
from cnnlab.compare import epochs_to_reach
from cnnlab.device import pick_device
from cnnlab.runs import load_data, train_run
from tune_fast import ARCHIVE, data_label, host_info, parse_value  # the sibling script: one rule for each


def parse_spec(spec: str, default_profile: str) -> tuple[str, str, dict]:
    """`name[:profile[:key=value+key=value]]` -> (name, profile, recipe overrides), e.g.
    `fast:quick:epochs=2` trains the quick recipe on a 2-epoch schedule (values parsed as JSON)."""
    name, profile, sets = (spec.split(":", 2) + ["", ""])[:3]
    overrides = {}
    for item in filter(None, sets.split("+")):
        key, value = item.split("=", 1)
        overrides[key] = parse_value(value)
    return name, profile or default_profile, overrides


def run_key(name: str, profile: str, default_profile: str, overrides: dict) -> str:
    """The run's folder name: `fast-quick`, `fast-quick-epochs2-epoch_image_sizes24-32`, ..."""
    def text(value) -> str:
        return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else re.sub(r"[^\w.-]+", "", str(value))
    return "-".join([name] + ([profile] if profile != default_profile else [])
                    + [f"{k}{text(v)}" for k, v in overrides.items()])


def best_val(history: list[dict]) -> tuple[float | None, int | None, float | None]:
    """(best validation accuracy, its first epoch, training seconds up to that epoch) from a history."""
    rows = [r for r in history if r["val_acc"] is not None]
    if not rows:
        return None, None, None
    top = max(rows, key=lambda r: r["val_acc"])  # max() keeps the first of equal values
    return top["val_acc"], top["epoch"], top["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    parser.add_argument("--source", default=str(ARCHIVE), help="default: the lossless CIFAR-10 archive in ../shared/data")
    parser.add_argument("--models", default="baseline,fast", help="comma list of name[:profile[:key=value+...]]")
    parser.add_argument("--out", default=None, help="default $CNNLAB_HOME/runs/bench-scratch-<profile>")
    parser.add_argument("--reuse", action="store_true",
                        help="read a model's finished run from --out instead of training it again")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation carve-out and of every run")
    parser.add_argument("--device", default=None, help="auto (default) | cpu | cuda | mps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--val-size", type=int, default=None,
                        help="validation images carved from the training set (default 5,000 for CIFAR)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out = Path(args.out) if args.out else paths.runs_dir() / f"bench-scratch-{args.profile}"
    label = data_label(args.source)
    data = load_data(args.source, args.profile, seed=args.seed, val_size=args.val_size)
    print(f"data {label} ({data.source}): {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
          f"profile {args.profile}, seed {args.seed}")
    print(host_info(device))
    runs = {}
    for spec in re.split(r",(?![^\[]*\])", args.models):  # commas inside [..] belong to a value
        name, profile, overrides = parse_spec(spec, args.profile)
        key = run_key(name, profile, args.profile, overrides)
        t0 = time.perf_counter()
        if args.reuse and (out / key / "metrics.json").exists():
            m = json.loads((out / key / "metrics.json").read_text())
            m["reused"] = True
            print(f"{key}: reused the finished run in {out / key}")
        else:
            m = train_run(name, data=data, out=out / key, profile=profile, device=str(device), seed=args.seed,
                          resume=False, progress=not args.no_progress, **overrides)
            m["wall_seconds"] = round(time.perf_counter() - t0, 1)
        m["recipe_profile"] = profile
        m["history"] = json.loads((out / key / "history.json").read_text())
        runs[key] = m
        print(f"{key}: test {m['test_accuracy']:.4f}  train {m['train_seconds']:.1f} s  {m['epochs']} epochs  "
              f"{m['device']}, {m.get('precision', '?')}", flush=True)

    w = max(12, *(len(k) for k in runs))
    print(f"\n== scratch models, {label}, profile {args.profile} ({len(data.train)} training images) ==")
    print(f"{'run':<{w}} {'recipe':>6} {'test acc':>9} {'macro F1':>9} {'best val':>9} {'at ep':>5} {'train s':>8} "
          f"{'epochs':>6} {'params':>10} {'img/s':>7}  precision, device")
    for key, m in runs.items():
        val, epoch, _ = best_val(m["history"])
        print(f"{key:<{w}} {m['recipe_profile']:>6} {m['test_accuracy']:>9.4f} {m['macro_f1']:>9.4f} "
              f"{'n/a' if val is None else f'{val:.4f}':>9} {epoch or '-':>5} {m['train_seconds']:>8.1f} "
              f"{m['epochs']:>6} {m['params']:>10,} {m['images_per_second']:>7.0f}  "
              f"{m.get('precision', '?')}, {m['device']}{' (reused)' if m.get('reused') else ''}")

    reach = None
    if "baseline" in runs:
        target, epoch, seconds = best_val(runs["baseline"]["history"])
        if target is None:
            print("\nthe baseline has no validation accuracy (--val-size 0): no time to its best to measure")
        else:
            print(f"\nbaseline best val acc {target:.4f}, first reached at epoch {epoch} after {seconds:.1f} s of training")
            reach = {"baseline_best_val": target, "baseline_epoch": epoch, "baseline_seconds": seconds, "runs": {}}
            print(f"{'run':<{w}} {'epoch':>5} {'train s':>8} {'sooner':>7}")
            for key in (k for k in runs if k != "baseline"):
                f_epoch, f_seconds = epochs_to_reach(runs[key]["history"], target)
                speedup = seconds / f_seconds if f_seconds else None
                reach["runs"][key] = {"epoch": f_epoch, "seconds": f_seconds, "times_sooner": speedup}
                print(f"{key:<{w}} " + ("   never reached it" if f_epoch is None else
                      f"{f_epoch:>5} {f_seconds:>8.1f} {speedup:>6.1f}x"))
    summary = {"profile": args.profile, "source": data.source, "data": label, "seed": args.seed,
               "host": host_info(device), "torch": torch.__version__, "runs": runs, "time_to_baseline_best": reach}
    write_json_atomic(summary, out / "results.json")
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
