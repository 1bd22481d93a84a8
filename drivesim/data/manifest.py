"""`manifest.jsonl`: one JSON object per line, one line per clip (see docs/dataset_format.md).

`read_manifest` validates every line; an error names the file, the line number and
the field. The manifest is only ever replaced atomically, and a clip is added to it
only after its video and annotation files are complete, so the manifest lists
finished clips only, even after an interrupted writer.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

from drivesim.data.atomic import atomic_write_text
from drivesim.data.labels import CROWDEDNESS_LABELS, SPLITS, TIME_OF_DAY_LABELS, check_choice

MANIFEST_NAME = "manifest.jsonl"
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
MAX_ID_LENGTH = 200  # ids name files (`videos/<id>.mp4`); file names are limited to 255 bytes
MAX_COUNT = 2**31 - 1  # height, width, num_frames
MAX_SEED = 2**63 - 1
_MAX_NAME_BYTES = 255  # one path component
_MAX_PATH_BYTES = 4096


def _check_int(field: str, value: object, minimum: int, maximum: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"field {field!r}={value!r} must be an integer")
    if value < minimum:
        raise ValueError(f"field {field!r}={value} must be >= {minimum}")
    if value > maximum:
        raise ValueError(f"field {field!r}={value} must be <= {maximum}")
    return value


def _check_relpath(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {field!r}={value!r} must be a non-empty relative path string")
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts or "\\" in value:
        raise ValueError(f"field {field!r}={value!r} must be a POSIX path relative to the dataset folder")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"field {field!r}={value!r} is not valid UTF-8 text") from None
    if "\0" in value or len(encoded) > _MAX_PATH_BYTES or any(len(part.encode()) > _MAX_NAME_BYTES for part in p.parts):
        raise ValueError(
            f"field {field!r}={reprlib.repr(value)} is not a usable path (no NUL characters, at most {_MAX_NAME_BYTES} "
            f"bytes per name and {_MAX_PATH_BYTES} in all)"
        )
    return value


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field {key!r} appears twice in one line")
        out[key] = value
    return out


@dataclass(frozen=True)
class ClipRecord:
    """One manifest line. Paths are relative to the dataset folder (POSIX separators, no NUL,
    names of at most 255 bytes). Counts are at most MAX_COUNT, seeds at most MAX_SEED; ids are
    at most MAX_ID_LENGTH characters (they name files)."""

    id: str
    video: str
    annotations: str | None
    fps: float
    height: int
    width: int
    num_frames: int
    time_of_day: str
    crowdedness: str
    split: str
    source: str
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_PATTERN.fullmatch(self.id) or len(self.id) > MAX_ID_LENGTH:
            raise ValueError(
                f"field 'id'={reprlib.repr(self.id)} must be a non-empty string of at most {MAX_ID_LENGTH} "
                "letters, digits, '_', '.', '-' (starting with a letter or digit)"
            )
        _check_relpath("video", self.video)
        if self.annotations is not None:
            _check_relpath("annotations", self.annotations)
        if isinstance(self.fps, bool) or not isinstance(self.fps, int | float):
            raise ValueError(f"field 'fps'={self.fps!r} must be a number")
        try:
            fps = float(self.fps)
        except OverflowError:
            fps = math.inf
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"field 'fps'={reprlib.repr(self.fps)} must be a positive finite number")
        object.__setattr__(self, "fps", float(self.fps))
        _check_int("height", self.height, 1)
        _check_int("width", self.width, 1)
        _check_int("num_frames", self.num_frames, 1)
        check_choice("time_of_day", self.time_of_day, TIME_OF_DAY_LABELS)
        check_choice("crowdedness", self.crowdedness, CROWDEDNESS_LABELS)
        check_choice("split", self.split, SPLITS)
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"field 'source'={self.source!r} must be a non-empty string")
        if self.seed is not None:
            _check_int("seed", self.seed, 0, MAX_SEED)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=False)

    @staticmethod
    def from_json_obj(obj: object) -> ClipRecord:
        """Build from a parsed JSON line; ValueError names the bad field."""
        if not isinstance(obj, dict):
            raise ValueError(f"a manifest line must be a JSON object, got {type(obj).__name__}")
        names = [f.name for f in fields(ClipRecord)]
        unknown = [k for k in obj if k not in names]
        if unknown:
            raise ValueError(f"field {unknown[0]!r} is not part of the format; known fields {names}")
        missing = [n for n in names if n not in obj and n != "seed"]
        if missing:
            raise ValueError(f"field {missing[0]!r} is missing")
        return ClipRecord(**obj)


def read_manifest(path: str | Path) -> list[ClipRecord]:
    """Parse and validate a manifest; blank lines are ignored; ids must be unique."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    records: list[ClipRecord] = []
    seen: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            except (ValueError, RecursionError) as exc:
                reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
                raise ValueError(f"{path}:{lineno}: {reason}") from None
            try:
                record = ClipRecord.from_json_obj(obj)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from None
            if record.id in seen:
                raise ValueError(f"{path}:{lineno}: field 'id'={record.id!r} repeats the id of line {seen[record.id]}")
            seen[record.id] = lineno
            records.append(record)
    return records


def write_manifest(path: str | Path, records: list[ClipRecord]) -> None:
    """Replace the manifest atomically with `records` (in the given order)."""
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("field 'id' must be unique within a manifest")
    atomic_write_text(path, "".join(r.to_json() + "\n" for r in records))


class ManifestWriter:
    """Collects records and rewrites the manifest atomically (sorted by id) at most every
    `flush_interval_s` seconds and on `close()`; starts from the existing manifest, if any."""

    def __init__(self, path: str | Path, flush_interval_s: float = 2.0) -> None:
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        existing = read_manifest(self.path) if self.path.is_file() else []
        self._records: dict[str, ClipRecord] = {r.id: r for r in existing}
        self._dirty = False
        self._last_flush = time.monotonic()

    @property
    def records(self) -> list[ClipRecord]:
        return [self._records[k] for k in sorted(self._records)]

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._records

    def add(self, record: ClipRecord) -> None:
        if record.id in self._records:
            raise ValueError(f"{self.path}: field 'id'={record.id!r} is already in the manifest")
        self._records[record.id] = record
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        if self._dirty or not self.path.exists():
            write_manifest(self.path, self.records)
            self._dirty = False
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
