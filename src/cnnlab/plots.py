"""Figures the notebooks and report share: learning curves and confusion matrices."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.ticker import FuncFormatter, PercentFormatter


def _finish(ax, legend: str | None = "best", percent: bool = False, **legend_kw) -> None:
    """Percent y axis and a legend placed `above` or `right` of the axes (outside the data on a slide), or at a loc."""
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    handles = ax.get_legend_handles_labels()[0]
    if not handles or legend is None:  # empty when, e.g., every run trained without a validation split
        return
    if legend == "above":
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), frameon=False, **legend_kw)
    elif legend == "right":
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, **legend_kw)
    else:
        ax.legend(loc=legend, **legend_kw)


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


def confusion_matrix(confusion: list[list[int]], classes: list[str], normalize: bool = False, ax=None, title: str = "",
                     percent: bool = False, hide_below: float = 0.0, short: int | None = None):
    """Seaborn heatmap of counts, or of row-normalised rates (recall on the diagonal); `percent` shows whole
    percentages on a 0-100 % scale, `hide_below` blanks the noise, `short` cuts class names for a small slide."""
    cm = np.array(confusion, dtype=float)
    if normalize or percent:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    if ax is None:
        size = max(4.5, 0.45 * len(classes))
        _, ax = plt.subplots(figsize=(size + 1, size))
    annotate = False
    if len(classes) <= 20:  # beyond that the numbers no longer fit their squares
        fmt = "{:.0%}" if percent else "{:.2f}" if normalize else "{:.0f}"
        annotate = np.where(cm >= hide_below, np.vectorize(lambda v: fmt.format(v).rstrip("%"))(cm), "")
    names = [c[:short] for c in classes] if short else classes
    sns.heatmap(cm, annot=annotate, fmt="", cmap="Blues", square=True, cbar=False,
                vmin=0 if percent else None, vmax=1 if percent else None,
                xticklabels=names, yticklabels=names, ax=ax, annot_kws={"size": "x-small"})
    ax.set(xlabel="predicted", ylabel="true", title=title or ("row-normalised" if normalize else "counts"))
    return ax


def image_grid(images, labels, classes: list[str], per_class: int = 8, title: str = "", columns: bool = False,
               figsize: tuple[float, float] | None = None):
    """`per_class` example images of every class (uint8 (N, 3, H, W) or a list), one row per class, or one
    column per class under its name (`columns`, wide enough for a slide)."""
    import torch

    labels = torch.as_tensor(labels)
    n_cls = min(len(classes), 20)
    shape = (per_class, n_cls) if columns else (n_cls, per_class)
    fig, axes = plt.subplots(*shape, figsize=figsize or (shape[1] * 0.9, shape[0] * 0.95), squeeze=False)
    grid = axes.T if columns else axes  # grid[class, example]
    for c in range(n_cls):
        idx = torch.nonzero(labels == c).flatten()[:per_class].tolist()
        for j in range(per_class):
            ax = grid[c, j]
            ax.axis("off")
            if j < len(idx):
                ax.imshow(images[idx[j]].permute(1, 2, 0).numpy())
        if columns:
            grid[c, 0].set_title(classes[c], fontsize="small")
        else:
            grid[c, 0].text(-0.1, 0.5, classes[c], transform=grid[c, 0].transAxes, ha="right", va="center", fontsize="small")
    if title:
        fig.suptitle(title)
    plt.tight_layout(pad=0.3 if columns else 0.1)
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


def per_class_bars(table, ax=None, metric: str = "F1", vertical: bool = False, lim: tuple[float, float] = (0, 1),
                   legend: str = "lower right", figsize: tuple[float, float] | None = None, title: str | None = None):
    """Grouped bars: classes as rows of `table`, one bar per run (column); `vertical` with a zoomed `lim`
    puts the classes side by side on a wide slide."""
    if vertical:
        ax = table.plot.bar(figsize=figsize or (max(6, 0.8 * len(table)), 4), ax=ax, width=0.8, rot=25)
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        ax.set(ylabel=f"{metric} score", ylim=lim, xlabel="")
        ax.grid(alpha=0.3, axis="y")
    else:
        ax = table.plot.barh(figsize=figsize or (7, max(3.5, 0.45 * len(table))), ax=ax, width=0.8)
        ax.invert_yaxis()
        ax.set(xlabel=metric, xlim=lim)
    ax.set_title(f"per-class {metric}" if title is None else title)
    _finish(ax, legend, fontsize=None if legend in ("above", "right") else "small")
    plt.tight_layout()
    return ax


def data_size_curve(results, ax=None, names: dict[str, str] | None = None, percent: bool = False, legend: str = "best",
                    size_ticks: bool = False, figsize: tuple[float, float] = (6, 4), title: str | None = None, **line_kw):
    """Test accuracy against the number of training images (log scale), one line per approach (renamed by `names`).

    `results` has columns approach, train images, test acc (as `study.data_size_study` returns). Each point is
    labelled, the higher of two at one size above and the lower below so they never overlap; `size_ticks` puts the
    x ticks at the sizes themselves (12,500 rather than 10^4).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    top = results.groupby("train images")["test acc"].max()
    for approach, group in results.groupby("approach", sort=False):
        group = group.sort_values("train images")
        ax.plot(group["train images"], group["test acc"], marker="o", label=(names or {}).get(approach, approach), **line_kw)
        for _, r in group.iterrows():
            above = r["test acc"] >= top[r["train images"]]
            ax.annotate(f"{r['test acc']:.1%}", (r["train images"], r["test acc"]), textcoords="offset points",
                        xytext=(4, 6) if above else (4, -6), va="bottom" if above else "top", fontsize="small")
    ax.set(xscale="log", xlabel="training images (log scale)", ylabel="test accuracy",
           title="accuracy against training-set size" if title is None else title)
    if size_ticks:
        ticks = sorted(results["train images"].unique())
        ax.set_xticks(ticks, [f"{n:,}" for n in ticks])
        ax.minorticks_off()
        ax.margins(x=0.12, y=0.15)
    ax.grid(alpha=0.3)
    _finish(ax, legend, percent)
    plt.tight_layout()
    return ax


