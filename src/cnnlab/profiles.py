"""Run profiles: `smoke` (seconds, for tests and nbmake), `quick` (minutes on 2 CPU cores), `full`.

The profile comes from the `profile` argument, else CNNLAB_PROFILE, else `quick`. Each later
stage (training, transfer, comparison) reads its sizes and epochs from the same record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

PROFILE_NAMES = ("smoke", "quick", "full")


@dataclass(frozen=True)
class Profile:
    name: str
    train_limit: int | None  # training images kept after the validation carve-out (stratified); None = all
    val_limit: int | None  # validation images kept
    test_limit: int | None  # test images kept


PROFILES = {
    "smoke": Profile("smoke", train_limit=500, val_limit=200, test_limit=200),
    "quick": Profile("quick", train_limit=None, val_limit=None, test_limit=None),
    "full": Profile("full", train_limit=None, val_limit=None, test_limit=None),
}


def get_profile(name: str | None = None) -> Profile:
    """Resolve a profile by name, falling back to CNNLAB_PROFILE and then `quick`."""
    name = name or os.environ.get("CNNLAB_PROFILE") or "quick"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)} (or set CNNLAB_PROFILE)")
    return PROFILES[name]


UNSET = object()  # a per-profile recipe value with no entry for this profile
DEVICE_FALLBACKS = {"cpu-amx": ("cpu-amx", "cpu-bf16")}  # device keys tried in order (`device.recipe_device`)


def for_profile(value: Any, profile: str, device_type: str = "cpu") -> Any:
    """A recipe value for this run: values written per profile pick their entry, others pass through.

    A per-profile value is a dict whose keys are profile names, optionally with a device type,
    e.g. {"quick": 4, "full": 10, "full@cuda": 20}: "full@cuda" wins on a CUDA GPU, "full"
    elsewhere. An AMX CPU also takes the entries of every bf16 CPU ("cpu-bf16") where it has none of
    its own ("cpu-amx"). Returns UNSET when the profile has no entry (the caller keeps its default).
    """
    if not (isinstance(value, dict) and value and all(str(k).split("@")[0] in PROFILE_NAMES for k in value)):
        return value
    for device in DEVICE_FALLBACKS.get(device_type, (device_type,)):
        if f"{profile}@{device}" in value:
            return value[f"{profile}@{device}"]
    return value.get(profile, UNSET)
