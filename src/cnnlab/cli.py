"""The `cnnlab` command line: thin argument parsing over the package's functions."""

from __future__ import annotations

import argparse
import sys
import time

from .data import DataError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=None,
                   help="cifar10 | cifar100 | fake | path to a folder or .tar/.tar.gz (default: $CNNLAB_SOURCE or cifar10)")
    p.add_argument("--profile", default=None, choices=["smoke", "quick", "full"], help="default: $CNNLAB_PROFILE or quick")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=float, default=None, help="validation images (>=1) or fraction (<1) carved from train")


def _val_size(value: float | None) -> int | float | None:
    return None if value is None else (int(value) if value >= 1 else value)


def cmd_data_info(args: argparse.Namespace) -> None:
    from .data import load_dataset

    t0 = time.perf_counter()
    data = load_dataset(args.source, val_size=_val_size(args.val_size), seed=args.seed, profile=args.profile)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="inspect and cache a data source").add_subparsers(dest="data_command", required=True)
    info = data.add_parser("info", help="images per split and class, image size, mean/std, cache location")
    _add_data_args(info)
    info.set_defaults(func=cmd_data_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DataError as err:
        print(f"cnnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
