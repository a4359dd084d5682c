"""The `cnnlab` command line as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from cnnlab.cli import build_parser, main

from .conftest import make_folder


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
    out = tmp_path / "run"
    assert main(["train", "--source", "fake", "--model", "baseline", "--profile", "smoke", "--epochs", "1",
                 "--val-size", "100", "--device", "cpu", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_images"] == 100 and metrics["train_images"] == 500  # smoke keeps 500 training images
    assert main(["evaluate", str(out), "--device", "cpu"]) == 0
    assert json.loads((out / "eval.json").read_text())["val_images"] == 100


def test_commands_say_their_profile_first(capsys):
    assert main(["data", "info", "--source", "fake", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("profile: smoke")
    assert main(["data", "info", "--source", "fake"]) == 0  # no --profile, no $CNNLAB_PROFILE: the default
    assert capsys.readouterr().out.splitlines()[0].startswith("profile: full")


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs"), (["--epochs", "-2"], "--epochs"), (["--batch-size", "0"], "--batch-size"),
    (["--image-size", "0"], "--image-size"), (["--unfreeze", "0"], "--unfreeze"),
    (["--train-fraction", "0"], "--train-fraction"), (["--train-fraction", "1.5"], "--train-fraction"),
    (["--time-budget", "0"], "--time-budget"), (["--time-budget", "-5"], "--time-budget"),
])
def test_train_refuses_out_of_range_numbers_before_any_work(args, message, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--source", "fake", "--profile", "smoke", "--out", str(out), *args])
    assert exit_.value.code == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_train_accepts_the_edges_of_each_range():
    args = build_parser().parse_args(["train", "--epochs", "1", "--batch-size", "1", "--image-size", "1",
                                      "--unfreeze", "1", "--train-fraction", "1", "--time-budget", "0.5"])
    assert (args.epochs, args.batch_size, args.image_size, args.unfreeze) == (1, 1, 1, 1)
    assert (args.train_fraction, args.time_budget) == (1.0, 0.5)


def test_evaluate_on_another_source_leaves_the_run_untouched(tmp_path, one_thread, capsys):
    """`cnnlab evaluate RUN --source X` writes eval-X.json and eval-X_logits.pt beside the run; the run's own
    metrics.json and test_logits.pt (what the report reads) stay as training wrote them."""
    trained_on = make_folder(tmp_path / "pets", per_class=(12, 4))
    other = make_folder(tmp_path / "shelter", per_class=(12, 7))  # the same classes, another test split
    out = tmp_path / "run"
    assert main(["train", "--source", str(trained_on), "--model", "baseline", "--profile", "smoke", "--epochs", "1",
                 "--val-size", "3", "--device", "cpu", "--out", str(out)]) == 0
    kept = {name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns)
            for name in ("metrics.json", "test_logits.pt", "model.pth", "history.json")}
    capsys.readouterr()
    assert main(["evaluate", str(out), "--source", str(other), "--device", "cpu"]) == 0
    assert "metrics.json is unchanged" in capsys.readouterr().out
    assert {name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) for name in kept} == kept
    assert not (out / "eval.json").exists() and not (out / "eval_logits.pt").exists()
    evaluated = json.loads((out / "eval-shelter.json").read_text())
    assert evaluated["test_images"] == 21 and evaluated["source"] == str(other)
    assert json.loads((out / "metrics.json").read_text())["test_images"] == 12
    logits = torch.load(out / "eval-shelter_logits.pt", weights_only=True)["logits"]
    assert logits.shape == (21, 3)


def test_evaluate_on_data_with_other_classes_is_a_clear_error(tmp_path, one_thread, capsys):
    trained_on = make_folder(tmp_path / "pets", per_class=(12, 4))
    out = tmp_path / "run"
    assert main(["train", "--source", str(trained_on), "--model", "baseline", "--profile", "smoke", "--epochs", "1",
                 "--val-size", "3", "--device", "cpu", "--out", str(out)]) == 0
    before = (out / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main(["evaluate", str(out), "--source", "fake", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "same class folders" in err and "Traceback" not in err
    assert (out / "metrics.json").read_bytes() == before and not list(out.glob("eval*"))
