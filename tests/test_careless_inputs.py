"""Every careless argument to the real `cnnlab` command line: exit status 2, one clear line, no traceback.

Numbers out of range are refused by argparse before any work (its usage line, then
`cnnlab train: error: argument ...`); everything found later (data, checkpoints, devices) by
`cnnlab.cli.main`'s handler as `cnnlab: error: ...`, a single line that says what to do.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main

from .conftest import make_folder

pytestmark = pytest.mark.usefixtures("one_thread")
TRAIN = ["train", "--profile", "smoke", "--epochs", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny baseline run on a 3-class folder of 32-px images, trained once for the module."""
    from cnnlab.runs import train_run

    home = tmp_path_factory.mktemp("careless")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(home))
        folder = make_folder(home / "pets", per_class=(8, 3))
        train_run("baseline", str(folder), home / "run", profile="smoke", epochs=1, device="cpu", progress=False,
                  val_size=3)
    return home / "run"


@pytest.fixture
def photos(tmp_path) -> Path:
    """Two classes of small mixed-size JPEG "photos"."""
    return make_folder(tmp_path / "photos", classes=("day", "night"), per_class=(6, 2),
                       sizes=((80, 100), (120, 70)), fmt="JPEG")


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse refuses a value before main's handler runs
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _refused(argv: list[str], message: str, capsys) -> str:
    """Exit status 2, `message` on the one error line, no traceback anywhere."""
    code, out, err = _cli(argv, capsys)
    assert "Traceback" not in out + err
    assert code == 2, (code, err)
    errors = [line for line in re.split(r"[\r\n]+", err) if re.match(r"cnnlab( \w+)?: error: ", line)]
    assert len(errors) == 1 and message in errors[0], err
    return errors[0]


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "argument --batch-size: must be a whole number of at least 1, got 0"),
    (["--batch-size", "-5"], "argument --batch-size: must be a whole number of at least 1, got -5"),
    (["--epochs", "0"], "argument --epochs: must be a whole number of at least 1, got 0"),
    (["--image-size", "0"], "argument --image-size: must be a whole number of at least 1, got 0"),
    (["--train-fraction", "0"], "argument --train-fraction: must be a share of the training images"),
    (["--train-fraction", "2"], "argument --train-fraction: must be a share of the training images"),
    (["--time-budget", "-5"], "argument --time-budget: must be more than 0, got -5"),
    (["--drop-path", "1.5", "--backbone", "efficientnet_lite0"], "argument --drop-path: must be a rate from 0"),
    (["--epochs", "many"], "argument --epochs: must be a whole number of at least 1, got 'many'"),
    (["--epochs", "2.5"], "argument --epochs: must be a whole number of at least 1, got '2.5'"),
    (["--time-budget", "soon"], "argument --time-budget: must be more than 0, got 'soon'"),
])
def test_numbers_out_of_range_are_refused_before_any_work(args, message, tmp_path, capsys):
    out = tmp_path / "run"
    _refused([*TRAIN, "--source", "fake", "--out", str(out), *args], message, capsys)
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--val-size", "-1"], "--val-size must be 0 or more, got -1"),
    (["--val-size", "2.5"], "--val-size 2.5 is neither a whole number of images nor a share below 1"),
    (["--device", "banana"], "unknown device 'banana': use --device auto, cpu, cuda (or cuda:N) or mps"),
    (["--image-size", "8"], "--image-size 8 is too small"),
    (["--unfreeze", "2"], "--unfreeze applies to a pretrained backbone: add --backbone NAME"),
    (["--backbone", "efficientnet_lite0", "--strategy", "frozen", "--unfreeze", "2"],
     "--unfreeze 2 has no effect with --strategy frozen"),
    (["--backbone", "efficientnet_lite0", "--strategy", "partial", "--unfreeze", "99", "--image-size", "32"],
     "partial needs 1 <= --unfreeze < 9 (the stages of efficientnet_lite0), got 99: give --unfreeze 1 to 8"),
    (["--backbone", "efficientnet_lite0", "--strategy", "finetune", "--unfreeze", "99", "--image-size", "32"],
     "finetune trains at most the 9 stages of efficientnet_lite0, got --unfreeze 99"),
])
def test_train_arguments_found_wrong_later_are_one_line(args, message, photos, tmp_path, capsys):
    out = tmp_path / "run"
    _refused([*TRAIN, "--source", str(photos), "--out", str(out), *args], message, capsys)
    assert not (out / "model.pth").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_cuda_without_a_gpu(command, trained, capsys):
    argv = ([*TRAIN[:-2], "--source", "fake", "--out", str(trained.parent / "cuda")] if command == "train"
            else ["evaluate", str(trained)])
    _refused([*argv, "--device", "cuda"], "--device cuda was asked for but torch sees no CUDA GPU; use --device cpu",
             capsys)


def test_a_folder_with_one_class(tmp_path, capsys):
    folder = make_folder(tmp_path / "solo", classes=("cat",), per_class=(6, 2))
    for argv in ([*TRAIN, "--model", "baseline"], [*TRAIN, "--backbone", "efficientnet_lite0", "--image-size", "32"]):
        _refused([*argv, "--source", str(folder), "--out", str(tmp_path / "run")],
                 "has only one class (cat): a classifier needs at least 2, so add a folder per class", capsys)


def test_sources_that_are_not_data(tmp_path, capsys):
    _refused(["data", "info", "--source", str(tmp_path / "nowhere")], "not found: give cifar10, cifar100, fake", capsys)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an archive")
    _refused([*TRAIN, "--source", str(notes)], "is a file but not a .tar/.tar.gz archive", capsys)
    flat = tmp_path / "flat"
    flat.mkdir()
    _refused(["data", "info", "--source", str(flat)], "does not have the expected layout", capsys)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "foreign"])
def test_evaluate_a_damaged_model_file(kind, trained, tmp_path, capsys):
    run = tmp_path / "damaged"
    shutil.copytree(trained, run)
    data = (run / "model.pth").read_bytes()
    if kind == "truncated":
        (run / "model.pth").write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        (run / "model.pth").write_bytes(b"these are not weights\n" * 20)
    else:
        torch.save({"weights": torch.zeros(3)}, run / "model.pth")
    _refused(["evaluate", str(run), "--device", "cpu"], "is not a cnnlab checkpoint (damaged or from elsewhere)", capsys)


def test_evaluate_a_missing_run_or_on_data_with_other_classes(trained, photos, tmp_path, capsys):
    _refused(["evaluate", str(tmp_path / "no-run")], "run folder", capsys)
    _refused(["evaluate", str(trained), "--source", str(photos), "--device", "cpu"],
             "evaluate it on data with the same class folders", capsys)
    assert not list(trained.glob("eval*"))


def test_predict_with_a_careless_top_k(trained, photos, capsys):
    _refused(["predict", str(trained), str(photos), "--top-k", "0"], "argument --top-k: must be a whole number", capsys)
