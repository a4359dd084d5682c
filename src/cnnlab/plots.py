"""Figures the notebooks and report share: learning curves and confusion matrices."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def learning_curves(histories: dict[str, list[dict]], axes=None):
    """Loss and accuracy per epoch, train dashed and validation solid, one colour per run (a run
    trained without a validation split, `--val-size 0`, shows its training curves only)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for (name, history), colour in zip(histories.items(), sns.color_palette(n_colors=max(1, len(histories)))):
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["train_loss"] for h in history], "--", color=colour, label=f"{name} train")
        axes[1].plot(epochs, [h["train_acc"] for h in history], "--", color=colour, label=f"{name} train")
        if any(h["val_acc"] is not None for h in history):
            axes[0].plot(epochs, [h["val_loss"] for h in history], "-", color=colour, label=f"{name} val")
            axes[1].plot(epochs, [h["val_acc"] for h in history], "-", color=colour, label=f"{name} val")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    axes[1].legend(fontsize="small")
    plt.tight_layout()
    return axes


def confusion_matrix(confusion: list[list[int]], classes: list[str], normalize: bool = False, ax=None, title: str = ""):
    """Seaborn heatmap of counts, or of row-normalised rates (recall on the diagonal)."""
    cm = np.array(confusion, dtype=float)
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    if ax is None:
        size = max(4.5, 0.45 * len(classes))
        _, ax = plt.subplots(figsize=(size + 1, size))
    annotate = len(classes) <= 20
    sns.heatmap(cm, annot=annotate, fmt=".2f" if normalize else ".0f", cmap="Blues", square=True, cbar=False,
                xticklabels=classes, yticklabels=classes, ax=ax, annot_kws={"size": "x-small"})
    ax.set(xlabel="predicted", ylabel="true", title=title or ("row-normalised" if normalize else "counts"))
    return ax


def image_grid(images, labels, classes: list[str], per_class: int = 8, title: str = ""):
    """`per_class` example images of every class (uint8 (N, 3, H, W) or a list), one row per class."""
    import torch

    labels = torch.as_tensor(labels)
    n_cls = min(len(classes), 20)
    fig, axes = plt.subplots(n_cls, per_class, figsize=(per_class * 0.9, n_cls * 0.95))
    axes = np.atleast_2d(axes)
    for c in range(n_cls):
        idx = torch.nonzero(labels == c).flatten()[:per_class].tolist()
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                ax.imshow(images[idx[j]].permute(1, 2, 0).numpy())
        axes[c, 0].text(-0.1, 0.5, classes[c], transform=axes[c, 0].transAxes, ha="right", va="center", fontsize="small")
    if title:
        fig.suptitle(title)
    plt.tight_layout(pad=0.1)
    return fig


def captioned_images(images, captions: list[str], cols: int = 8, title: str = ""):
    """uint8 (N, 3, H, W) images in a grid, each with its caption (notebook 03: what ImageNet sees)."""
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image.permute(1, 2, 0).numpy())
        ax.set_title(caption, fontsize="x-small")
    if title:
        fig.suptitle(title, fontsize="medium")
    plt.tight_layout(pad=0.3)
    return fig


