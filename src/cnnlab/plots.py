"""Figures the notebooks and report share: learning curves and confusion matrices."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def learning_curves(histories: dict[str, list[dict]], axes=None):
    """Loss and accuracy per epoch, train dashed and validation solid, one colour per run."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for (name, history), colour in zip(histories.items(), sns.color_palette(n_colors=max(1, len(histories)))):
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["train_loss"] for h in history], "--", color=colour, label=f"{name} train")
        axes[0].plot(epochs, [h["val_loss"] for h in history], "-", color=colour, label=f"{name} val")
        axes[1].plot(epochs, [h["train_acc"] for h in history], "--", color=colour, label=f"{name} train")
        axes[1].plot(epochs, [h["val_acc"] for h in history], "-", color=colour, label=f"{name} val")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    axes[1].legend(fontsize=8)
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
                xticklabels=classes, yticklabels=classes, ax=ax, annot_kws={"size": 7})
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
        axes[c, 0].text(-0.1, 0.5, classes[c], transform=axes[c, 0].transAxes, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    plt.tight_layout(pad=0.1)
    return fig


def class_counts(summary: dict, ax=None):
    """Images per class and split as grouped bars, from `Dataset.summary()`."""
    import pandas as pd

    df = pd.DataFrame({split: s["per_class"] for split, s in summary["splits"].items()})
    ax = df.plot.bar(figsize=(max(6, 0.5 * len(df)), 3.5), ax=ax, width=0.8)
    ax.set(ylabel="images", title="images per class and split")
    plt.tight_layout()
    return ax


def augmentation_preview(images, variants: dict, seed: int = 0):
    """The same images (rows) under each augmentation (columns); `variants` maps a name to a function."""
    import torch

    x = images.float() / 255
    fig, axes = plt.subplots(len(x), len(variants), figsize=(1.3 * len(variants), 1.3 * len(x)))
    axes = np.atleast_2d(axes)
    for j, (name, fn) in enumerate(variants.items()):
        out = fn(x, torch.Generator().manual_seed(seed)).clamp(0, 1)
        for i in range(len(x)):
            axes[i, j].imshow(out[i].permute(1, 2, 0).numpy())
            axes[i, j].axis("off")
        axes[0, j].set_title(name, fontsize=8)
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
