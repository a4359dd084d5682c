"""The options the talk (notebook 08) uses; the defaults the lessons (01-07) use stay as they were."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import torch

from cnnlab import plots

matplotlib.use("Agg")

CLASSES = ["airplane", "automobile", "bird"]


def _run(seconds: list[float], accs: list[float], feature_seconds: float = 0.0) -> dict:
    return {"feature_seconds": feature_seconds,
            "history": [{"train_seconds": s, "val_acc": a} for s, a in zip(seconds, accs)]}


def test_image_grid_puts_classes_in_rows_or_columns():
    images = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(12) % 3
    rows = plots.image_grid(images, labels, CLASSES, per_class=4)
    assert len(rows.axes) == 12 and not any(ax.get_title() for ax in rows.axes)
    cols = plots.image_grid(images, labels, CLASSES, per_class=4, columns=True, figsize=(11, 5))
    assert [ax.get_title() for ax in cols.axes[:3]] == CLASSES and tuple(cols.get_size_inches()) == (11, 5)
    plt.close("all")


def test_accuracy_over_time_in_minutes_on_a_log_axis_with_the_legend_outside():
    runs = {"scratch": _run([60, 120, 600], [0.5, 0.7, 0.9]), "transfer": _run([30, 60], [0.8, 0.85], 120)}
    ax = plots.accuracy_over_time(runs, threshold=0.9, minutes=True, logx=True, percent=True, legend="right", title="")
    assert list(ax.lines[1].get_xdata()) == [2.5, 3.0] and ax.get_xscale() == "log" and ax.get_title() == ""
    assert ax.xaxis.get_minor_formatter()(0.02, 0) == "0.02"
    assert not ax.get_legend().get_frame_on() and ax.yaxis.get_major_formatter()(0.5, 0).endswith("%")
    assert plots.accuracy_over_time(runs).get_title() == "validation accuracy over time"  # the lessons' default
    plt.close("all")


def test_data_size_curve_renames_labels_points_and_ticks_the_sizes():
    table = pd.DataFrame({"approach": ["scratch", "transfer"] * 2, "train images": [500, 500, 5000, 5000],
                          "test acc": [0.3, 0.6, 0.7, 0.65]})
    ax = plots.data_size_curve(table, names={"transfer": "pretrained"}, legend="above", size_ticks=True, linewidth=3)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["scratch", "pretrained"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["500", "5,000"] and ax.lines[0].get_linewidth() == 3
    below = {t.get_text(): t.get_va() for t in ax.texts}
    assert below == {"30.0%": "top", "60.0%": "bottom", "70.0%": "bottom", "65.0%": "top"}
    plt.close("all")


def test_per_class_bars_stand_upright_with_a_zoomed_axis():
    f1 = pd.DataFrame({"fast": [0.6, 0.8, 0.7], "partial": [0.7, 0.9, 0.6]}, index=CLASSES)
    ax = plots.per_class_bars(f1, vertical=True, lim=(0.5, 1.0), legend="above", title="")
    assert ax.get_ylim() == (0.5, 1.0) and [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert plots.per_class_bars(f1).get_xlim() == (0, 1)
    plt.close("all")


def test_gradcam_grid_captions_each_heat_map():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    maps = [torch.rand(8, 8, 3).numpy()] * 2
    fig = plots.gradcam_grid(images, {"fast": maps}, ["cat", "dog"], captions={"fast": ["✓ cat", "✗ cat"]})
    assert [ax.get_title() for ax in fig.axes] == ["cat", "dog", "✓ cat", "✗ cat"]
    plt.close("all")


def test_confusion_matrix_in_whole_percent_hides_the_noise():
    ax = plots.confusion_matrix([[97, 2, 1], [10, 90, 0], [0, 0, 50]], CLASSES, percent=True, hide_below=0.03, short=4)
    assert sorted(t.get_text() for t in ax.texts if t.get_text()) == sorted(["97", "10", "90", "100"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["airp", "auto", "bird"]
    counts = plots.confusion_matrix([[3, 1], [0, 4]], CLASSES[:2])
    assert [t.get_text() for t in counts.texts] == ["3", "1", "0", "4"]
    plt.close("all")
