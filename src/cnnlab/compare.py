"""Tables across runs, read from each run's `metrics.json` and `history.json` (never hard-coded)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def load_run(run_dir: str | Path) -> dict:
    """metrics.json plus the per-epoch history of one run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} has no metrics.json: train it with `cnnlab train --out {run_dir}`")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["history"] = json.loads((run_dir / "history.json").read_text())
    return metrics


def epochs_to_reach(history: list[dict], threshold: float) -> tuple[int | None, float | None]:
    """(epoch, cumulative training seconds) when validation accuracy first reached `threshold`."""
    for row in history:
        if row["val_acc"] >= threshold:
            return row["epoch"], row["train_seconds"]
    return None, None


def results_table(runs: dict[str, dict], threshold: float | None = None) -> pd.DataFrame:
    """One row per run: accuracies, size, time and speed, with the device beside them."""
    rows = []
    for name, m in runs.items():
        h = m["history"]
        row = {"run": name, "train acc": h[-1]["train_acc"], "best val acc": max(r["val_acc"] for r in h),
               "test acc": m["test_accuracy"], "macro F1": m["macro_f1"], "params (M)": m["params"] / 1e6,
               "size (MB)": m["size_mb"], "epochs": m["epochs"], "train s": m["train_seconds"],
               "infer img/s": m["images_per_second"], "device": m["device"]}
        if threshold is not None:
            row[f"epochs to {threshold:.0%} val"], row[f"s to {threshold:.0%} val"] = epochs_to_reach(h, threshold)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def per_class_table(runs: dict[str, dict], metric: str = "f1") -> pd.DataFrame:
    """Classes as rows, runs as columns, one per-class metric (precision, recall or f1)."""
    return pd.DataFrame({name: {c: v[metric] for c, v in m["per_class"].items()} for name, m in runs.items()})
