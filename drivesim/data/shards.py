"""WebDataset tar shards of a dataset folder: the writer and a clip-level reader.

`write_shards` packs a dataset folder (docs/dataset_format.md) into `out/shards-000000.tar`,
`shards-000001.tar`, ...: one tar sample per clip, keyed by the clip's position in the
manifest (`000000123`; clip ids may contain dots, which WebDataset keys may not), holding
`<key>.json` (the clip's manifest line, unchanged), `<key>.mp4` (the video file's bytes) and
`<key>.npz` (the annotation file's bytes; absent when the clip has none). A shard closes at
`shard_max_clips` clips or about `shard_max_bytes` bytes; it is written to a temporary file
and renamed, and `shards.json` (written last) lists every shard with its size and clips.

`iter_shard_clips` reads one shard back (clip by clip, checked against shards.json);
`drivesim.data.shard_windows.ShardWindowDataset` turns shards into training windows.
Reading needs the optional `webdataset` package (`pip install 'drivesim[shards]'`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from drivesim.data.atomic import atomic_write_text, temporary_sibling
from drivesim.data.dataset import open_dataset
from drivesim.data.labels import SPLITS
from drivesim.data.manifest import ClipRecord

SHARD_MANIFEST = "shards.json"
FORMAT_NAME = "drivesim.shards"
FORMAT_VERSION = 1
_SHARD_NAME = re.compile(r"^shards-\d{6,}\.tar$")
_BLOCK = 512  # tar block size


class CorruptShardError(ValueError):
    """A shard file that is missing, truncated, unreadable, or disagrees with shards.json."""


def require_webdataset() -> Any:
    """The `webdataset` module, or an ImportError that names the extra to install."""
    try:
        import webdataset
    except ImportError as exc:
        raise ImportError(
            "reading drivesim shards needs the optional dependency 'webdataset': pip install 'drivesim[shards]'"
        ) from exc
    return webdataset


# ----------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class ShardWriteConfig:
    dataset: str  # dataset folder (manifest.jsonl)
    out: str  # shard folder: shards.json + shards-%06d.tar
    shard_max_clips: int = 1000  # clips per shard at most
    shard_max_bytes: int = 1_000_000_000  # bytes per shard at most (a larger single clip gets its own shard)
    splits: list[str] | None = None  # e.g. [train]; None: every clip
    overwrite: bool = False  # replace the shards already in `out`

    def __post_init__(self) -> None:
        if self.shard_max_clips < 1:
            raise ValueError(f"shard_max_clips={self.shard_max_clips} is not allowed; it must be >= 1")
        if self.shard_max_bytes < 10 * _BLOCK:
            raise ValueError(f"shard_max_bytes={self.shard_max_bytes} is not allowed; it must be >= {10 * _BLOCK}")
        for split in self.splits or ():
            if split not in SPLITS:
                raise ValueError(f"splits has {split!r}; allowed: {list(SPLITS)}")


@dataclass(frozen=True)
class ShardClipEntry:
    id: str
    split: str
    num_frames: int


@dataclass(frozen=True)
class ShardEntry:
    name: str  # file name inside the shard folder
    num_clips: int
    bytes: int  # file size
    clips: tuple[ShardClipEntry, ...]  # in tar order


@dataclass(frozen=True)
class ShardWriteResult:
    out: Path
    shards: list[ShardEntry]
    skipped: dict[str, str]  # clip id -> reason

    @property
    def num_clips(self) -> int:
        return sum(s.num_clips for s in self.shards)


def _member_bytes(size: int) -> int:
    """Bytes a member of `size` bytes takes in a tar: header block + data padded to blocks."""
    return _BLOCK + -(-size // _BLOCK) * _BLOCK


def _add_member(tar: tarfile.TarFile, name: str, data: bytes | Path) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.mode = 0, 0o644  # reproducible archives
    if isinstance(data, Path):
        info.size = data.stat().st_size
        with open(data, "rb") as f:
            tar.addfile(info, f)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


class _ShardSink:
    """Writes samples into shards-%06d.tar, rolling over at the clip/byte limits; each shard
    is written to a temporary sibling and renamed when complete."""

    def __init__(self, out: Path, max_clips: int, max_bytes: int) -> None:
        self.out, self.max_clips, self.max_bytes = out, max_clips, max_bytes
        self.entries: list[ShardEntry] = []
        self._tar: tarfile.TarFile | None = None
        self._tmp: Path | None = None
        self._clips: list[ShardClipEntry] = []
        self._bytes = 0

    def add(self, key: str, record: ClipRecord, video: Path, annotations: bytes | None) -> None:
        line = record.to_json().encode("utf-8")
        size = _member_bytes(len(line)) + _member_bytes(video.stat().st_size)
        size += 0 if annotations is None else _member_bytes(len(annotations))
        if self._tar is not None and (len(self._clips) >= self.max_clips or self._bytes + size > self.max_bytes):
            self.finish()
        if self._tar is None:
            self._tmp = temporary_sibling(self.out / self._name(), ".tar")
            self._tar = tarfile.open(self._tmp, "w", format=tarfile.PAX_FORMAT)
            self._bytes = 2 * _BLOCK  # end-of-archive blocks
        _add_member(self._tar, f"{key}.json", line)
        if annotations is not None:
            _add_member(self._tar, f"{key}.npz", annotations)
        _add_member(self._tar, f"{key}.mp4", video)
        self._clips.append(ShardClipEntry(id=record.id, split=record.split, num_frames=record.num_frames))
        self._bytes += size

    def _name(self) -> str:
        return f"shards-{len(self.entries):06d}.tar"

    def finish(self) -> None:
        """Close the open shard and move it into place."""
        if self._tar is None or self._tmp is None:
            return
        self._tar.close()
        with open(self._tmp, "rb") as f:
            os.fsync(f.fileno())
        target = self.out / self._name()
        os.replace(self._tmp, target)
        self.entries.append(ShardEntry(self._name(), len(self._clips), target.stat().st_size, tuple(self._clips)))
        self._tar, self._tmp, self._clips = None, None, []

    def abort(self) -> None:
        if self._tar is not None:
            with contextlib.suppress(Exception):
                self._tar.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._tar, self._tmp = None, None


def write_shards(config: ShardWriteConfig) -> ShardWriteResult:
    """Pack the clips of `config.dataset` into tar shards in `config.out` (see the module doc).

    Clips whose video is missing or whose annotation file is invalid are skipped and listed
    (in the result and in shards.json), like the directory reader skips them.
    """
    src, out = Path(config.dataset), Path(config.out)
    folder = open_dataset(src)
    if out.resolve() == src.resolve():
        raise ValueError(f"out={config.out!r} must differ from dataset={config.dataset!r}")
    manifest = out / SHARD_MANIFEST
    stale = sorted(p for p in out.glob("shards-*.tar") if _SHARD_NAME.match(p.name)) if out.is_dir() else []
    if (manifest.exists() or stale) and not config.overwrite:
        raise ValueError(f"out={config.out!r} already holds shards; pass overwrite=true to replace them")
    clips = [r for r in folder.clips if config.splits is None or r.split in config.splits]
    if not clips:
        raise ValueError(f"dataset={config.dataset!r} has no clips in splits={config.splits}")
    manifest.unlink(missing_ok=True)  # an interrupted rewrite leaves no manifest, never a wrong one
    out.mkdir(parents=True, exist_ok=True)
    sink = _ShardSink(out, config.shard_max_clips, config.shard_max_bytes)
    skipped: dict[str, str] = {}
    try:
        for ordinal, record in enumerate(tqdm(clips, desc="shards", unit="clip")):
            video = folder.video_path(record)
            if not video.is_file():
                skipped[record.id] = f"video file {video} is missing"
                continue
            annotations = None
            if record.annotations is not None:
                try:
                    folder.load_annotations(record)
                    annotations = (src / record.annotations).read_bytes()
                except (ValueError, OSError) as exc:
                    skipped[record.id] = str(exc)
                    continue
            sink.add(f"{ordinal:09d}", record, video, annotations)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    if not sink.entries:
        raise ValueError(f"no clip of dataset={config.dataset!r} could be written: {skipped}")
    doc = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dataset": str(config.dataset),
        "shard_max_clips": config.shard_max_clips,
        "shard_max_bytes": config.shard_max_bytes,
        "num_clips": sum(e.num_clips for e in sink.entries),
        "shards": [asdict(e) for e in sink.entries],
        "skipped": skipped,
    }
    atomic_write_text(manifest, json.dumps(doc, indent=1) + "\n")
    kept = {e.name for e in sink.entries}
    for path in stale:
        if path.name not in kept:
            path.unlink(missing_ok=True)
    return ShardWriteResult(out=out, shards=sink.entries, skipped=skipped)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ShardManifest:
    root: Path
    shards: tuple[ShardEntry, ...]


def read_shard_manifest(root: str | Path) -> ShardManifest:
    """Read and validate `root/shards.json`; errors name the file and the field."""
    path = Path(root) / SHARD_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"shard manifest not found: {path} (write shards with `drivesim data shards`)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: field 'format' must be {FORMAT_NAME!r}")
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: field 'version'={doc.get('version')!r}; this reader understands {FORMAT_VERSION}")
    shards = []
    for k, s in enumerate(doc.get("shards") or []):
        try:
            entry = ShardEntry(
                name=str(s["name"]),
                num_clips=int(s["num_clips"]),
                bytes=int(s["bytes"]),
                clips=tuple(ShardClipEntry(str(c["id"]), str(c["split"]), int(c["num_frames"])) for c in s["clips"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: field 'shards'[{k}] is malformed: {exc!r}") from None
        if not _SHARD_NAME.match(entry.name) or entry.num_clips != len(entry.clips):
            raise ValueError(f"{path}: field 'shards'[{k}] has a bad name or clip count: {entry.name!r}")
        shards.append(entry)
    if not shards:
        raise ValueError(f"{path}: field 'shards' lists no shard")
    return ShardManifest(root=Path(root), shards=tuple(shards))


@dataclass(frozen=True)
class ShardClip:
    """One clip as stored in a shard: its manifest record and its files' bytes."""

    shard: str
    record: ClipRecord
    video: bytes
    annotations: bytes | None


