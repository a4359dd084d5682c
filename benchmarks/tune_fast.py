"""Tune and reproduce the `fast` scratch CNN on CPU (airbench style: one self-contained loop).

    python benchmarks/tune_fast.py --profile quick          # the recipe in RECIPES['fast'], quick budget
    python benchmarks/tune_fast.py --profile full
    python benchmarks/tune_fast.py --bench                  # throughput table: widths x batch x memory format
    python benchmarks/tune_fast.py --profile quick --set widths=48,192,192 epochs=3 lookahead=0

Trains on the 45k training split only (the 5k validation split is evaluated per epoch but never
trained on), then evaluates the 10k test split with no TTA, flip TTA and flip+translate TTA.
Training seconds exclude the per-epoch validation passes and the final test pass.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data import AugmentConfig, BatchLoader, load_dataset
from cnnlab.models.scratch import RECIPES, build_scratch, summarize

SOURCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpeg.tar.gz"


# --------------------------------------------------------------------------------------------
# Lookahead / EMA of weights (airbench94): every k steps pull the EMA towards the weights, then
# copy the EMA back into the model. decay grows as 0.95**k * progress**3: none early, strong late.
# --------------------------------------------------------------------------------------------

class Lookahead:
    def __init__(self, model: nn.Module):
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for k, v in model.state_dict().items():
            if k in self.ema:
                self.ema[k].lerp_(v, 1 - decay)
                v.copy_(self.ema[k])


def lr_factor(step: int, total: int, warmup: float, start: float, end: float) -> float:
    """Linear warm-up from `start` to 1 over `warmup` of the steps, then linear decay to `end`."""
    warm = int(total * warmup)
    if step < warm:
        frac = step / warm
        return start * (1 - frac) + frac
    frac = (step - warm) / max(1, total - warm)
    return (1 - frac) + end * frac


# --------------------------------------------------------------------------------------------
# Evaluation: the six views of airbench's tta_level=2, and the accuracy at each TTA level
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def tta_logits(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Logits with no TTA, flip TTA, and flip + 1-pixel translate TTA (up-left / down-right)."""
    def mirror(inp: torch.Tensor) -> torch.Tensor:
        return 0.5 * model(inp) + 0.5 * model(inp.flip(-1))
    plain = model(x)
    flip = 0.5 * plain + 0.5 * model(x.flip(-1))
    H, W = x.shape[-2:]
    padded = F.pad(x, (1,) * 4, mode="reflect")
    shifted = 0.5 * mirror(padded[:, :, :H, :W].contiguous(memory_format=torch.channels_last)) \
        + 0.5 * mirror(padded[:, :, 2:, 2:].contiguous(memory_format=torch.channels_last))
    return {"none": plain, "flip": flip, "flip_translate": 0.5 * flip + 0.5 * shifted}


