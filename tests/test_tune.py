"""`cnnlab tune` (Optuna) and `cnnlab train --params`: all on synthetic data in the smoke profile.

`fake:2` (two classes: 108 training, 12 validation, 40 test images) and two-epoch trials keep each
trial to seconds; two epochs give the pruners a step to prune at.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab import recipes, tune
from cnnlab.cli import main
from cnnlab.models import build_model

SMOKE = ["--source", "fake:2", "--profile", "smoke", "--epochs", "2"]


def _tune(out, study, *extra):
    return main(["tune", "--model", "fast", *SMOKE, "--study", study, "--out", str(out), *extra])


def _trials(out, study):
    return optuna.load_study(study_name=study, storage=f"sqlite:///{out / f'{study}.db'}").get_trials()


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One 3-trial study with the median pruner and the final run, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(out / "home"))
        assert _tune(out, "s", "--trials", "3", "--pruner", "median") == 0
    return out


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_every_recipe_has_a_search_space_whose_draws_are_valid_overrides(name, tmp_path):
    assert set(recipes.SEARCH_SPACES) == set(recipes.RECIPES)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for profile, device_type in [("smoke", "cpu"), ("quick", "cpu"), ("full", "cpu"), ("full", "cuda")]:
        for _ in range(4):
            overrides = tune.suggest(study.ask(), name, profile, device_type)
            assert set(overrides) <= recipes.override_keys(name)
            recipe = recipes.resolve(name, profile, device_type, **overrides)
            for key, value in overrides.items():
                where = (recipe.transfer if key in recipes.TRANSFER_KEYS else
                         recipe.model_kwargs if key == "model_kwargs" else vars(recipe.config))
                assert where[key] == value if key != "model_kwargs" else value.items() <= where.items()
            if recipes.RECIPES[name]["kind"] == "scratch":
                build_model(name, 10, **recipe.model_kwargs)
            elif "unfreeze" in overrides:
                assert 1 <= overrides["unfreeze"] < 5  # resnet and vgg16 have the fewest stages, 5
            # the overrides survive a params file (JSON turns tuples into lists)
            path = tmp_path / "params.json"
            path.write_text(json.dumps({"_recipe": name, **overrides}))
            assert tune.load_params(path, name) == json.loads(json.dumps(overrides))


def test_a_study_runs_end_to_end_and_saves_its_best_params(searched, capsys):
    trials = _trials(searched, "s")
    assert len(trials) == 3 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 2  # the median pruner waits for two
    best = json.loads((searched / "s-best.json").read_text())
    winner = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert best["_trial"] == winner.number and best["_val_acc"] == winner.value
    assert best["lr"] == winner.params["lr"] and best["_recipe"] == "fast"
    for t in trials:  # the objective is the best validation accuracy of the trial's own run
        history = json.loads((searched / "s" / f"trial-{t.number}" / "history.json").read_text())
        assert [r["val_acc"] for r in history] == [t.intermediate_values[r["epoch"]] for r in history]
        if t.state == TrialState.COMPLETE:
            assert t.value == max(r["val_acc"] for r in history)
    final = json.loads((searched / "s" / "final" / "metrics.json").read_text())
    assert final["config"]["lr"] == best["lr"] and final["config"]["label_smoothing"] == best["label_smoothing"]


def test_the_same_study_name_continues_the_study(searched, capsys):
    before = {t.number: t.value for t in _trials(searched, "s")}
    assert _tune(searched, "s", "--trials", "1", "--pruner", "hyperband", "--no-final") == 0
    after = _trials(searched, "s")
    assert len(after) == len(before) + 1 and {t.number: t.value for t in after[:-1]} == before
    assert after[-1].params != after[0].params  # a continued study draws anew rather than repeating trial 0
    assert "study s (" in capsys.readouterr().out
    # a study belongs to one recipe, profile, source and budget
    assert _tune(searched, "s", "--trials", "1", "--epochs", "3") == 2
    assert "give another --study" in capsys.readouterr().err


def test_a_study_refuses_to_continue_from_an_edited_recipe(searched, capsys, monkeypatch):
    """Its trials drew settings on top of the recipe as it was: new ones on an edited recipe would not compare."""
    monkeypatch.setitem(recipes.RECIPES["fast"], "label_smoothing", 0.05)
    assert _tune(searched, "s", "--trials", "1", "--no-final") == 2
    assert "from another version of the fast recipe" in capsys.readouterr().err


def test_a_pruned_trial_stops_at_the_epoch_it_is_pruned(tmp_path):
    result = tune.search("p", model="fast", trials=2, out=tmp_path, profile="smoke", source="fake:2", epochs=2,
                         pruner=optuna.pruners.ThresholdPruner(lower=1.01), final=False)  # prunes any trial
    assert [t.state for t in result["study"].trials] == [TrialState.PRUNED] * 2
    assert all(t.last_step == 1 for t in result["study"].trials)
    assert result["best"] is None and not (tmp_path / "p-best.json").exists()


def test_train_params_uses_the_tuned_params(searched, tmp_path, capsys):
    best = json.loads((searched / "s-best.json").read_text())
    run = tmp_path / "run"
    assert main(["train", "--model", "fast", *SMOKE[:4], "--epochs", "1", "--params", str(searched / "s-best.json"),
                 "--out", str(run)]) == 0
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert {k: config[k] for k in ("lr", "muon_lr", "weight_decay", "label_smoothing", "warmup")} == \
           {k: best[k] for k in ("lr", "muon_lr", "weight_decay", "label_smoothing", "warmup")}
    assert config["epochs"] == 1  # an option given on the command line wins over the file
    assert "params from" in capsys.readouterr().out


@pytest.mark.parametrize("content, says", [
    ('{"lr": 0.1, "learning_rate": 0.1}', "'learning_rate'"),
    ('{"lr": "fast"}', "lr must be a number"),
    ('{"model_kwargs": {"depth": 3}}', "model_kwargs depth"),
    ('{"unfreeze": 2}', "'unfreeze'"),  # a transfer key, not the fast recipe's
    ('{"_recipe": "baseline", "lr": 0.001}', "tuned for recipe 'baseline'"),
    ('[0.1]', "JSON object"),
    ('{"lr": 0.1,', "is not JSON"),
])
def test_a_bad_params_file_is_one_line_and_status_2(tmp_path, capsys, content, says):
    path = tmp_path / "params.json"
    path.write_text(content)
    assert main(["train", "--model", "fast", *SMOKE, "--params", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error:") and says in err and err.count("\n") == 1 and "Traceback" not in err


def _states(db):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return dict(con.execute("SELECT number, state FROM trials"))
    except sqlite3.Error:  # not created yet, or locked by the writer for a moment
        return {}


def test_kill_9_loses_at_most_the_trial_in_progress(tmp_path, capsys):
    out, db = tmp_path / "tune", tmp_path / "tune" / "k.db"
    args = ["tune", "--model", "fast", *SMOKE, "--study", "k", "--out", str(out), "--pruner", "none", "--no-final"]
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab.cli", *args, "--trials", "50"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 240
        while not ({"COMPLETE", "RUNNING"} <= set(_states(db).values())):  # one done, the next one started
            assert proc.poll() is None and time.monotonic() < deadline, "the search ended before a trial was killed"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = _states(db)
    complete = {n: t.value for n, t in enumerate(_trials(out, "k")) if t.state == TrialState.COMPLETE}
    running = [n for n, s in killed.items() if s == "RUNNING"]
    assert complete and running
    assert main([*args, "--trials", "1"]) == 0
    assert f"trial {running[0]}: its process is gone" in capsys.readouterr().out
    trials = _trials(out, "k")
    assert {t.number: t.value for t in trials if t.number in complete} == complete  # kept
    assert [trials[n].state for n in running] == [TrialState.FAIL]  # the killed one: FAIL, not RUNNING forever
    assert sum(t.state == TrialState.COMPLETE for t in trials) == len(complete) + 1  # and the study goes on
