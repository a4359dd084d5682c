"""A pruned Optuna search of a scratch recipe against its default settings, on the same data and budget.

    python benchmarks/bench_tune.py --source ../shared/data/cifar10-png.tar.gz --trials 10 --train-fraction 0.4
    python benchmarks/bench_tune.py --source fake --profile smoke --trials 4          # the plumbing, in seconds

Trains the recipe once with its defaults (the reference), then runs a fresh `cnnlab.tune.search`
study (median pruner, TPE after 5 random trials) with the same profile, epochs and data. Prints the
best validation accuracy against the default's, the search's wall time, and the training time pruning
saved: for each pruned trial, the epochs it did not train times the mean seconds per epoch of the
trials that completed. The test split is not read (final=False).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from optuna.trial import TrialState

from cnnlab import tune
from cnnlab.recipes import resolve
from cnnlab.runs import load_data, train_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="../shared/data/cifar10-png.tar.gz")
    ap.add_argument("--model", default="fast")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--train-fraction", type=float, default=None, help="train every run on this stratified share")
    ap.add_argument("--pruner", default="median", choices=tune.PRUNERS)
    ap.add_argument("--out", default=None, help="study folder (default: a temporary one)")
    args = ap.parse_args()

    data = load_data(args.source, args.profile, train_fraction=args.train_fraction)
    out = Path(args.out or tempfile.mkdtemp(prefix="cnnlab-bench-tune-"))
    epochs = resolve(args.model, args.profile, "cpu").config.epochs
    print(f"{args.model} {args.profile}: {len(data.train):,} train / {len(data.val):,} val images, {epochs} epochs per trial")

    t0 = time.perf_counter()
    train_run(args.model, out=out / "default", profile=args.profile, data=data, resume=False, progress=False)
    history = json.loads((out / "default" / "history.json").read_text())
    ref_val = max(r["val_acc"] for r in history)  # the same objective as a trial's: its best epoch
    print(f"default recipe: best val_acc {ref_val:.4f} in {time.perf_counter() - t0:.0f} s")

    t0 = time.perf_counter()
    result = tune.search("bench", model=args.model, trials=args.trials, out=out, profile=args.profile, data=data,
                         pruner=args.pruner, final=False)
    search_s = time.perf_counter() - t0
    trials = result["study"].trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    per_epoch = sum(t.duration.total_seconds() for t in complete) / max(1, sum(len(t.intermediate_values) for t in complete))
    saved = sum((epochs - len(t.intermediate_values)) * per_epoch for t in pruned)
    best = max(t.value for t in complete) if complete else float("nan")
    print(f"search: {len(trials)} trials ({len(complete)} complete, {len(pruned)} pruned) in {search_s:.0f} s")
    print(f"best val_acc {best:.4f} vs default {ref_val:.4f} ({100 * (best - ref_val):+.2f} points)")
    print(f"pruning saved about {saved:.0f} s of training ({100 * saved / (search_s + saved):.0f} % of an unpruned search)")


if __name__ == "__main__":
    main()
