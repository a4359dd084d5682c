"""A run is read back only when what made it is unchanged: model, recipe, data, seed and profile (`cnnlab.identity`)."""

from __future__ import annotations

import json
import linecache

import pytest
import torch
from torch import nn

from cnnlab import checkpoint, identity, runs, study, transfer
from cnnlab.runs import load_data

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fits(monkeypatch):
    """Counts the calls of the one training loop, wherever a run enters it."""
    calls = []
    for module in (runs, transfer):
        real = module.fit

        def spy(*args, _real=real, **kwargs):
            calls.append(kwargs.get("meta", {}).get("arch"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, "fit", spy)
    return calls


@pytest.fixture(scope="module")
def data():
    return load_data("fake", "smoke")


class TinyNet(nn.Module):
    """A model object as a student writes one in a notebook."""

    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, num_classes)

    def forward(self, X):
        return self.head(self.features(X))


def test_scratch_by_name_reads_back_only_the_same_run(tmp_path, data, fits, capsys):
    common = dict(data=data, runs_dir=tmp_path, profile="smoke", device="cpu", progress=False)
    first = study.scratch("base", "baseline", **common)
    assert fits == ["baseline"] and len(first["run_key"]) == 12
    again = study.scratch("base", "baseline", **common)
    assert len(fits) == 1 and again["run_key"] == first["run_key"]  # unchanged: read back, not trained
    assert again["test_accuracy"] == first["test_accuracy"]

    lr = study.scratch("base", "baseline", lr=3e-3, **common)  # a hyperparameter
    assert len(fits) == 2 and lr["run_key"] != first["run_key"] and lr["config"]["lr"] == 3e-3
    assert "the recipe (hyperparameters) changed since the saved run, training again" in capsys.readouterr().out
    narrow = study.scratch("base", "baseline", model_kwargs={"widths": (16, 32, 64)}, **common)  # a layer width
    assert len(fits) == 3 and narrow["run_key"] not in (first["run_key"], lr["run_key"])
    assert "base: the model and the recipe (hyperparameters) changed" in capsys.readouterr().out  # vs the lr run
    seed = study.scratch("base", "baseline", seed=1, **common)
    assert len(fits) == 4 and seed["run_identity"]["seed"] == 1

    undone = study.scratch("base", "baseline", **common)  # the edits undone: the first run comes back untrained
    assert len(fits) == 4 and undone["run_key"] == first["run_key"]
    assert "reading back the earlier run" in capsys.readouterr().out
    kept = {p.name for p in (tmp_path / "old").iterdir()}
    assert kept == {f"base-{m['run_key']}" for m in (lr, narrow, seed)}
    assert json.loads((tmp_path / "base" / "metrics.json").read_text())["run_key"] == first["run_key"]


def test_a_changed_data_split_trains_again(tmp_path, data, fits):
    study.scratch("base", "baseline", data, tmp_path, "smoke", "cpu", progress=False)
    fewer = load_data("fake", "smoke", train_fraction=0.5)
    other = study.scratch("base", "baseline", fewer, tmp_path, "smoke", "cpu", progress=False)
    assert len(fits) == 2 and other["train_images"] < 500


def test_a_model_object_reads_back_and_retrains_on_edits(tmp_path, data, fits, capsys):
    common = dict(data=data, runs_dir=tmp_path, profile="smoke", device="cpu", progress=False)
    torch.manual_seed(0)
    first = study.train("tiny", TinyNet(), recipe="baseline", **common)
    assert fits == ["custom"] and first["model"] == "TinyNet" and first["arch"] == "custom"

    net = TinyNet()
    again = study.train("tiny", net, recipe="baseline", **common)
    assert len(fits) == 1 and again["run_key"] == first["run_key"]
    saved = checkpoint.load(tmp_path / "tiny" / "model.pth")
    assert all(torch.equal(net.state_dict()[k], v) for k, v in saved["state_dict"].items())  # best weights loaded

    study.train("tiny", TinyNet(), recipe="baseline", lr=3e-3, **common)  # a hyperparameter
    assert len(fits) == 2
    wide = study.train("tiny", TinyNet(width=12), recipe="baseline", lr=3e-3, **common)  # one layer width
    assert len(fits) == 3 and "tiny: the model changed since the saved run" in capsys.readouterr().out
    assert wide["params"] > first["params"]
    with pytest.raises(ValueError, match="model_kwargs build a named model"):
        study.train("tiny", TinyNet(), recipe="baseline", model_kwargs={"widths": (8, 8, 8)}, **common)