def gradcam_grid(images, overlays: dict, titles: list[str], captions: dict[str, list[str]] | None = None,
                 figsize: tuple[float, float] | None = None, fontsize: str | float = "x-small"):
    """Columns are images; the first row the images themselves, then one row of heat maps per model, each
    map optionally captioned (`captions[model][j]`, e.g. what that model predicted)."""
    n, rows = len(images), 1 + len(overlays)
    fig, axes = plt.subplots(rows, n, figsize=figsize or (1.6 * n, 1.75 * rows), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(images[j].permute(1, 2, 0).numpy())
        axes[0, j].set_title(titles[j], fontsize=fontsize)
        for i, (name, maps) in enumerate(overlays.items(), start=1):
            axes[i, j].imshow(maps[j])
            if captions and name in captions:
                axes[i, j].set_title(captions[name][j], fontsize=fontsize)
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


def accuracy_over_time(runs: dict[str, dict], threshold: float | None = None, ax=None, minutes: bool = False,
                       logx: bool = False, percent: bool = False, legend: str = "best",
                       figsize: tuple[float, float] = (7, 4), title: str | None = None, marker: str = "."):
    """Validation accuracy against wall-clock training seconds (or `minutes`), feature extraction included.

    Epochs mean different amounts of work for different models; seconds on the same device
    are the fair axis for "which approach gets there first". `logx` spreads runs that differ 100x in cost.
    """
    from .compare import feature_seconds

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    unit = 60 if minutes else 1
    for name, m in runs.items():
        if all(r["val_acc"] is None for r in m["history"]):  # trained with --val-size 0: nothing to draw
            continue
        start = feature_seconds(m)
        seconds = [(start + r["train_seconds"]) / unit for r in m["history"]]
        ax.plot(seconds, [r["val_acc"] for r in m["history"]], marker=marker, label=name)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"threshold {threshold:.0%}")
    ax.set(xlabel=f"training {'minutes' if minutes else 'seconds'} (incl. feature extraction)",
           ylabel="validation accuracy", title="validation accuracy over time" if title is None else title)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.02, not 2 x 10^-2
        few = lambda v: (np.log10(ax.get_xlim()[1] / ax.get_xlim()[0]) < 1.5  # minor labels 2, 3, 5 x 10^k, and
                         and round(v / 10 ** np.floor(np.log10(v))) in (2, 3, 5))  # only where they do not crowd
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if few(v) else ""))
    ax.grid(alpha=0.3)
    _finish(ax, legend, percent, fontsize=None if legend in ("above", "right") else "small")
    plt.tight_layout()
    return ax