def _parse_sample(shard: Path, sample: dict[str, Any]) -> ShardClip:
    key = sample.get("__key__")
    if "json" not in sample or "mp4" not in sample:
        raise CorruptShardError(f"{shard}: sample {key!r} lacks its .json or .mp4 member ({sorted(sample)})")
    try:
        record = ClipRecord.from_json_obj(json.loads(sample["json"]))
    except (ValueError, TypeError) as exc:
        raise CorruptShardError(f"{shard}: sample {key!r}: bad manifest line: {exc}") from None
    if (record.annotations is None) != ("npz" not in sample):
        raise CorruptShardError(f"{shard}: sample {key!r}: the .npz member does not match the record's annotations")
    return ShardClip(shard=shard.name, record=record, video=sample["mp4"], annotations=sample.get("npz"))


def iter_shard_clips(root: str | Path, entry: ShardEntry) -> Iterator[ShardClip]:
    """The clips of one shard in order; CorruptShardError when the file is missing, has another
    size than shards.json says, is not a readable tar, or holds other clips than listed."""
    wds = require_webdataset()
    path = Path(root) / entry.name
    if not path.is_file():
        raise CorruptShardError(f"{path}: shard file is missing")
    size = path.stat().st_size
    if size != entry.bytes:
        raise CorruptShardError(
            f"{path}: {size} bytes but {SHARD_MANIFEST} says {entry.bytes} (truncated or replaced); "
            "rewrite the shards with `drivesim data shards ... overwrite=true`"
        )
    count = 0
    try:
        with open(path, "rb") as f:
            files = ({**m, "__url__": str(path)} for m in wds.tariterators.tar_file_iterator(f))
            for sample in wds.tariterators.group_by_keys(files):
                clip = _parse_sample(path, sample)
                if count >= entry.num_clips or clip.record.id != entry.clips[count].id:
                    expected = entry.clips[count].id if count < entry.num_clips else "no more clips"
                    raise CorruptShardError(f"{path}: sample {count} is clip {clip.record.id!r}; expected {expected}")
                count += 1
                yield clip
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, CorruptShardError):
            raise
        raise CorruptShardError(f"{path}: unreadable tar after {count} clips: {exc}") from exc
    if count != entry.num_clips:
        raise CorruptShardError(f"{path}: holds {count} clips but {SHARD_MANIFEST} lists {entry.num_clips}")
