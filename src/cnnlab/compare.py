"""Tables across runs, read from each run's `metrics.json` and `history.json` (never hard-coded)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd


def than(a: float, b: float, more: str, less: str, same: str = "about the same as", rel_tol: float = 0.02) -> str:
    """How `a` compares with `b`, in words that follow the numbers (notebook 04's discussion).

    `than(4.0, 4.6, "more", "fewer")` is "fewer than", `than(4.6, 4.0, "more", "fewer")` "more than",
    and within `rel_tol` of each other `same`. A sentence built from it cannot contradict its numbers.
    """
    if math.isclose(a, b, rel_tol=rel_tol):
        return same
    return f"{more if a > b else less} than"


def load_run(run_dir: str | Path) -> dict:
    """metrics.json plus the per-epoch history of one run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} has no metrics.json: train it with `cnnlab train --out {run_dir}`")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["history"] = json.loads((run_dir / "history.json").read_text())
    return metrics


def epochs_to_reach(history: list[dict], threshold: float) -> tuple[int | None, float | None]:
    """(epoch, cumulative training seconds) when validation accuracy first reached `threshold`
    (None, None if it never did or the run had no validation split)."""
    for row in history:
        if row["val_acc"] is not None and row["val_acc"] >= threshold:
            return row["epoch"], row["train_seconds"]
    return None, None


def feature_seconds(metrics: dict) -> float:
    """Seconds a run spent extracting (cached) features before its first epoch: 0 for scratch runs."""
    return metrics.get("feature_seconds") or 0.0


def results_table(runs: dict[str, dict], threshold: float | None = None) -> pd.DataFrame:
    """One row per run: accuracies, size, time and speed, with the device beside them.

    Transfer runs pay for feature extraction before their first epoch, so `feature s` is
    added to their time to the threshold (scratch runs have none).
    """
    rows = []
    for name, m in runs.items():
        h = m["history"]
        feature_s = feature_seconds(m)
        val = [r["val_acc"] for r in h if r["val_acc"] is not None]  # none with --val-size 0
        row = {"run": name, "train acc": h[-1]["train_acc"], "best val acc": max(val) if val else None,
               "test acc": m["test_accuracy"], "macro F1": m["macro_f1"], "params (M)": m["params"] / 1e6,
               "size (MB)": m["size_mb"], "epochs": m["epochs"], "feature s": feature_s, "train s": m["train_seconds"],
               "infer img/s": m["images_per_second"], "device": m["device"]}
        if threshold is not None:
            epoch, seconds = epochs_to_reach(h, threshold)
            row[f"epochs to {threshold:.0%} val"] = epoch
            row[f"s to {threshold:.0%} val"] = None if seconds is None else feature_s + seconds
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def confused_pairs_table(runs: dict[str, dict], top: int = 5) -> pd.DataFrame:
    """The `top` most-confused (true -> predicted) pairs of each run, side by side."""
    from .evaluate import most_confused_pairs

    columns = {}
    for name, m in runs.items():
        pairs = most_confused_pairs(m["confusion_matrix"], m["classes"], top)
        columns[name] = [f"{t} → {p} ({n})" for t, p, n in pairs] + [""] * (top - len(pairs))
    return pd.DataFrame(columns, index=range(1, top + 1))


def per_class_table(runs: dict[str, dict], metric: str = "f1") -> pd.DataFrame:
    """Classes as rows, runs as columns, one per-class metric (precision, recall or f1)."""
    return pd.DataFrame({name: {c: v[metric] for c, v in m["per_class"].items()} for name, m in runs.items()})