def tradeoff(table, x: str = "pipeline s", y: str = "val acc", ax=None, title: str = ""):
    """One labelled point per row of `table` (its index names it): accuracy against cost (notebook 03)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(table[x], table[y], "o")
    for label, row in table.iterrows():
        ax.annotate(str(label), (row[x], row[y]), textcoords="offset points", xytext=(5, 4), fontsize="small")
    ax.set(xlabel=x, ylabel=y, title=title)
    ax.grid(alpha=0.3)
    plt.tight_layout()
    return ax


def class_counts(summary: dict, ax=None):
    """Images per class and split as grouped bars, from `Dataset.summary()`."""
    import pandas as pd

    df = pd.DataFrame({split: s["per_class"] for split, s in summary["splits"].items()})
    ax = df.plot.bar(figsize=(max(6, 0.5 * len(df)), 3.5), ax=ax, width=0.8)
    ax.set(ylabel="images", title="images per class and split")
    plt.tight_layout()
    return ax


def augmentation_preview(images, variants: dict, seed: int = 0):
    """The same images (rows) under each augmentation (columns); `variants` maps a name to a function
    `(x, generator) -> x` of float images in [0, 1], or to such a batch already augmented."""
    import torch

    x = images.float() / 255
    fig, axes = plt.subplots(len(x), len(variants), figsize=(1.3 * len(variants), 1.3 * len(x)))
    axes = np.atleast_2d(axes)
    for j, (name, fn) in enumerate(variants.items()):
        out = (fn(x, torch.Generator().manual_seed(seed)) if callable(fn) else fn.float()).clamp(0, 1)
        for i in range(len(x)):
            axes[i, j].imshow(out[i].permute(1, 2, 0).numpy())
            axes[i, j].axis("off")
        axes[0, j].set_title(name, fontsize="small")
    plt.tight_layout(pad=0.2)
    return fig


def channel_histograms(before, after, ax=None):
    """Pixel value distribution per channel before (in [0, 1]) and after normalisation."""
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3))
    for c, colour in enumerate("rgb"):
        ax[0].hist(before[:, c].flatten().numpy(), bins=64, color=colour, alpha=0.4)
        ax[1].hist(after[:, c].flatten().numpy(), bins=64, color=colour, alpha=0.4)
    ax[0].set(title="raw pixels / 255", xlabel="value")
    ax[1].set(title="after (x - mean) / std", xlabel="value")
    plt.tight_layout()
    return ax


def per_class_bars(table, ax=None, metric: str = "F1"):
    """Grouped horizontal bars: classes as rows of `table`, one bar per run (column)."""
    ax = table.plot.barh(figsize=(7, max(3.5, 0.45 * len(table))), ax=ax, width=0.8)
    ax.invert_yaxis()
    ax.set(xlabel=metric, xlim=(0, 1), title=f"per-class {metric}")
    ax.legend(fontsize="small", loc="lower right")
    plt.tight_layout()
    return ax


def data_size_curve(results, ax=None):
    """Test accuracy against the number of training images (log scale), one line per approach.

    `results` has columns approach, train images, test acc (as `study.data_size_study` returns).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for approach, group in results.groupby("approach", sort=False):
        group = group.sort_values("train images")
        ax.plot(group["train images"], group["test acc"], marker="o", label=approach)
        for _, r in group.iterrows():
            ax.annotate(f"{r['test acc']:.1%}", (r["train images"], r["test acc"]), textcoords="offset points",
                        xytext=(4, 6), fontsize="small")
    ax.set(xscale="log", xlabel="training images (log scale)", ylabel="test accuracy",
           title="accuracy against training-set size")
    ax.grid(alpha=0.3)
    ax.legend()
    plt.tight_layout()
    return ax


def gradcam_grid(images, overlays: dict, titles: list[str]):
    """Columns are images; the first row the images themselves, then one row of heat maps per model."""
    n, rows = len(images), 1 + len(overlays)
    fig, axes = plt.subplots(rows, n, figsize=(1.6 * n, 1.75 * rows), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(images[j].permute(1, 2, 0).numpy())
        axes[0, j].set_title(titles[j], fontsize="x-small")
        for i, maps in enumerate(overlays.values(), start=1):
            axes[i, j].imshow(maps[j])
    for i, name in enumerate(["image", *overlays], start=0):
        axes[i, 0].text(-0.08, 0.5, name, transform=axes[i, 0].transAxes, ha="right", va="center", fontsize="small")
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    plt.tight_layout(pad=0.3)
    return fig


def mistake_gallery(images, mistakes: list[dict], classes: list[str], cols: int = 6, title: str = ""):
    """The images of `explain.confident_mistakes`, captioned true -> predicted (confidence)."""
    rows = max(1, -(-len(mistakes) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, m in zip(axes.flat, mistakes):
        ax.imshow(images[m["index"]].permute(1, 2, 0).numpy())
        ax.set_title(f"{classes[m['true']]} → {classes[m['pred']]}\n{m['prob']:.0%}", fontsize="x-small")
    if title:
        fig.suptitle(title, fontsize="medium")
    plt.tight_layout(pad=0.3, rect=(0, 0, 1, 0.94 if title else 1))
    return fig


def accuracy_over_time(runs: dict[str, dict], threshold: float | None = None, ax=None):
    """Validation accuracy against wall-clock training seconds, feature extraction included.

    Epochs mean different amounts of work for different models; seconds on the same device
    are the fair axis for "which approach gets there first".
    """
    from .compare import feature_seconds

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, m in runs.items():
        if all(r["val_acc"] is None for r in m["history"]):  # trained with --val-size 0: nothing to draw
            continue
        start = feature_seconds(m)
        seconds = [start + r["train_seconds"] for r in m["history"]]
        ax.plot(seconds, [r["val_acc"] for r in m["history"]], marker=".", label=name)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"threshold {threshold:.0%}")
    ax.set(xlabel="training seconds (incl. feature extraction)", ylabel="validation accuracy",
           title="validation accuracy over time")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # empty when every run trained without a validation split
        ax.legend(fontsize="small")
    plt.tight_layout()
    return ax
