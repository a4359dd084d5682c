"""Are the EfficientNet-Lite weights really loaded right? Two checks on CIFAR-10, printed as figures.

1. ImageNet semantics: the 1000-way pretrained classifier, run on CIFAR test images upscaled
   to the backbone's input size, should name an ImageNet class of the right kind (ship -> liner/
   container ship/..., cat -> tabby/Siamese/...). A wrong key mapping or normalisation gives ~chance.
   Skipped for data whose classes are not CIFAR-10's.
2. Linear probe: logistic regression on frozen global-average-pooled features, pretrained
   versus the same architecture with random weights.

    python benchmarks/probe_backbones.py --source ../shared/data/cifar10-png.tar.gz   # Lite0, 2,000 train / 1,000 test
    python benchmarks/probe_backbones.py --backbone efficientnet_lite2 --train 5000 --test 2000 --size 224
    python benchmarks/probe_backbones.py --source fake --train 200 --test 100 --size 32   # checks the plumbing

The data default to the lossless archive ../shared/data/cifar10-png.tar.gz (`--source` for another).
"""

from __future__ import annotations

import argparse
import time

import torch

from cnnlab.data import BatchLoader, load_dataset, subsample
from cnnlab.device import pick_device
from cnnlab.models.backbones import build_backbone, extract_features, imagenet_model, preprocessing
from tune_fast import ARCHIVE, data_label, host_info  # the sibling script: one rule for each

# ImageNet-1k class indices that count as a correct answer for each CIFAR-10 class.
# Sets may overlap (pickup is both a car and a truck to a human labeller).
_r = lambda a, b: set(range(a, b + 1))  # noqa: E731
IMAGENET_FOR_CIFAR: dict[str, set[int]] = {
    "airplane": {403, 404, 405, 812, 895, 908},
    "automobile": {407, 436, 468, 479, 511, 581, 609, 627, 656, 661, 717, 751, 817},
    "bird": _r(7, 24) | _r(80, 100) | _r(127, 146),
    "cat": _r(281, 287),
    "deer": {349, 350, 351, 352, 353},
    "dog": _r(151, 275),
    "frog": {30, 31, 32},
    "horse": {339, 603},
    "ship": {403, 472, 484, 510, 554, 576, 625, 628, 694, 724, 780, 814, 833, 871, 913, 914},
    "truck": {555, 569, 675, 717, 734, 864, 866, 867},
}


@torch.no_grad()
def imagenet_semantic_check(name: str, split, classes: list[str], device: torch.device) -> None:
    pre = preprocessing(name)
    model = imagenet_model(name).to(device).eval()
    loader = BatchLoader(split, 100, pre["mean"], pre["std"], device, image_size=pre["default_input_size"])
    probs = torch.cat([model(x).softmax(-1).cpu() for x, _ in loader])
    top5 = probs.topk(5, dim=-1).indices
    wanted = [IMAGENET_FOR_CIFAR[classes[y]] for y in split.labels.tolist()]
    hit1 = torch.tensor([t[0].item() in w for t, w in zip(top5, wanted)])
    hit5 = torch.tensor([any(i in w for i in t.tolist()) for t, w in zip(top5, wanted)])
    chance = sum(len(IMAGENET_FOR_CIFAR[classes[y]]) for y in split.labels.tolist()) / len(split) / 1000
    # Zero-shot 10-way: sum the ImageNet probabilities of each CIFAR class's group, take the argmax.
    group_prob = torch.stack([probs[:, sorted(IMAGENET_FOR_CIFAR[c])].sum(-1) for c in classes], 1)
    zero_shot = (group_prob.argmax(-1) == split.labels).float()
    print(f"ImageNet-semantic check ({name}, {len(split)} CIFAR test images at {pre['default_input_size']} px): "
          f"top-1 in the right ImageNet group {hit1.float().mean():.1%}, top-5 {hit5.float().mean():.1%} "
          f"(uniform-guess chance {chance:.1%}); mean top-1 confidence {probs.max(-1).values.mean():.2f}; "
          f"zero-shot 10-way accuracy from summed group probabilities {zero_shot.mean():.1%} (chance 10%)")
    for c, cname in enumerate(classes):
        mask = split.labels == c
        print(f"  {cname:<10} top-1 {hit1[mask].float().mean():6.1%}  top-5 {hit5[mask].float().mean():6.1%}  "
              f"zero-shot {zero_shot[mask].mean():6.1%}")


def linear_probe(name: str, pretrained: str, train, test, size: int, device: torch.device) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pre = preprocessing(name)
    torch.manual_seed(0)  # the random-init baseline is one fixed draw, not a new one each run
    model = build_backbone(name, num_classes=10, pretrained=pretrained).to(device)
    feats = {}
    for split_name, split in (("train", train), ("test", test)):
        loader = BatchLoader(split, 100, pre["mean"], pre["std"], device, image_size=size)
        feats[split_name] = extract_features(model, loader)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    clf.fit(feats["train"][0].numpy(), feats["train"][1].numpy())
    return float(clf.score(feats["test"][0].numpy(), feats["test"][1].numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(ARCHIVE), help="default: the lossless CIFAR-10 archive in ../shared/data")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128, help="probe input size in px")
    parser.add_argument("--semantic", type=int, default=1000, help="test images for the ImageNet check (0 = skip)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    start = time.perf_counter()
    data = load_dataset(args.source)
    print(f"data {data_label(args.source)} ({data.source}): {len(data.train)} train / {len(data.test)} test images")
    print(host_info(device, amp=False))  # the probe computes in fp32 (no autocast)

    if args.semantic and set(data.classes) <= set(IMAGENET_FOR_CIFAR):
        t = time.perf_counter()
        imagenet_semantic_check(args.backbone, subsample(data.test, args.semantic, seed=1), data.classes, device)
        print(f"  ({time.perf_counter() - t:.1f} s)")
    else:
        print(f"ImageNet-semantic check skipped: {'--semantic 0' if not args.semantic else 'not the CIFAR-10 classes'}")

    train, test = subsample(data.train, args.train, seed=0), subsample(data.test, args.test, seed=0)
    for pretrained in ("imagenet", "none"):
        t = time.perf_counter()
        acc = linear_probe(args.backbone, pretrained, train, test, args.size, device)
        print(f"linear probe {args.backbone} pretrained={pretrained:<8} {len(train)} train / {len(test)} test "
              f"at {args.size} px: test accuracy {acc:.1%}  ({time.perf_counter() - t:.1f} s)")
    print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
