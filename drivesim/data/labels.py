"""Label vocabularies of the dataset format and their integer indices.

A clip's labels are strings on disk (`manifest.jsonl`); models see integer indices,
with -1 for `unknown`. The first entries agree with the procedural world
(`drivesim.world.TIME_OF_DAY`, `CROWDEDNESS`, `VEHICLE_CLASSES`), so a label index
means the same thing whether a clip came from the world or from a real dataset.
"""

from __future__ import annotations

import hashlib

UNKNOWN = "unknown"

# Index order matters: it is what conditioning embeddings are trained on.
TIME_OF_DAY_LABELS: tuple[str, ...] = ("day", "night", "dawn_dusk", UNKNOWN)
CROWDEDNESS_LABELS: tuple[str, ...] = ("low", "medium", "high", UNKNOWN)
SPLITS: tuple[str, ...] = ("train", "val", "test")

# Box classes: "car" and "truck" first (the world's VEHICLE_CLASSES), then the other
# BDD100K road-user categories; anything else that is kept becomes "other".
BOX_CLASSES: tuple[str, ...] = (
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "rider",
    "other",
)

ACTION_FIELDS: tuple[str, ...] = ("steer", "accel")
EGO_FIELDS: tuple[str, ...] = ("speed", "lateral_offset", "heading")
EVENT_FIELDS: tuple[str, ...] = ("collision", "off_road")


def check_choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return `value` if it is one of `allowed`, else raise a ValueError naming the field."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"field {field!r}={value!r} is not allowed; expected one of {list(allowed)}")
    return value


def label_index(field: str, value: str, allowed: tuple[str, ...]) -> int:
    """Integer index of a label for the model; `unknown` -> -1."""
    check_choice(field, value, allowed)
    return -1 if value == UNKNOWN else allowed.index(value)


def time_of_day_index(value: str) -> int:
    """day 0, night 1, dawn_dusk 2, unknown -1."""
    return label_index("time_of_day", value, TIME_OF_DAY_LABELS)


def crowdedness_index(value: str) -> int:
    """low 0, medium 1, high 2, unknown -1."""
    return label_index("crowdedness", value, CROWDEDNESS_LABELS)


def box_class_index(name: str) -> int:
    return BOX_CLASSES.index(check_choice("class", name, BOX_CLASSES))


def hash_split(clip_id: str, val_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """Deterministic split from a hash of the clip id: independent of clip order, machine
    and Python's hash seed. Default 80/10/10 train/val/test."""
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction > 1:
        raise ValueError(f"split fractions val={val_fraction}, test={test_fraction} must be >= 0 and sum to <= 1")
    digest = hashlib.sha1(clip_id.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"
