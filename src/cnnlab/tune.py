"""Hyperparameter search with Optuna: `cnnlab tune` and notebook 06.

What: for one recipe (a scratch model, or a backbone with a transfer strategy) Optuna draws settings
from `recipes.SEARCH_SPACES[recipe]` (random for the first 5 trials, then TPE); each trial is an
ordinary run -- `runs.train_run` / `transfer.transfer_run`, so `train.fit` -- in `<out>/<study>/trial-N`.

Why this way:
* The objective is the run's best *validation* accuracy (max over its epochs); test metrics are never
  read for selection. The test accuracy is reported once, by the final run with the best params.
* Pruning goes through fit's `epoch_hook`: each epoch's val accuracy is reported to the trial, and a
  trial the pruner judges weak stops there (optuna.TrialPruned) instead of spending its whole budget.
* The study lives in SQLite, `<out>/<study>.db`: the same study name continues it, and `kill -9` loses
  only the trial in progress, left RUNNING. Each trial records its host and pid, and the next search on
  that host marks a RUNNING trial whose process is gone FAIL at once (Optuna's heartbeat would only after
  a grace period, from a thread writing to the database all along).
* The best params go to `<out>/<study>-best.json`, keyed like the recipe (plus `_`-prefixed notes):
  `cnnlab train --params FILE` trains with them, checked by `load_params`.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from . import checkpoint, paths
from .data import DataError
from .identity import digest, recipe_digest
from .recipes import RECIPES, SEARCH_SPACES, get_profile, override_keys, resolve, value_for

PRUNERS = ("median", "hyperband", "none")
STARTUP_TRIALS = 5  # random trials before TPE models the good and the bad ones


def suggest(trial, recipe: str, profile: str | None = None, device_type: str = "cpu") -> dict:
    """Overrides for `recipe` drawn by an Optuna trial from its search space ("model_kwargs.x" nests)."""
    profile = get_profile(profile).name
    overrides: dict[str, Any] = {}
    for name, spec in SEARCH_SPACES[recipe].items():
        kind, *args = value_for(spec, profile, device_type)
        if kind == "categorical":  # tuples (e.g. dropouts) travel through Optuna's storage as JSON text
            labels = [c if c is None or isinstance(c, (bool, int, float, str)) else json.dumps(c) for c in args[0]]
            value = args[0][labels.index(trial.suggest_categorical(name, labels))]
        elif kind == "int":
            value = trial.suggest_int(name, *args)
        elif kind in ("float", "log"):
            value = trial.suggest_float(name, *args, log=kind == "log")
        else:
            raise ValueError(f"SEARCH_SPACES[{recipe!r}][{name!r}]: unknown kind {kind!r}")
        key, _, arg = name.partition(".")
        if arg:
            overrides.setdefault(key, {})[arg] = value
        else:
            overrides[key] = value
    return overrides


def _model_args(recipe: str) -> set[str]:
    from .models import scratch

    cls = {"baseline": scratch.BaselineCNN, "residual": scratch.ResidualCNN, "fast": scratch.FastNet}[recipe]
    return set(inspect.signature(cls).parameters) - {"num_classes"}


def load_params(path: str | os.PathLike, recipe: str) -> dict:
    """The overrides in a params file (e.g. `cnnlab tune`'s best.json), checked against what `recipe`
    accepts; every problem is a ValueError of one line."""
    from .trainconfig import TrainConfig

    path = Path(path)
    try:
        params = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a JSON object of recipe keys, such as {{\"lr\": 0.01}}")
    if params.get("_recipe", recipe) != recipe:
        raise ValueError(f"{path} was tuned for recipe {params['_recipe']!r}, not {recipe!r}")
    params = {k: v for k, v in params.items() if not k.startswith("_")}  # _study, _val_acc, ...: notes
    allowed = override_keys(recipe)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"{path}: recipe {recipe!r} takes no {', '.join(map(repr, unknown))} "
                         f"(it takes {', '.join(sorted(allowed))})")
    if "model_kwargs" in params:
        kwargs = params["model_kwargs"]
        bad = sorted(set(kwargs) - _model_args(recipe)) if isinstance(kwargs, dict) else ["(not an object)"]
        if bad:
            raise ValueError(f"{path}: model_kwargs {', '.join(bad)} not taken by the {recipe} model "
                             f"(it takes {', '.join(sorted(_model_args(recipe)))})")
    numbers = {f.name for f in fields(TrainConfig) if type(f.default) in (int, float)}
    numbers |= {"backbone_lr_scale", "drop_path", "unfreeze"}
    for key in sorted(numbers & set(params)):
        if isinstance(params[key], bool) or not isinstance(params[key], (int, float)):
            raise ValueError(f"{path}: {key} must be a number, got {params[key]!r}")
    try:
        resolve(recipe, "smoke", **params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None
    return params


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study, storage) -> list[int]:
    """RUNNING trials started on this host by a process that is gone (kill -9, a crash) -> FAIL."""
    from optuna.trial import TrialState

    study_id, dead = storage.get_study_id_from_name(study.study_name), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == socket.gethostname() and pid and not _alive(pid):
            storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, t.number),
                                           TrialState.FAIL)
            dead.append(t.number)
    return dead


def _fmt(params: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def search(study_name: str, *, model: str | None = None, backbone: str | None = None, strategy: str = "frozen",
           trials: int | None = None, timeout: float | None = None, out: str | os.PathLike | None = None,
           profile: str | None = None, source: str | None = None, seed: int = 0, pruner: Any = "median",
           epochs: float | None = None, device: str | None = None, val_size: int | float | None = None, data=None,
           final: bool = True, log: Callable[[str], None] = print) -> dict:
    """Run (or continue) study `study_name` for `trials` more trials and/or `timeout` seconds; save the
    best params as `<out>/<study>-best.json`, and with `final` train once with them (test metrics).

    Returns {"study", "db", "best" (overrides, or None before any trial completes), "best_path", "final"}.
    `pruner`: "median", "hyperband", "none" or an Optuna pruner; `epochs` overrides the recipe's."""
    import optuna
    from optuna.trial import TrialState

    from .device import pick_device
    from .runs import load_data, train_run
    from .transfer import transfer_run

    recipe = strategy if backbone else (model or "fast")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    prof, device_type = get_profile(profile).name, pick_device(device).type
    data = data or load_data(source, prof, seed=seed, val_size=val_size)
    if len(data.val) == 0:
        raise DataError("a search selects on validation accuracy: keep a validation split (--val-size above 0)")
    out = Path(out) if out else paths.tune_dir()
    out.mkdir(parents=True, exist_ok=True)
    db, runs = out / f"{study_name}.db", out / study_name
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize", load_if_exists=True)
    what = {"recipe": recipe, "backbone": backbone, "profile": prof, "source": data.source, "epochs": epochs,
            "seed": seed}
    base = resolve(recipe, prof, device_type)  # what every trial starts from: an edited recipe is another search
    recipe_key = digest({"recipe": recipe_digest(base.config, base.transfer), "model_kwargs": base.model_kwargs,
                         "init": base.init})
    if not study.user_attrs:
        for key, value in {**what, "recipe_key": recipe_key}.items():
            study.set_user_attr(key, value)
    elif {k: study.user_attrs.get(k) for k in what} != what:
        raise ValueError(f"study {study_name!r} in {db} searches {_fmt(study.user_attrs)}, not {_fmt(what)}: "
                         "give another --study")
    elif study.user_attrs.get("recipe_key") != recipe_key:
        raise ValueError(f"study {study_name!r} in {db} was searched from another version of the {recipe} recipe "
                         f"(its values changed since), so its trials are not comparable with new ones: give another "
                         f"--study, or delete {db} and {runs} to start it over")
    for number in fail_dead_trials(study, storage):
        log(f"trial {number}: its process is gone (killed?); marked FAIL")
    # Seeded by the trials so far: a continued study draws new settings instead of repeating the first ones.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=STARTUP_TRIALS)
    study.pruner = pruner if not isinstance(pruner, str) else {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2),  # never at epoch 1
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto"),
        "none": optuna.pruners.NopPruner}[pruner]()
    done = Counter(t.state.name.lower() for t in study.trials)
    log(f"study {study_name} ({db}): {_fmt(done) or 'new'}; searching {', '.join(SEARCH_SPACES[recipe])} "
        f"for {recipe}{f' on {backbone}' if backbone else ''}")

    def train(run_out: Path, overrides: dict, hook=None, progress: bool = False) -> dict:
        common = dict(out=run_out, profile=prof, epochs=epochs, device=device, seed=seed, data=data, resume=False,
                      progress=progress, epoch_hook=hook, **overrides)
        return transfer_run(backbone, strategy, **common) if backbone else train_run(recipe, **common)

    def objective(trial) -> float:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        overrides = suggest(trial, recipe, prof, device_type)
        trial.set_user_attr("overrides", overrides)
        val_accs = []

        def hook(row: dict) -> None:
            val_accs.append(row["val_acc"])
            trial.report(row["val_acc"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        if train(runs / f"trial-{trial.number}", overrides, hook)["interrupted"]:
            raise KeyboardInterrupt  # fit kept the partial run; the trial must not count as complete
        return max(val_accs)  # the run's best validation accuracy; its test metrics are not read

    def progress_line(study, t) -> None:
        seconds = t.duration.total_seconds() if t.duration else 0.0
        if t.state == TrialState.PRUNED:
            result = f"pruned at epoch {t.last_step} (val_acc {t.intermediate_values[t.last_step]:.4f})"
        else:
            result = f"val_acc {t.value:.4f}" if t.state == TrialState.COMPLETE else t.state.name
        log(f"trial {t.number:>3}: {result:<36} {seconds:6.1f} s   {_fmt(t.params)}")

    try:
        study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[progress_line])
    except KeyboardInterrupt:
        log(f"interrupted: the finished trials are in {db}; run the same command to continue")
        raise
    finally:
        best_path = out / f"{study_name}-best.json"
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        best = study.best_trial if complete else None
        if best is not None:
            checkpoint.write_json_atomic({"_study": study_name, "_recipe": recipe, "_backbone": backbone,
                                          "_profile": prof, "_trial": best.number, "_val_acc": best.value,
                                          **best.user_attrs["overrides"]}, best_path)
    if best is None:
        log(f"no trial of {study_name} has completed: nothing to save")
        return {"study": study, "db": db, "best": None, "best_path": None, "final": None}
    log(f"best: trial {best.number}, val_acc {best.value:.4f}: {_fmt(best.params)}\nwrote {best_path}")
    params = best.user_attrs["overrides"]
    metrics = None
    if final:
        log(f"final run with the best params: {runs / 'final'}")
        metrics = train(runs / "final", params, progress=True)
    return {"study": study, "db": db, "best": params, "best_path": best_path, "final": metrics}


__all__ = ["PRUNERS", "fail_dead_trials", "load_params", "search", "suggest"]
