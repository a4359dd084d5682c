"""The `cnnlab` command line: thin argument parsing over the package's functions."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import paths
from .argtypes import fraction, positive_float, positive_int, rate, val_size
from .data import DataError
from .models.backbones import BACKBONES, WeightsUnavailableError
from .recipes import DEFAULT_PROFILE, PROFILE_NAMES, SCRATCH, STRATEGIES, get_profile


def _announce(args: argparse.Namespace) -> None:
    """Every command says which profile it runs, since the profile decides how long it takes."""
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 speaks for all
        return
    print(f"profile: {get_profile(args.profile).name} (--profile {'|'.join(PROFILE_NAMES)}; "
          f"default {DEFAULT_PROFILE})")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=None,
                   help="cifar10 | cifar100 | fake | path to a folder or .tar/.tar.gz (default: $CNNLAB_SOURCE or cifar10)")
    p.add_argument("--profile", default=None, choices=PROFILE_NAMES,
                   help=f"smoke (seconds) | quick (minutes) | full (the study); default: $CNNLAB_PROFILE or {DEFAULT_PROFILE}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=float, default=None, help="validation images (>=1) or fraction (<1) carved from train; 0 trains on every "
                        "training image (fixed-schedule recipes such as fast only)")


def cmd_data_info(args: argparse.Namespace) -> None:
    from .runs import load_data

    _announce(args)
    t0 = time.perf_counter()
    data = load_data(args.source, args.profile, val_size=val_size(args.val_size), seed=args.seed)
    seconds = time.perf_counter() - t0
    s = data.summary()
    print(f"dataset  {s['name']}   (source: {s['source']}, profile: {data.notes['profile']})")
    print(f"classes  {len(s['classes'])}")
    header = f"{'class':<16}" + "".join(f"{k:>9}" for k in s["splits"])
    print(header)
    for cls in s["classes"]:
        print(f"{cls:<16}" + "".join(f"{v['per_class'][cls]:>9}" for v in s["splits"].values()))
    print(f"{'total':<16}" + "".join(f"{v['images']:>9}" for v in s["splits"].values()))
    print(f"image size  " + "; ".join(f"{k}: {', '.join(v['sizes'])}" for k, v in s["splits"].items()))
    print(f"mean (RGB)  {s['mean']}   std (RGB)  {s['std']}   (training split)")
    print(f"cache       {s['cache'] or '(not cached)'}")
    print(f"loaded in   {seconds:.2f} s")


def _print_metrics(m: dict) -> None:
    print(f"test accuracy {m['test_accuracy']:.2%}   macro F1 {m['macro_f1']:.4f}   params {m['params']:,}"
          f"   {m['images_per_second']:.0f} img/s on {m['device']}")
    if "train_seconds" in m:
        print(f"trained {m['epochs']} epochs in {m['train_seconds']:.1f} s ({m['profile']} profile, {m['precision']})")


def _with_params(args: argparse.Namespace, kwargs: dict) -> dict:
    """`--params FILE`'s overrides (checked against the recipe) under the options given on the command line."""
    if not args.params:
        return kwargs
    from .tune import load_params

    params = load_params(args.params, args.strategy if args.backbone else args.model)
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if kwargs.get(k) is None)
    print(f"params from {args.params}: {shown or '(all given on the command line)'}")
    return {**kwargs, **{k: v for k, v in params.items() if kwargs.get(k) is None}}


def cmd_tune(args: argparse.Namespace) -> None:
    from .tune import search

    _announce(args)
    if args.trials is None and args.timeout is None:
        raise ValueError("say how long to search: --trials N and/or --timeout SECONDS")
    result = search(args.study, model=args.model, backbone=args.backbone, strategy=args.strategy, trials=args.trials,
                    timeout=args.timeout, out=args.out, profile=args.profile, source=args.source, seed=args.seed,
                    pruner=args.pruner, epochs=args.epochs, device=args.device, val_size=val_size(args.val_size),
                    final=args.final)
    if result["final"] is not None:
        _print_metrics(result["final"])


