"""The comparison study (runs by name, the small-data experiment) and the explainability tools."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import torch

from cnnlab import explain, plots, study
from cnnlab.compare import confused_pairs_table, results_table
from cnnlab.recipes import resolve
from cnnlab.models import build_model
from cnnlab.models.backbones import build_backbone
from cnnlab.runs import load_data

matplotlib.use("Agg")


pytestmark = pytest.mark.usefixtures("one_thread")


def test_small_data_overrides_give_enough_steps_and_scale_the_lr():
    recipe = resolve("fast", "full", "cpu").config
    big = study.small_data_overrides("fast", "full", 45_000)
    assert (big["batch_size"], big["epochs"]) == (recipe.batch_size, recipe.epochs) == (256, 11)  # the recipe, untouched
    one_pct = study.small_data_overrides("fast", "full", 450)
    assert one_pct["batch_size"] == 32  # 450 // 64 = 7 steps an epoch would be too few
    assert one_pct["lr"] == pytest.approx(big["lr"] * 32 / 256)
    assert one_pct["epochs"] * (450 // one_pct["batch_size"]) >= 300
    ten_pct = study.small_data_overrides("fast", "full", 4_500)
    assert ten_pct["batch_size"] == 256 and ten_pct["epochs"] * (4_500 // 256) >= 300


def test_runs_are_trained_once_then_read_back(tmp_path):
    data = load_data("fake", "smoke")
    first = study.scratch("tiny", "fast", data, tmp_path, "smoke", "cpu", epochs=1, progress=False)
    stamp = (tmp_path / "tiny" / "metrics.json").stat().st_mtime_ns
    again = study.scratch("tiny", "fast", data, tmp_path, "smoke", "cpu", epochs=1, progress=False)
    assert (tmp_path / "tiny" / "metrics.json").stat().st_mtime_ns == stamp  # not retrained
    assert again["test_accuracy"] == first["test_accuracy"] and again["history"]


def test_data_size_study_trains_both_approaches_per_fraction(tmp_path):
    data = load_data("fake", "smoke")
    runs = tmp_path / "runs"
    table = study.data_size_study(data, runs, "smoke", "cpu", fractions=(0.2, 1.0), min_steps=10, progress=False)
    assert list(table["approach"]) == ["scratch", "transfer"] * 2
    small, full = table[table["fraction"] == 0.2], table[table["fraction"] == 1.0]
    assert (small["train images"] < full["train images"].iloc[0]).all()
    assert {p.name for p in runs.iterdir()} == {"fast-20pct", "lite0-frozen-20pct", "fast", "lite0-frozen"}
    assert table["test acc"].between(0, 1).all()
    cfg = json.loads((runs / "fast-20pct" / "metrics.json").read_text())["config"]
    assert cfg["epochs"] * (table["train images"].iloc[0] // cfg["batch_size"]) >= 10
    ax = plots.data_size_curve(table)
    assert len(ax.lines) == 2


def test_tables_add_feature_time_and_confused_pairs():
    hist = [{"epoch": 1, "train_acc": 0.5, "val_acc": 0.6, "train_seconds": 10.0},
            {"epoch": 2, "train_acc": 0.7, "val_acc": 0.8, "train_seconds": 20.0}]
    common = {"test_accuracy": 0.8, "macro_f1": 0.79, "params": 1e6, "size_mb": 4.0, "epochs": 2, "train_seconds": 20.0,
              "images_per_second": 100.0, "device": "cpu", "history": hist, "classes": ["a", "b", "c"],
              "confusion_matrix": [[5, 3, 0], [0, 6, 1], [2, 0, 9]]}
    runs = {"scratch": dict(common), "transfer": {**common, "feature_seconds": 100.0}}
    table = results_table(runs, threshold=0.75)
    assert table.loc["scratch", "s to 75% val"] == 20.0 and table.loc["transfer", "s to 75% val"] == 120.0
    assert table.loc["transfer", "epochs to 75% val"] == 2
    pairs = confused_pairs_table(runs, top=3)
    assert list(pairs["scratch"]) == ["a → b (3)", "c → a (2)", "b → c (1)"]


def test_gradcam_maps_on_a_scratch_net_and_a_backbone():
    fast = build_model("fast", 10, widths=(8, 16, 16)).eval()
    layer = explain.gradcam_layer(fast, 32)
    assert layer is fast.layers[2]  # the second conv group: 7x7 at 32-px input (2x2 whitening, no padding); the third 3x3
    x = torch.randn(3, 3, 32, 32)
    cams = explain.gradcam(fast, x, [0, 1, 2])
    assert cams.shape == (3, 32, 32) and cams.min() >= 0 and cams.max() <= 1
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    over = explain.overlay(images, cams)
    assert len(over) == 3 and over[0].shape == (32, 32, 3) and over[0].dtype == np.uint8

    lite = build_backbone("efficientnet_lite0", 10).eval()
    stage = explain.gradcam_layer(lite, 64)
    shapes = []
    hook = stage.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
    lite(torch.zeros(1, 3, 64, 64))
    hook.remove()
    assert min(shapes[0][-2:]) >= 6 and stage is not lite.blocks()[-1]
    assert explain.gradcam(lite, torch.randn(2, 3, 64, 64), [1, 2]).shape == (2, 64, 64)


def test_confident_mistakes_and_examples():
    labels = torch.tensor([0, 1, 2, 0, 1])
    logits = torch.tensor([[5.0, 0, 0], [3, 0, 0], [0, 9, 0], [0, 0, 1], [0, 4, 0]])
    mistakes = explain.confident_mistakes(logits, labels, top=5)
    assert [m["index"] for m in mistakes] == [2, 1, 3]  # wrong ones only, most confident first
    assert mistakes[0]["true"] == 2 and mistakes[0]["pred"] == 1 and mistakes[0]["prob"] > 0.99
    other = torch.nn.functional.one_hot(labels, 3).float()  # always right
    picked = explain.pick_examples({"a": logits, "b": other}, labels, per_group=5)
    assert sorted(picked["all correct"]) == [0, 4] and sorted(picked["a wrong"]) == [1, 2, 3]
    assert picked["b wrong"] == []


def test_saved_run_explains_itself(tmp_path):
    data = load_data("fake", "smoke")
    study.scratch("fast", "fast", data, tmp_path, "smoke", "cpu", epochs=1, progress=False)
    model, ckpt, preds = explain.load_run_model(tmp_path / "fast")
    assert torch.equal(preds["labels"], data.test.labels)
    x = explain.prepare(data.test.images[:4], ckpt)
    assert x.shape == (4, 3, 32, 32) and abs(float(x.mean())) < 1.5
    cams = explain.gradcam(model, x, preds["logits"][:4].argmax(1).tolist())
    assert cams.shape == (4, 32, 32)
    fig = plots.gradcam_grid(data.test.images[:4], {"fast": explain.overlay(data.test.images[:4], cams)}, ["a"] * 4)
    assert len(fig.axes) == 8
    fig = plots.mistake_gallery(data.test.images, explain.confident_mistakes(preds["logits"], preds["labels"], 6),
                                data.classes, title="fast")
    assert len(fig.axes) == 6