def test_a_custom_checkpoint_names_its_class_and_loads_into_a_rebuilt_one(tmp_path, data):
    study.train("tiny", TinyNet(), data, tmp_path, "smoke", device="cpu", progress=False)
    path = tmp_path / "tiny" / "model.pth"
    assert checkpoint.load(path)["arch"] == "custom" and checkpoint.load(path)["arch_class"] == "TinyNet"
    with pytest.raises(ValueError, match=r"TinyNet.*cannot be rebuilt by name.*load_state_dict"):
        checkpoint.load_model(path)
    model, ckpt = checkpoint.load_model(path, model=TinyNet())
    assert not model.training and ckpt["run_key"] == json.loads((tmp_path / "tiny" / "metrics.json").read_text())["run_key"]


def test_a_model_object_with_the_named_layers_is_read_as_the_named_run(tmp_path, data, fits, capsys):
    """Notebook 02 trains `baseline` from its own copy of BaselineCNN; notebook 04 asks for it by name."""
    from cnnlab.models.scratch import BaselineCNN

    class Copy(BaselineCNN):  # another class (other source), the same layers and shapes
        pass

    study.train("baseline", Copy(10), data, tmp_path, "smoke", device="cpu", progress=False)
    named = study.scratch("baseline", "baseline", data, tmp_path, "smoke", "cpu", progress=False)
    assert len(fits) == 1 and named["model"] == "Copy"
    assert "whose layers and tensor shapes are those of cnnlab's 'baseline'" in capsys.readouterr().out
    study.scratch("baseline", "baseline", data, tmp_path, "smoke", "cpu", lr=3e-3, progress=False)
    assert len(fits) == 2  # the same layers, but another recipe: trained


def _cell_class(source: str, filename: str) -> type:
    """A class defined as Jupyter defines one: its module has no file; its code sits in linecache."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "notebook_cell", "nn": nn}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["Net"]


def test_a_class_from_a_notebook_cell_is_identified_by_its_code():
    cell = ("class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(4, 2)\n    def forward(self, x):\n        return self.fc(x){}\n")
    plain, edited = _cell_class(cell.format(""), "<cell-1>"), _cell_class(cell.format(".relu()"), "<cell-2>")
    assert "return self.fc(x).relu()" in identity.class_source(edited)
    a, b = identity.object_model(plain()), identity.object_model(edited())
    assert a["repr"] == b["repr"] and a["shapes"] == b["shapes"]  # only the forward differs ...
    assert identity.digest(a) != identity.digest(b)  # ... and the identity sees it


def test_transfer_runs_read_back_only_the_same_run(tmp_path, data, fits, capsys):
    common = dict(data=data, runs_dir=tmp_path, profile="smoke", device="cpu", progress=False, epochs=2)
    first = study.transfer("lite0-frozen", **common)
    assert len(fits) == 1
    assert study.transfer("lite0-frozen", **common)["run_key"] == first["run_key"] and len(fits) == 1
    study.transfer("lite0-frozen", lr=3e-3, **common)  # a hyperparameter
    assert len(fits) == 2 and "recipe (hyperparameters) changed" in capsys.readouterr().out
    mlp = study.transfer("lite0-frozen", head="linear", **common)  # the network: a linear head for the MLP
    assert len(fits) == 3 and "the model" in capsys.readouterr().out and mlp["head"] == "linear"
    assert study.transfer("lite0-frozen", head="linear", **common)["run_key"] == mlp["run_key"] and len(fits) == 3


def test_resuming_refuses_a_run_of_another_identity(tmp_path, data):
    """`cnnlab train --out` into the folder of an interrupted run on other data (same config and model):
    a clear error, not a mix; `study` sets such a folder aside instead."""
    from cnnlab.data import DataError

    out = tmp_path / "run"
    runs.train_run("baseline", data=data, out=out, profile="smoke", device="cpu", progress=False)
    (out / "metrics.json").unlink()  # as if interrupted after its epoch
    fewer = load_data("fake", "smoke", train_fraction=0.5)
    with pytest.raises(DataError, match="another configuration"):
        runs.train_run("baseline", data=fewer, out=out, profile="smoke", device="cpu", progress=False)
    again = study.scratch("run", "baseline", fewer, tmp_path, "smoke", "cpu", progress=False)
    assert again["train_images"] < 500 and (tmp_path / "old").is_dir()