@torch.no_grad()
def evaluate(model: nn.Module, loader: BatchLoader, tta: bool = False) -> dict[str, float]:
    model.eval()
    correct: dict[str, int] = {}
    n = 0
    for X, y in loader:
        outs = tta_logits(model, X) if tta else {"none": model(X)}
        for k, logits in outs.items():
            correct[k] = correct.get(k, 0) + (logits.argmax(1) == y).sum().item()
        n += len(y)
    model.train()
    return {k: v / n for k, v in correct.items()}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def train(cfg: dict, data, log=print) -> dict:
    torch.manual_seed(cfg["seed"])
    model = build_scratch("fast", data.num_classes, **cfg["model_kwargs"])
    mf = torch.channels_last if cfg["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=mf)
    aug = AugmentConfig(**cfg["augment"])
    train_loader = BatchLoader(data.train, cfg["batch_size"], data.mean, data.std, shuffle=True, augment=aug,
                               drop_last=True, seed=cfg["seed"], channels_last=cfg["channels_last"])
    val_loader = BatchLoader(data.val, 1000, data.mean, data.std, channels_last=cfg["channels_last"])
    test_loader = BatchLoader(data.test, 1000, data.mean, data.std, channels_last=cfg["channels_last"])
    total_steps = math.ceil(len(train_loader) * cfg["epochs"])

    params = model.param_groups(cfg["lr"], cfg["weight_decay"])
    optimizer = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"])
    sched = cfg["schedule"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, sched["warmup"], sched["start_factor"], sched["end_factor"]))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
    lookahead = Lookahead(model) if cfg["lookahead"] else None
    k = cfg["lookahead_every"]
    step_fn = torch.compile(model) if cfg["compile"] else model

    t0 = time.perf_counter()
    if cfg["init"] == "whitening":
        model.init_whitening(train_loader.prepare(data.train.images[:5000], augment=False))
    train_seconds = time.perf_counter() - t0
    step, rows = 0, []
    for epoch in range(math.ceil(cfg["epochs"])):
        # a frozen whitening bias lets autograd skip the first ConvGroup's input gradient
        model.whiten.bias.requires_grad = epoch < cfg["whiten_bias_epochs"]
        t0 = time.perf_counter()
        for X, y in train_loader:
            loss = loss_fn(step_fn(X), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if lookahead is not None and step % k == 0:
                lookahead.update(model, decay=cfg["lookahead_decay"] ** k * (step / total_steps) ** 3)
            if step >= total_steps:
                break
        if lookahead is not None and step >= total_steps:
            lookahead.update(model, decay=1.0)  # finish on the averaged weights
        train_seconds += time.perf_counter() - t0
        val = evaluate(model, val_loader)["none"]
        rows.append({"epoch": epoch + 1, "loss": round(loss.item(), 4), "val_acc": round(val, 4),
                     "train_s": round(train_seconds, 1)})
        log(f"epoch {epoch + 1:>3}  loss {loss.item():.4f}  val {val:.4f}  train_s {train_seconds:7.1f}")
    t0 = time.perf_counter()
    test = evaluate(model, test_loader, tta=True)
    eval_seconds = time.perf_counter() - t0
    images = step * cfg["batch_size"]
    return {"test_acc": test, "val_acc": rows[-1]["val_acc"], "train_seconds": round(train_seconds, 1),
            "eval_seconds": round(eval_seconds, 1), "images_per_s": round(images / train_seconds, 1),
            "steps": step, "epochs": rows, "summary": summarize(model, (3, 32, 32))}


# --------------------------------------------------------------------------------------------
# Throughput microbenchmark (random data, training steps only)
# --------------------------------------------------------------------------------------------

def bench(widths_list, batch_sizes, channels_last_opts, steps: int = 4, compile_: bool = False) -> None:
    print(f"{'widths':>14} {'batch':>6} {'mem':>6} {'MMACs':>7} {'img/s':>8}")
    for widths in widths_list:
        for bs in batch_sizes:
            for cl in channels_last_opts:
                model = build_scratch("fast", 10, widths=widths)
                mf = torch.channels_last if cl else torch.contiguous_format
                model = model.to(memory_format=mf)
                opt = torch.optim.SGD(model.param_groups(0.1, 1e-3), lr=0.1, momentum=0.85, nesterov=True)
                fn = torch.compile(model) if compile_ else model
                X = torch.randn(bs, 3, 32, 32).contiguous(memory_format=mf)
                y = torch.randint(0, 10, (bs,))
                for i in range(steps + 2):
                    if i == 2:
                        t0 = time.perf_counter()
                    loss = F.cross_entropy(fn(X), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                dt = time.perf_counter() - t0
                macs = summarize(model)["macs"] / 1e6
                print(f"{str(widths):>14} {bs:>6} {'CL' if cl else 'NCHW':>6} {macs:7.1f} {steps * bs / dt:8.1f}",
                      flush=True)


def resolve(profile: str, overrides: list[str]) -> dict:
    recipe = RECIPES["fast"]
    cfg = {k: v for k, v in recipe.items() if k not in ("epochs", "model_kwargs")}
    cfg["epochs"] = recipe["epochs"][profile]
    cfg["model_kwargs"] = dict(recipe["model_kwargs"][profile])
    cfg.update(seed=0, compile=False)
    for item in overrides:
        key, value = item.split("=", 1)
        if key == "widths":
            cfg["model_kwargs"]["widths"] = tuple(int(v) for v in value.split(","))
        elif key in ("crop_padding", "flip"):
            cfg["augment"] = {**cfg["augment"], key: int(value) if key == "crop_padding" else bool(int(value))}
        elif key in ("warmup", "start_factor", "end_factor"):
            cfg["schedule"] = {**cfg["schedule"], key: float(value)}
        elif key in cfg:
            old = cfg[key]
            cfg[key] = value if isinstance(old, str) else json.loads(value)  # numbers, true/false, null
            if key == "batch_size" and "lr" not in " ".join(overrides):
                cfg["lr"] = recipe["lr"] * cfg["batch_size"] / recipe["batch_size"]  # lr per image stays put
        else:
            raise SystemExit(f"unknown key {key!r}; known: {sorted(cfg)} + widths, crop_padding, flip, warmup, ...")
        print(f"override {key} = {value}")
    return cfg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    p.add_argument("--set", nargs="*", default=[], help="recipe overrides key=value")
    p.add_argument("--bench", action="store_true", help="throughput table instead of training")
    p.add_argument("--compile", action="store_true", help="with --bench: time torch.compile'd steps")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="append the result as one JSON line here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    if args.bench:
        widths = [(32, 128, 128), (40, 160, 160), (48, 192, 192), (64, 256, 256)]
        bench(widths, [128, 256, 512], [True, False], compile_=args.compile)
        return
    cfg = resolve(args.profile, args.set)
    data = load_dataset(str(SOURCE.resolve()), profile="smoke" if args.profile == "smoke" else None)
    print(f"data: train {len(data.train)}  val {len(data.val)}  test {len(data.test)}  device: {device}")
    print("config:", json.dumps(cfg, default=str))
    result = train(cfg, data)
    t = result["test_acc"]
    print(f"RESULT profile={args.profile} test_acc: none {t['none']:.4f} flip {t['flip']:.4f} "
          f"flip+translate {t['flip_translate']:.4f} | train_s {result['train_seconds']} "
          f"img/s {result['images_per_s']} eval_s {result['eval_seconds']} | device {device} "
          f"| torch {torch.__version__}")
    print("summary:", result["summary"])
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps({"profile": args.profile, "cmd": sys.argv, "config": cfg, **result}, default=str) + "\n")


if __name__ == "__main__":
    main()
