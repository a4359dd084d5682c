"""Writes the numbered notebooks (without outputs). Edit the cells here, then run this script."""

from __future__ import annotations

from pathlib import Path

from nb import code, md, write

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

SETUP = '''
%load_ext autoreload
%autoreload 2
import os
import matplotlib.pyplot as plt
import pandas as pd
import cnnlab
from cnnlab import paths
from cnnlab.device import pick_device, describe_device
from cnnlab.profiles import get_profile

PROFILE = get_profile().name          # smoke | quick | full, from CNNLAB_PROFILE
DEVICE = pick_device()                # CUDA, then Apple MPS, then CPU
RUNS = paths.runs_dir() / PROFILE     # every run of this profile lives here
pd.options.display.float_format = '{:.3f}'.format
print(f'profile={PROFILE}  device={describe_device(DEVICE)}  runs={RUNS}')
'''


def nb01():
    return [
        md("""
# 01 · Looking at the data

A model can only be as good as our understanding of its data. Before training anything we look
at the images, count them, measure their colour statistics and preview the augmentations the
training loop will apply. The same cells work for CIFAR-10, CIFAR-100 and a folder of your own
photos (`CNNLAB_SOURCE=path/to/folder`).
""", slide="slide"),
        code(SETUP, tags=("hide-input",)),
        md("## Loading\nDecoded once into uint8 tensors and cached under `data/cache/`; later loads take "
           "well under a second. A seeded, stratified validation split is carved from the training images."),
        code('''
from cnnlab.data import load_dataset
data = load_dataset()
summary = data.summary()
print(f"{summary['name']}: {data.num_classes} classes, source {summary['source']}")
pd.DataFrame({k: v['images'] for k, v in summary['splits'].items()}, index=['images'])
'''),
        md("## What the classes look like\nEight training images per class. At 32×32 pixels even a person "
           "hesitates between some cats and dogs.", slide="slide"),
        code('''
from cnnlab import plots
from cnnlab.data import fix_size
train = data.train if data.train.is_stacked else fix_size(data.train, 64)
plots.image_grid(train.images, train.labels, data.classes, per_class=8);
'''),
        md("## Images per class and split\nBalanced classes mean plain accuracy is a fair summary; the "
           "validation split keeps the same balance because it is stratified.", slide="slide"),
        code('''
plots.class_counts(summary);
'''),
        md("## Image sizes\nCIFAR images are all 32×32; a folder of photos usually is not, and "
           "`fix_size` (shorter side, then a centre crop) makes them one size before batching."),
        code('''
{split: v['sizes'] for split, v in summary['splits'].items()}
'''),
        md("## Colour statistics\nThe per-channel mean and standard deviation are measured on the "
           "training split only, so nothing about the test images leaks into preprocessing."),
        code('''
pd.DataFrame({'mean': data.mean, 'std': data.std}, index=['R', 'G', 'B'])
'''),
        md("## Augmentation, previewed\nEach column applies one augmentation to the same six images. "
           "All of them run on whole batches on the device, with a different random draw per image.",
           slide="slide"),
        code('''
import torch
from cnnlab.data import augment as aug
sample = train.images[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:6]]
plots.augmentation_preview(sample, {
    'original': lambda x, g: x,
    'translate ±4': lambda x, g: aug.random_translate(x, 4, g),
    'flip': lambda x, g: aug.random_flip(x, g),
    'colour jitter': lambda x, g: aug.colour_jitter(x, 0.4, g),
    'rotate/zoom': lambda x, g: aug.random_affine(x, 15, 0.15, g),
    'cutout': lambda x, g: aug.random_cutout(x, 12, g),
    'resize 96': lambda x, g: aug.resize_batch(x, 96),
});
'''),
        md("## What normalisation does\nSubtracting the mean and dividing by the standard deviation "
           "centres every channel at zero with unit spread, which keeps the first layer's inputs "
           "on the scale its initialisation expects."),
        code('''
from cnnlab.data import BatchLoader
batch = train.images[:512].float() / 255
normalised, _ = next(iter(BatchLoader(train, 512, data.mean, data.std)))
plots.channel_histograms(batch, normalised);
'''),
        md("""
## Summary
* The classes are balanced, the images small; the validation split is stratified and seeded.
* Channel statistics come from the training split only.
* Augmentations are cheap batch operations; translate and flip are the ones the scratch models use.

## Exercises
1. Point `CNNLAB_SOURCE` at a folder of your own photos and run this notebook again.
2. Which augmentation would hurt a digit classifier? Why is flipping safe for CIFAR-10?
"""),
    ]


