"""The trainer: it learns, checkpoints, resumes after kill -9, survives Ctrl-C, repeats itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cnnlab import checkpoint
from cnnlab.data import AugmentConfig, DataError, load_dataset
from cnnlab.device import seed_everything
from cnnlab.models import build_model
from cnnlab.optim import Muon, orthogonalize
from cnnlab.recipes import DEVICE_TYPES, PROFILE_NAMES, RECIPES, UNSET, resolve, value_for
from cnnlab.runs import load_data, make_loaders
from cnnlab.train import fit
from cnnlab.trainconfig import TrainConfig, epoch_image_size, lr_factor, make_optimizer

CPU = torch.device("cpu")

# Batches of 16-64 small images gain nothing from a second thread, and on a busy CPU one more only waits.
pytestmark = pytest.mark.usefixtures("one_thread")


def _small_cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=64, optimizer="adam", lr=2e-3, schedule="onecycle", tta=None,
                augment=AugmentConfig(crop_padding=2, flip=True), weight_decay=0.0)
    return TrainConfig(**{**base, **kw})


def _fit(model, data, cfg: TrainConfig, out_dir, arch: str = "baseline", **kw) -> dict:
    """`train.fit` on a dataset's image loaders, with the meta `runs.train_run` stores."""
    train_loader, val_loader, _ = make_loaders(data, cfg, CPU)
    meta = {"arch": arch, "arch_kwargs": kw.pop("arch_kwargs", {}), "classes": data.classes, "mean": list(data.mean),
            "std": list(data.std), "image_size": cfg.image_size, "source": data.source}
    return fit(model, train_loader, val_loader, cfg, out_dir, CPU, meta=meta, **{"progress": False, **kw})


