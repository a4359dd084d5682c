"""Helpers the lessons use: comparison words that follow the numbers, and two small figures."""

from __future__ import annotations

import matplotlib
import pandas as pd
import torch

from cnnlab import plots
from cnnlab.compare import than

matplotlib.use("Agg")


def test_than_follows_the_direction_of_the_numbers():
    # the sentence notebook 04 once generated: 4.0 M parameters for the backbone against 4.6 M for `fast`
    assert than(4.0, 4.6, "more", "fewer") == "fewer than"
    assert than(4.6, 4.0, "more", "fewer") == "more than"
    assert than(300.0, 2000.0, "faster", "slower") == "slower than"
    assert than(1.0, 1.01, "larger", "smaller") == "about the same as"
    assert than(1.0, 1.01, "larger", "smaller", rel_tol=0.001) == "smaller than"
    assert than(5, 5, "higher", "lower", same="level with") == "level with"


def test_captioned_images_draws_one_panel_per_image():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    fig = plots.captioned_images(images, [f"image {i}" for i in range(5)], cols=4, title="five")
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == [f"image {i}" for i in range(5)] and len(fig.axes) == 8


def test_tradeoff_labels_every_point():
    table = pd.DataFrame({"pipeline s": [10.0, 30.0], "val acc": [0.6, 0.7]}, index=["32 px", "64 px"])
    ax = plots.tradeoff(table, title="size")
    assert [t.get_text() for t in ax.texts] == ["32 px", "64 px"]
    assert ax.get_xlabel() == "pipeline s" and ax.get_ylabel() == "val acc"