def nb02():
    return [
        md("""
# 02 · A CNN from scratch

Before borrowing anything from ImageNet we ask how far a convolutional network gets when it
learns **only from CIFAR-10**. We train two networks from random weights:

* `baseline` — the classic coursework CNN (three conv blocks, batch norm, dropout, Adam);
* `fast` — an airbench-style network engineered for accuracy per second.

Everything below calls the `cnnlab` package; this notebook only tells the story.
""", slide="slide"),
        md("The profile (`smoke`, `quick` or `full`) comes from `CNNLAB_PROFILE`; the same cells run a "
           "seconds-long smoke test in CI and the real study on the full data."),
        code(SETUP, tags=("hide-input",)),
        md("## The data\nThe validation split is carved from the training images; the test set is only used "
           "once, at the very end."),
        code('''
from cnnlab.data import load_dataset
data = load_dataset()                 # CNNLAB_SOURCE, or CIFAR-10 through torchvision
pd.DataFrame({k: v['images'] for k, v in data.summary()['splits'].items()}, index=['images'])
'''),
        md("""
## Two architectures
The baseline doubles its width at each of three stages and pools 32 → 16 → 8 → 4; dropout grows
with depth because deeper layers overfit more. The fast network follows airbench: a frozen
*whitening* first layer computed from the data, three wide conv groups, a max-pooled head and
label smoothing, trained with SGD-Nesterov on a warm-up/decay schedule.
""", slide="slide"),
        code('''
from cnnlab.models import build_model
from cnnlab.models.scratch import summarize
pd.DataFrame({name: summarize(build_model(name, data.num_classes)) for name in ['baseline', 'fast']}).T
'''),
        md("## Training\nEach run writes `model.pth` (weights plus everything needed to use them), "
           "`history.json` and `metrics.json`. Runs that already finished are read back, not retrained."),
        code('''
from cnnlab.runs import train_run
from cnnlab.compare import load_run

def run(name):
    out = RUNS / name
    if not (out / 'metrics.json').exists():
        train_run(name, data=data, out=out, profile=PROFILE, device=str(DEVICE))
    return load_run(out)

runs = {name: run(name) for name in ['baseline', 'fast']}
'''),
        md("## Learning curves\nDashed: training; solid: validation. A widening gap is overfitting; "
           "the fast net's short schedule ends with the learning rate at zero.", slide="slide"),
        code('''
from cnnlab import plots
plots.learning_curves({k: v['history'] for k, v in runs.items()});
'''),
        md("## Train, validation and test accuracy", slide="slide"),
        code('''
from cnnlab.compare import results_table
results_table(runs)
'''),
        md("## Where the fast network errs\nCounts on the left; on the right each row is divided by its "
           "class size, so the diagonal is per-class recall.", slide="slide"),
        code('''
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
fast = runs['fast']
plots.confusion_matrix(fast['confusion_matrix'], data.classes, ax=axes[0])
plots.confusion_matrix(fast['confusion_matrix'], data.classes, normalize=True, ax=axes[1])
plt.tight_layout()
'''),
        md("## Per-class precision, recall and F1 (fast)"),
        code('''
pd.DataFrame(fast['per_class']).T
'''),
        code('''
print(fast['report'])
'''),
        md("""
## Summary
* Both networks learn CIFAR-10 from nothing but its 45,000 training images.
* The engineering in `fast` (whitening, label smoothing, a short warm-up/decay schedule, flip
  test-time augmentation) buys far more accuracy per second than the baseline recipe.
* Cats, dogs and birds are the classes every scratch model confuses most.

## Exercises
1. Train `residual` (`cnnlab train --model residual`) and add it to the table.
2. Remove label smoothing from the fast recipe and measure the change on the validation set.
3. What happens to the baseline without dropout? Look at the gap between the curves.
"""),
    ]


if __name__ == "__main__":
    NOTEBOOKS.mkdir(exist_ok=True)
    write(NOTEBOOKS / "01_data_exploration.ipynb", nb01())
    write(NOTEBOOKS / "02_cnn_from_scratch.ipynb", nb02())
    print("wrote notebooks")