def test_fit_learns_and_writes_a_self_contained_checkpoint(tmp_path):
    data = load_dataset("fake", val_size=0.2)
    model = build_model("baseline", data.num_classes)
    result = _fit(model, data, _small_cfg(epochs=4), tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 4 == result["epochs"]
    assert set(history[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds"}
    assert max(h["val_acc"] for h in history) > 0.6  # chance is 0.1
    loaded, ckpt = checkpoint.load_model(tmp_path / "model.pth")  # weights_only=True inside
    assert ckpt["classes"] == data.classes and ckpt["arch"] == "baseline" and len(ckpt["mean"]) == 3
    assert ckpt["config"]["epochs"] == 4


def test_same_seed_same_result(tmp_path):
    data = load_dataset("fake", val_size=0.2)
    runs = []
    for i in range(2):
        seed_everything(3)  # as train_run does before building the model
        result = _fit(build_model("baseline", 10), data, _small_cfg(epochs=2, seed=3), tmp_path / str(i))
        runs.append(result["history"][-1]["val_acc"])
    assert abs(runs[0] - runs[1]) <= 0.003


def test_a_time_budget_stops_training_and_anneals_the_lr_by_the_clock(tmp_path):
    data = load_dataset("fake", val_size=0.2)
    model = build_model("baseline", data.num_classes)
    cfg = _small_cfg(epochs=50, batch_size=16, schedule="linear", warmup=0.0, final_lr=0.1, time_budget=1.0)
    result = _fit(model, data, cfg, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    assert result["epochs"] < 50 and 1.0 <= history[-1]["train_seconds"] < 5.0
    # a 50-epoch schedule would still be near its peak lr after 1 s; the clock schedule ends near final_lr
    assert history[-1]["lr"] <= 0.25 * cfg.lr


def test_the_schedules_follow_the_clock_only_when_it_runs_ahead_of_the_steps():
    from cnnlab.trainconfig import TrainConfig, schedule_step
    cfg = TrainConfig(time_budget=100.0)
    assert schedule_step(10, 1000, cfg, elapsed=50.0) == 500  # half the budget spent: half-way, by the clock
    assert schedule_step(800, 1000, cfg, elapsed=50.0) == 800  # the steps are ahead: they lead
    assert schedule_step(10, 1000, cfg, elapsed=500.0) == 1000  # past the budget: the end, not beyond it
    assert schedule_step(10, 1000, TrainConfig(time_budget=None), elapsed=500.0) == 10  # no budget: steps only


def test_a_run_that_stops_early_ends_its_progress_bar_at_100_percent_with_the_reason(tmp_path, capsys):
    data = load_dataset("fake", val_size=0.2)
    cfg = _small_cfg(epochs=50, batch_size=16, time_budget=0.5)
    result = _fit(build_model("baseline", data.num_classes), data, cfg, tmp_path, progress=True)
    done = result["epochs"]
    assert done < 50
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and f"{done}/{done}" in last  # not "2/50", which reads like a run that died
    assert "val_acc=" in last and last.endswith("time budget of 0.5 s spent]")


def test_resume_refuses_a_different_config(tmp_path):
    data = load_dataset("fake", val_size=0.2)
    _fit(build_model("baseline", 10), data, _small_cfg(epochs=1), tmp_path)
    with pytest.raises(DataError, match="another configuration"):
        _fit(build_model("baseline", 10), data, _small_cfg(epochs=1, lr=0.5), tmp_path)
    with pytest.raises(DataError, match="another configuration"):  # same config, another network
        _fit(build_model("fast", 10, widths=(8, 16, 16)), data, _small_cfg(epochs=1), tmp_path, arch="fast")


def test_orthogonalize_flattens_the_spectrum():
    G = torch.randn(64, 288) * torch.logspace(-3, 0, 288)  # singular values spread over 3 decades
    s = torch.linalg.svdvals(orthogonalize(G))
    assert s.shape == (64,) and s.min() > 0.5 and s.max() < 1.3
    assert orthogonalize(G.T).shape == (288, 64)


def test_orthogonalize_in_bf16_flattens_the_spectrum_and_returns_bf16():
    G = torch.randn(64, 288) * torch.logspace(-3, 0, 288)
    X = orthogonalize(G, dtype=torch.bfloat16)
    s = torch.linalg.svdvals(X.float())
    assert X.dtype == torch.bfloat16 and s.min() > 0.5 and s.max() < 1.3


def test_muon_orthogonalizes_in_bf16_only_where_the_device_computes_it(monkeypatch):
    import cnnlab.trainconfig as train_module
    model = build_model("fast", 10, widths=(8, 16, 16))
    cfg = TrainConfig(optimizer="muon")
    monkeypatch.setattr(train_module, "amp_dtype", lambda device, enabled=True: torch.bfloat16 if enabled else None)
    assert make_optimizer(model, cfg).ns_dtype == torch.bfloat16
    assert make_optimizer(model, replace(cfg, amp=False)).ns_dtype == torch.float32
    monkeypatch.setattr(train_module, "amp_dtype", lambda device, enabled=True: None)  # an fp32-only CPU
    assert make_optimizer(model, cfg).ns_dtype == torch.float32


def test_muon_steps_filters_at_fixed_norm_and_the_rest_exactly_as_sgd():
    torch.manual_seed(0)
    model = build_model("fast", 10, widths=(8, 16, 16))
    cfg = TrainConfig(optimizer="muon", lr=0.1, momentum=0.85, weight_decay=1e-3, muon_lr=0.05)
    opt = make_optimizer(model, cfg)
    ortho = [g for g in opt.param_groups if g["orthogonalize"]]
    assert ortho and all(p.ndim == 4 for g in ortho for p in g["params"])
    assert all(g["lr"] == 0.05 and g["momentum"] == cfg.muon_momentum for g in ortho)
    assert all(g["ns_steps"] == 5 for g in ortho)
    assert all(g["ns_steps"] == 3 for g in make_optimizer(model, replace(cfg, muon_ns_steps=3)).param_groups)
    twin = build_model("fast", 10, widths=(8, 16, 16))
    twin.load_state_dict(model.state_dict())
    sgd_groups = [{**g, "params": [dict(twin.named_parameters())[n] for n, p in model.named_parameters()
                                   if any(p is q for q in g["params"])]}
                  for g in opt.param_groups if not g["orthogonalize"]]
    sgd = torch.optim.SGD(sgd_groups, lr=0.1, momentum=0.85, nesterov=True)
    x = torch.randn(4, 3, 32, 32)
    for net, o in ((model, opt), (twin, sgd)):  # one step: after it the filters (and so the grads) differ
        net(x).logsumexp(1).mean().backward()
        o.step()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        if p.ndim == 4 and p.requires_grad:
            assert p.norm().item() == pytest.approx(len(p) ** 0.5, rel=0.2)  # rescaled, then one bounded step
        elif p.requires_grad:
            torch.testing.assert_close(p, q, msg=name)


def test_muon_and_input_mixup_train_the_fast_net_and_resume(tmp_path):
    data = load_dataset("fake", val_size=0.2)
    cfg = _small_cfg(epochs=4, optimizer="muon", lr=0.05, momentum=0.85, muon_lr=0.05, mixup=0.2,
                     schedule="linear", warmup=0.2)
    result = _fit(build_model("fast", 10, widths=(16, 32, 32)), data, cfg, tmp_path, arch="fast",
                  arch_kwargs={"widths": (16, 32, 32)})
    assert max(h["val_acc"] for h in result["history"]) > 0.5  # chance is 0.1
    ckpt = checkpoint.load(tmp_path / "last.pth")
    opt = make_optimizer(build_model("fast", 10, widths=(16, 32, 32)), cfg)
    opt.load_state_dict(ckpt["optimizer"])  # Muon's momentum buffers come back on resume
    assert isinstance(opt, Muon) and len(opt.state) > 0


def test_schedules():
    cfg = TrainConfig(schedule="onecycle", warmup=0.2)
    factors = [lr_factor(s, 100, cfg) for s in range(100)]
    assert factors[0] < 0.1 and max(factors) == pytest.approx(1.0) and factors[-1] < 0.05
    cos = [lr_factor(s, 100, TrainConfig(schedule="cosine", warmup=0.0)) for s in range(100)]
    assert cos[0] == pytest.approx(1.0) and cos[50] == pytest.approx(0.5, abs=0.03)
    assert lr_factor(50, 100, TrainConfig(schedule="plateau")) == 1.0


def _train_cmd(out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "cnnlab.cli", "train", "--source", "fake", "--model", "baseline",
            "--profile", "smoke", "--epochs", str(epochs), "--out", str(out), "--device", "cpu"]


def _wait_for_epochs(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists():
            try:
                if len(json.loads(path.read_text())) >= n:
                    return
            except json.JSONDecodeError:
                pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "trainer exited early"
        time.sleep(0.05)
    raise TimeoutError(f"no {n} epochs in {path}")


def _start_training(tmp_path, epochs: int, wait_for: int):
    """A CLI training run in its own process, returned once `wait_for` epochs are on disk."""
    out = tmp_path / "run"
    env = {**os.environ, "CNNLAB_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_train_cmd(out, epochs), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_epochs(out / "history.json", wait_for, proc)
    return proc, out, env


def test_kill_9_loses_at_most_one_epoch(tmp_path):
    proc, out, env = _start_training(tmp_path, 40, wait_for=3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(json.loads((out / "history.json").read_text()))
    resumed = subprocess.run(_train_cmd(out, 40), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    resumed_from = int(resumed.stdout.split("after epoch ")[1].split()[0])
    assert resumed_from >= done_before - 1 and resumed_from >= 3
    history = json.loads((out / "history.json").read_text())
    epochs = [h["epoch"] for h in history]  # the baseline may stop early, but never repeats or skips an epoch
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > resumed_from
    assert json.loads((out / "metrics.json").read_text())["epochs"] == len(epochs)


def test_ctrl_c_leaves_a_usable_checkpoint(tmp_path):
    proc, out, env = _start_training(tmp_path, 200, wait_for=2)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert "interrupted" in output
    model, ckpt = checkpoint.load_model(out / "model.pth")
    assert ckpt["epoch"] >= 1 and model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert checkpoint.load(out / "last.pth")["state"]["epoch"] >= 2


@pytest.mark.parametrize("model_name", ["baseline", "residual", "fast"])
def test_every_scratch_model_trains_on_cifar100_format_through_train_run(cifar_fixture, tmp_path, model_name):
    from cnnlab.runs import train_run

    cifar_fixture("cifar100", num_classes=100, train_per_class=3, test_per_class=1)
    m = train_run(model_name, "cifar100", tmp_path / model_name, profile="smoke", epochs=1, device="cpu", progress=False)
    assert len(m["per_class"]) == 100 and len(m["confusion_matrix"]) == 100
    for key in ("test_accuracy", "macro_f1", "per_class", "params", "train_seconds", "epochs", "device", "source",
                "profile", "size_mb", "images_per_second", "train_images", "val_images", "test_images"):
        assert key in m, key
    assert (tmp_path / model_name / "model.pth").exists() and (tmp_path / model_name / "history.json").exists()


def test_recipe_model_is_the_net_the_recipe_trains_on_this_profile():
    from cnnlab.runs import recipe_model

    assert recipe_model("fast", 10, "smoke", "cpu").head.in_features == 128  # widths 32/128/128, not the default 256
    widths = resolve("fast", "full", "cpu").model_kwargs["widths"]
    assert recipe_model("fast", 100, "full", CPU).head.in_features == widths[-1] == 256
    assert recipe_model("baseline", 100, "full", CPU).head[-1].out_features == 100
    with pytest.raises(DataError, match="unknown model 'frozen'"):  # a transfer strategy is not a scratch model
        recipe_model("frozen", 10, "full", CPU)


def test_cli_train_then_evaluate(tmp_path, capsys):
    from cnnlab.cli import main

    out = tmp_path / "run"
    assert main(["train", "--source", "fake", "--model", "fast", "--profile", "smoke", "--epochs", "2",
                 "--out", str(out), "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "fast" and metrics["epochs"] == 2 and metrics["profile"] == "smoke"
    assert metrics["precision"] in {"fp32", "bf16 autocast"}  # bf16 on CPUs with AMX / AVX512-BF16
    trained = capsys.readouterr().out
    assert trained.startswith("profile: smoke") and metrics["precision"] in trained and "metrics.json" in trained
    before = {name: (out / name).read_bytes() for name in ("metrics.json", "test_logits.pt", "model.pth")}
    assert main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    evaluated = json.loads((out / "eval.json").read_text())
    assert evaluated["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert evaluated["epoch_of_best"] == metrics["epoch_of_best"]
    logits = torch.load(out / "eval_logits.pt", weights_only=True)["logits"]
    assert torch.allclose(logits, torch.load(out / "test_logits.pt", weights_only=True)["logits"], atol=1e-4)
    assert {name: (out / name).read_bytes() for name in before} == before  # the run itself is untouched
    assert "test accuracy" in printed and "eval.json" in printed


def test_cli_time_budget_stops_a_run_by_the_clock(tmp_path):
    from cnnlab.cli import main

    out = tmp_path / "run"
    assert main(["train", "--source", "fake", "--model", "baseline", "--profile", "smoke", "--epochs", "50",
                 "--time-budget", "1", "--out", str(out), "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["time_budget"] == 1.0 and metrics["epochs"] < 50 and metrics["train_seconds"] < 5


def test_recipes_pick_per_profile_values_and_take_overrides():
    per_profile = {"quick": 0.08, "full": 0.04, "full@cuda": 0.24}
    assert value_for(per_profile, "full") == value_for(per_profile, "full", "cpu") == 0.04
    assert value_for(per_profile, "full", "cuda") == 0.24 and value_for(per_profile, "full", "mps") == 0.04
    assert value_for(per_profile, "quick", "cuda") == 0.08  # only full has a CUDA entry
    assert value_for(per_profile, "smoke") is UNSET  # not set for smoke: the recipe leaves the default
    assert value_for(0.1, "full") == 0.1 and value_for({"crop_padding": 2}, "full") == {"crop_padding": 2}

    cfg = resolve("fast", "full").config
    assert (cfg.muon_lr, cfg.epochs, cfg.augment.crop_padding, cfg.epoch_image_sizes) == (0.08, 11, 2, (16, 24, 32))
    smoke = resolve("fast", "smoke")
    assert smoke.config.epoch_image_sizes == TrainConfig().epoch_image_sizes and smoke.config.epochs == 1
    assert smoke.model_kwargs == {"widths": (32, 128, 128)} and smoke.init == "whitening" and smoke.transfer == {}
    quick = resolve("fast", "quick", lr=0.2, epochs=None, model_kwargs={"widths": (8, 16, 16)})
    assert quick.config.lr == 0.2 and quick.config.muon_lr == 0.08 and quick.config.epochs == 6  # None: the recipe's
    assert quick.config.epoch_image_sizes == (16, 16, 24, 32)
    assert quick.model_kwargs == {"widths": (8, 16, 16)}
    with pytest.raises(ValueError, match="unknown recipe key 'warp'"):
        resolve("fast", "quick", warp=9)
    with pytest.raises(ValueError, match="unknown recipe 'airbench'"):
        resolve("airbench", "quick")


def test_resolved_recipes_differ_by_device_type_only_where_recipes_write_an_at_entry():
    """`resolve(name, profile, "cuda")` differs from the CPU's recipe exactly in the keys that RECIPES writes
    as "<profile>@cuda"; MPS, which has no entries of its own, trains the CPU's recipe."""
    def flat(recipe):
        return {**recipe.config.to_dict(), "model_kwargs": recipe.model_kwargs, "init": recipe.init, **recipe.transfer}

    for name, raw in RECIPES.items():
        for profile in PROFILE_NAMES:
            cpu = flat(resolve(name, profile, "cpu"))
            assert flat(resolve(name, profile, "mps")) == cpu, (name, profile)
            cuda = flat(resolve(name, profile, "cuda"))
            written = {k for k, v in raw.items() if isinstance(v, dict) and f"{profile}@cuda" in v}
            assert {k for k in cpu if cpu[k] != cuda[k]} == written, (name, profile)
    at_keys = [key for raw in RECIPES.values() for v in raw.values() if isinstance(v, dict) for key in v if "@" in key]
    assert at_keys and all(k.split("@")[0] in PROFILE_NAMES and k.split("@")[1] in DEVICE_TYPES for k in at_keys)
    cpu, gpu = resolve("fast", "full", "cpu"), resolve("fast", "full", "cuda")
    assert (cpu.config.batch_size, cpu.config.lr, cpu.config.muon_lr) == (256, 0.375, 0.08)
    assert (gpu.config.batch_size, gpu.config.lr, gpu.config.muon_lr) == (1024, 1.5, 0.24)
    assert (cpu.config.epoch_image_sizes, gpu.config.epoch_image_sizes) == ((16, 24, 32), None)
    assert cpu.config.epochs == gpu.config.epochs == 11 and cpu.model_kwargs == gpu.model_kwargs == {"widths": (64, 256, 256)}
    assert resolve("fast", "quick", "cuda") == resolve("fast", "quick", "cpu")  # only full has GPU entries
    for kind in ("cpu-amx", "cpu-bf16"):  # no CPU-model keys: the device type is all a recipe sees
        with pytest.raises(ValueError, match="unknown device type"):
            resolve("fast", "full", kind)


def test_no_recipe_stops_by_the_clock():
    """The same command and seed train the same number of epochs on every computer: no recipe sets a
    time budget (or a pipeline budget); `--time-budget` is the user's own choice."""
    import cnnlab.transfer as transfer

    assert not any(key in raw for raw in RECIPES.values() for key in ("time_budget", "pipeline_budget"))
    for name in RECIPES:
        for profile in PROFILE_NAMES:
            for device_type in DEVICE_TYPES:
                for binary in (False, True):
                    assert resolve(name, profile, device_type, binary=binary).config.time_budget is None
    assert resolve("fast", "full", time_budget=30.0).config.time_budget == 30.0  # the user's override
    with pytest.raises(ValueError, match="unknown recipe key 'pipeline_budget'"):
        resolve("partial", "full", pipeline_budget=1800.0)
    assert not hasattr(transfer, "training_budget")


def test_fast_net_activation_is_a_choice_and_unknown_ones_are_refused():
    relu = build_model("fast", 10, widths=(8, 16, 16), act="relu")
    assert any(isinstance(m, torch.nn.ReLU) for m in relu.modules())
    assert not any(isinstance(m, torch.nn.GELU) for m in relu.modules())
    assert relu(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        build_model("fast", 10, act="tanh")


def test_progressive_resizing_trains_small_early_epochs_and_validates_at_full_size(tmp_path):
    data = load_dataset("fake", val_size=0.2)
    model = build_model("fast", data.num_classes, widths=(8, 16, 16))
    sides = []  # (training mode, input side) of every forward pass
    model.register_forward_pre_hook(lambda m, args: sides.append((m.training, args[0].shape[-1])))
    cfg = _small_cfg(epochs=3, epoch_image_sizes=(16, 24))
    _fit(model, data, cfg, tmp_path, arch="fast", arch_kwargs={"widths": (8, 16, 16)})
    train_sides = [s for training, s in sides if training]
    steps = len(train_sides) // 3
    assert train_sides == [16] * steps + [24] * steps + [24] * steps  # the last entry holds for later epochs
    assert {s for training, s in sides if not training} == {32}  # validation sees the stored size
    history = json.loads((tmp_path / "history.json").read_text())
    assert [row["image_size"] for row in history] == [16, 24, 24]  # recorded per epoch


def test_a_run_shorter_than_its_resizing_schedule_still_ends_at_the_last_size():
    assert [epoch_image_size((16, 24, 32), e, 5) for e in range(5)] == [16, 24, 32, 32, 32]  # the recipe
    assert [epoch_image_size((16, 24, 32), e, 2) for e in range(2)] == [16, 32]  # e.g. --epochs 2
    assert [epoch_image_size((16, 24, 32), e, 1) for e in range(1)] == [32]


def test_a_muon_state_saved_without_ns_steps_loads_with_the_default():
    w = torch.nn.Parameter(torch.randn(8, 4, 3, 3))
    saved = Muon([{"params": [w], "orthogonalize": True}], lr=0.1).state_dict()
    del saved["param_groups"][0]["ns_steps"]  # as written before the step count was a setting
    opt = Muon([{"params": [w], "orthogonalize": True}], lr=0.1, ns_steps=3)
    opt.load_state_dict(saved)
    w.grad = torch.randn_like(w)
    opt.step()
    assert opt.param_groups[0]["ns_steps"] == 5


def test_val_size_0_trains_a_fixed_schedule_on_every_image_and_keeps_its_last_epoch(tmp_path):
    from cnnlab.cli import main
    from cnnlab.compare import load_run, results_table
    from cnnlab.plots import accuracy_over_time, learning_curves

    out = tmp_path / "all"
    assert main(["train", "--source", "fake", "--model", "fast", "--profile", "smoke", "--epochs", "2",
                 "--val-size", "0", "--out", str(out), "--device", "cpu"]) == 0
    metrics, history = json.loads((out / "metrics.json").read_text()), json.loads((out / "history.json").read_text())
    assert metrics["val_images"] == 0 and metrics["train_images"] == len(load_data("fake", "smoke", val_size=0).train)
    assert [h["val_acc"] for h in history] == [None, None] and metrics["epoch_of_best"] == 2
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    run = load_run(out)
    assert results_table({"all": run}, threshold=0.5).loc["all", "best val acc"] is None
    learning_curves({"all": history})  # train curves only, no crash on the missing val
    accuracy_over_time({"all": run})


def test_val_size_0_is_refused_where_the_schedule_reads_the_validation_split(tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["train", "--source", "fake", "--model", "baseline", "--profile", "smoke", "--val-size", "0",
                 "--out", str(tmp_path / "b"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "needs a validation split" in err and "--val-size" in err
    assert not (tmp_path / "b" / "model.pth").exists()