def cmd_train(args: argparse.Namespace) -> None:
    _announce(args)
    if not args.backbone:
        given = [flag for flag, value in (("--unfreeze", args.unfreeze), ("--head", args.head),
                                          ("--drop-path", args.drop_path), ("--binary", args.binary or None))
                 if value is not None]
        if given:
            raise DataError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to a pretrained backbone: "
                            f"add --backbone NAME, or drop {' and '.join(given)} to train the scratch model {args.model}")
    common = dict(profile=args.profile, epochs=args.epochs, batch_size=args.batch_size, device=args.device,
                  seed=args.seed, train_fraction=args.train_fraction, val_size=val_size(args.val_size),
                  resume=not args.restart, time_budget=args.time_budget, image_size=args.image_size)
    if args.backbone:
        common.update(head=args.head, unfreeze=args.unfreeze, drop_path=args.drop_path)
    common = _with_params(args, common)
    if args.backbone:  # transfer learning from a pretrained backbone
        from .transfer import transfer_run

        out = Path(args.out) if args.out else paths.runs_dir() / f"{args.backbone}-{args.strategy}"
        metrics = transfer_run(args.backbone, args.strategy, args.source, out, pretrained=args.pretrained,
                               binary=args.binary, **common)
        if "rank" in metrics:  # a torchrun rank other than 0: rank 0 reports
            return
        extra = f"   ROC-AUC {metrics['roc_auc']:.4f}" if metrics.get("roc_auc") is not None else ""
        print(f"{args.backbone} ({args.strategy}, {metrics['image_size']} px){extra}: features "
              f"{metrics['feature_seconds']:.1f} s{' (cached)' if metrics['feature_cache_hit'] else ''}")
    else:
        from .runs import train_run

        out = Path(args.out) if args.out else paths.runs_dir() / args.model
        metrics = train_run(args.model, args.source, out, **common)
        if "rank" in metrics:  # a torchrun rank other than 0: rank 0 reports
            return
    _print_metrics(metrics)
    print(f"wrote {out / 'metrics.json'}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Re-evaluate a run; on another source the results get their own files, and the run's stay untouched."""
    from .checkpoint import save_atomic, write_json_atomic
    from .evaluate import evaluate_saved

    run = Path(args.run)
    metrics, logits = evaluate_saved(run, source=args.source, device=args.device, with_logits=True)
    print(metrics["report"])
    _print_metrics(metrics)
    tag = "" if args.source is None else "-" + "".join(c if c.isalnum() or c in "-_" else "_"
                                                       for c in Path(str(args.source)).name.split(".")[0])
    write_json_atomic(metrics, run / f"eval{tag}.json")
    save_atomic({"logits": logits}, run / f"eval{tag}_logits.pt")
    print(f"wrote {run / f'eval{tag}.json'} and {run / f'eval{tag}_logits.pt'} (the run's metrics.json is unchanged)")


def cmd_report(args: argparse.Namespace) -> None:
    from .device import describe_device, pick_device
    from .export import build
    from .runs import default_source, load_data

    _announce(args)
    source = args.source or default_source()
    if Path(source).expanduser().exists():
        source = str(Path(source).expanduser().resolve())  # notebooks run in notebooks/, not here
    data = load_data(source, args.profile)  # fail fast (and cache) before starting kernels
    label = {"cifar10-jpeg": "CIFAR-10 (JPEG q75 mirror)", "cifar10-png": "CIFAR-10"}.get(data.name, data.name)
    meta = {"data": f"{label}: {len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test images, "
                    f"{data.num_classes} classes", "device": describe_device(pick_device(args.device))}
    env = {"CNNLAB_SOURCE": source, **({"CNNLAB_DEVICE": args.device} if args.device else {})}
    if "CNNLAB_HOME" in os.environ:
        env["CNNLAB_HOME"] = os.environ["CNNLAB_HOME"]
    profile = get_profile(args.profile).name
    out = build(profile, paths.PROJECT_ROOT / "notebooks", Path(args.report_dir or paths.report_dir(profile)),
                Path(args.slides_dir or paths.slides_dir(profile)), meta, env_extra=env,
                runs_dir=paths.runs_dir() / profile, only=args.only)
    for key in ("report", "slides", "pptx"):
        print(f"{key:<7} {out[key]}")
    print(f"notebooks ran in {out['meta']['wall_time_s']:.0f} s ({out['meta']['profile']} profile, {meta['device']})")


def cmd_predict(args: argparse.Namespace) -> None:
    """Top-k classes for photos (files or folders) through the run's own preprocessing and test-time views."""
    import json

    from .device import pick_device
    from .predict import find_images, format_results, load_run, predict_files

    run = load_run(args.run, pick_device(args.device))
    results = predict_files(run, find_images(args.images), args.top_k, Path(args.cam) if args.cam else None)
    print(json.dumps(results, indent=2) if args.json else format_results(results))
    if args.cam and not args.json:
        print(f"wrote {len(results)} Grad-CAM overlay(s) into {args.cam}")


def cmd_app(args: argparse.Namespace) -> None:
    from .app import serve

    serve(args.runs, host=args.host, port=args.port, device=args.device)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="inspect and cache a data source").add_subparsers(dest="data_command", required=True)
    info = data.add_parser("info", help="images per split and class, image size, mean/std, cache location")
    _add_data_args(info)
    info.set_defaults(func=cmd_data_info)

    train = sub.add_parser("train", help="train a model; writes model.pth, history.json, metrics.json into --out")
    _add_data_args(train)
    train.add_argument("--model", default="fast", choices=SCRATCH)
    train.add_argument("--out", default=None, help="run folder (default runs/MODEL); an unfinished run there resumes")
    train.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epochs")
    train.add_argument("--batch-size", type=positive_int, default=None)
    train.add_argument("--device", default=None, help="auto (default) | cpu | cuda | mps")
    train.add_argument("--train-fraction", type=fraction, default=None, help="train on this stratified share (e.g. 0.01)")
    train.add_argument("--restart", action="store_true", help="ignore a checkpoint in --out and start over")
    train.add_argument("--time-budget", type=positive_float, default=None, metavar="SECONDS",
                       help="stop training after this many seconds, the lr schedule fitted to them (default: none; "
                            "the recipe's epochs decide)")
    transfer = train.add_argument_group("transfer learning (--backbone switches from --model to a pretrained backbone)")
    transfer.add_argument("--backbone", default=None, choices=BACKBONES, metavar="NAME",
                          help=f"one of {', '.join(BACKBONES)}; efficientnet_lite0/1/2 need no download")
    transfer.add_argument("--strategy", default="frozen", choices=STRATEGIES,
                          help="frozen: head on cached features; partial: last --unfreeze stages too; finetune: all")
    train.add_argument("--image-size", type=positive_int, default=None,
                       help="input side in px. Default: CIFAR-sized images keep the recipe's size; photos (larger than "
                            "64 px or of mixed sizes) go to a scratch model at 64 px and to a backbone at its native "
                            "size (efficientnet_lite0 224, lite1 240, lite2 260)")
    transfer.add_argument("--pretrained", default="imagenet", choices=["imagenet", "none"],
                          help="none = same architecture from random weights (ablation)")
    transfer.add_argument("--binary", action="store_true", help="two classes: one logit, BCE loss, ROC-AUC reported")
    transfer.add_argument("--unfreeze", type=positive_int, default=None, help="backbone stages to train (partial; default 2)")
    transfer.add_argument("--head", default=None, choices=["linear", "mlp"],
                          help="new head (default: the strategy's recipe: mlp for frozen, else linear)")
    transfer.add_argument("--drop-path", type=rate, default=None,
                          help="stochastic depth rate for Lite backbones (default: the recipe's; 0.2 for finetune on a GPU)")
    train.add_argument("--params", default=None, metavar="FILE",
                       help="JSON of recipe overrides, e.g. `cnnlab tune`'s <study>-best.json (options given here win)")
    train.set_defaults(func=cmd_train)

    tune = sub.add_parser("tune", help="search a recipe's hyperparameters with Optuna (val accuracy; SQLite study)")
    _add_data_args(tune)
    which = tune.add_mutually_exclusive_group()
    which.add_argument("--model", default=None, choices=SCRATCH, help="scratch model to tune (default fast)")
    which.add_argument("--backbone", default=None, choices=BACKBONES, metavar="NAME", help="or a pretrained backbone")
    tune.add_argument("--strategy", default="frozen", choices=STRATEGIES, help="with --backbone (default frozen)")
    tune.add_argument("--study", required=True, help="study name; the same name continues it")
    tune.add_argument("--trials", type=positive_int, default=None, help="trials to run now")
    tune.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                      help="start no trial after this many seconds")
    tune.add_argument("--out", default=None, help="default runs/tune: STUDY.db, STUDY-best.json, STUDY/trial-N/")
    tune.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"],
                      help="stop weak trials early on their per-epoch val accuracy (default median)")
    tune.add_argument("--epochs", type=positive_int, default=None, help="every trial's epochs (default: the recipe's)")
    tune.add_argument("--device", default=None, help="auto (default) | cpu | cuda | mps")
    tune.add_argument("--final", action=argparse.BooleanOptionalAction, default=True,
                      help="then train once with the best params and report test accuracy (default on)")
    tune.set_defaults(func=cmd_tune)

    ev = sub.add_parser("evaluate", help="re-evaluate a saved run on the test split")
    ev.add_argument("run", help="run folder holding model.pth")
    ev.add_argument("--source", default=None, help="default: the source the run was trained on (its test split)")
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=cmd_evaluate)

    report = sub.add_parser("report", help="execute the notebooks and export report/, slides/ (HTML deck and .pptx)")
    _add_data_args(report)
    report.add_argument("--device", default=None)
    report.add_argument("--report-dir", default=None, help="default: report/ for full, else build/PROFILE/report/")
    report.add_argument("--only", nargs="+", default=(), metavar="NN",
                        help="re-execute only these notebooks (e.g. 08) and export the others' executed copies as they are")
    report.add_argument("--slides-dir", default=None, help="default: slides/ for full, else build/PROFILE/slides/")
    report.set_defaults(func=cmd_report)

    pred = sub.add_parser("predict", help="classify your own photos with a trained run (top-k, JSON, Grad-CAM)")
    pred.add_argument("run", help="run folder holding model.pth")
    pred.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files and/or folders (searched recursively)")
    pred.add_argument("--top-k", type=positive_int, default=5, help="classes shown per image (default 5)")
    pred.add_argument("--json", action="store_true", help="print one JSON list: {image, top: [{class, probability}]} each")
    pred.add_argument("--cam", default=None, metavar="DIR", help="also write a Grad-CAM overlay PNG per image into DIR")
    pred.add_argument("--device", default=None, help="auto (default) | cpu | cuda | mps")
    pred.set_defaults(func=cmd_predict)

    app = sub.add_parser("app", help="a local web page: drop a photo, compare runs' top-5 and Grad-CAM side by side")
    app.add_argument("runs", nargs="+", metavar="RUN", help="run folders to compare (the first answers the /predict API)")
    app.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    app.add_argument("--port", type=positive_int, default=7860)
    app.add_argument("--device", default=None, help="auto (default) | cpu | cuda | mps")
    app.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DataError, FileNotFoundError, WeightsUnavailableError, ValueError, RuntimeError) as err:
        if os.environ.get("RANK", "0") == "0":  # torchrun: one message, not one per rank
            print(f"cnnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    finally:
        from .distributed import cleanup

        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
