"""The `cnnlab` command line as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from cnnlab.cli import main


def test_data_info_prints_counts_stats_and_cache(folder_dataset, capsys):
    assert main(["data", "info", "--source", str(folder_dataset), "--val-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "cat" in out and "frog" in out and "total" in out
    assert "mean (RGB)" in out and "cache" in out and "32x32" in out


def test_bad_source_exits_2_with_a_message_not_a_traceback(capsys):
    assert main(["data", "info", "--source", "missing/folder"]) == 2
    err = capsys.readouterr().err
    assert "missing/folder" in err and "Traceback" not in err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "cnnlab.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "data" in out.stdout


def test_train_val_size_sets_the_split_and_evaluate_reloads_it(tmp_path, one_thread):
    """`--val-size` reaches the data split of `cnnlab train` (it was once accepted and ignored),
    metrics.json says how many images trained and validated, and `cnnlab evaluate` rebuilds the same split."""
    import json

    out = tmp_path / "run"
    assert main(["train", "--source", "fake", "--model", "baseline", "--profile", "smoke", "--epochs", "1",
                 "--val-size", "100", "--device", "cpu", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_images"] == 100 and metrics["train_images"] == 500  # smoke keeps 500 training images
    assert main(["evaluate", str(out), "--device", "cpu"]) == 0
    assert json.loads((out / "eval.json").read_text())["val_images"] == 100
