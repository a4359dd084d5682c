"""Data-parallel training (torchrun, gloo on CPU): the real entry point, identical ranks, and one
DDP step equal to a single process stepping on the combined batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

# One optimiser step through cnnlab.train.fit on 64 fixed images; each process saves its weights.
ONE_STEP = textwrap.dedent('''
    import sys, torch
    from torch import nn
    from cnnlab import distributed
    from cnnlab.data import AugmentConfig, BatchLoader, Split
    from cnnlab.train import TrainConfig, fit

    out = sys.argv[1]
    device = distributed.setup("cpu") or torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=g),
                  torch.randint(0, 4, (64,), generator=g))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    cfg = TrainConfig(epochs=1, batch_size=64, optimizer="sgd", lr=0.5, momentum=0.0, nesterov=False, schedule="constant",
                      weight_decay=0.0, amp=False, channels_last=False, tta=None,
                      augment=AugmentConfig(crop_padding=0, flip=False))
    loader = BatchLoader(split, 64, (0.5,) * 3, (0.25,) * 3, device, shuffle=True, seed=0)
    fit(model, loader, None, cfg, out, device, meta={"arch": "tiny"}, progress=False)
    torch.save(model.state_dict(), f"{out}/weights-rank{distributed.rank()}.pt")
    distributed.cleanup()
''')


def _env(tmp_path: Path) -> dict:
    env = {**os.environ, "CNNLAB_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    return env


def test_one_ddp_step_equals_one_step_on_the_combined_batch(tmp_path):
    script = tmp_path / "one_step.py"
    script.write_text(ONE_STEP)
    env = _env(tmp_path)
    subprocess.run([*TORCHRUN, str(script), str(tmp_path / "ddp")], check=True, env=env, cwd=ROOT, timeout=300)
    subprocess.run([sys.executable, str(script), str(tmp_path / "single")], check=True, env=env, cwd=ROOT, timeout=300)
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"weights-rank{r}.pt") for r in (0, 1))
    single = torch.load(tmp_path / "single" / "weights-rank0.pt")
    initial = nn_init_state()
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), f"ranks differ in {key}"
        assert not torch.equal(single[key], initial[key]), f"{key} did not train"
        torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-5)


def nn_init_state() -> dict:
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4)).state_dict()


def test_torchrun_trains_a_scratch_model_and_records_world_size(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([*TORCHRUN, "-m", "cnnlab", "train", "--source", "fake", "--profile", "smoke",
                           "--model", "fast", "--epochs", "2", "--out", str(out)],
                          env=_env(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs"] == 2
    assert proc.stdout.count("test accuracy") == 1  # rank 0 reports for both
    # resume: the same command finds the finished run's last.pth and trains no further epochs
    again = subprocess.run([*TORCHRUN, "-m", "cnnlab", "train", "--source", "fake", "--profile", "smoke",
                            "--model", "fast", "--epochs", "2", "--out", str(out)],
                           env=_env(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "resuming" in again.stdout


def test_cached_strategies_refuse_torchrun_with_a_clear_message(tmp_path):
    proc = subprocess.run([*TORCHRUN, "-m", "cnnlab", "train", "--source", "fake", "--profile", "smoke",
                           "--backbone", "efficientnet_lite0", "--strategy", "frozen", "--out", str(tmp_path / "f")],
                          env=_env(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert proc.stderr.count("cnnlab: error: frozen trains a head on features cached once") == 1
