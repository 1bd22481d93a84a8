"""Hostile input at the dataset reader (issue 10): malformed manifests, annotation files and MP4s.

Property-based (hypothesis, derandomized, no example database). Every damaged input must end
in one of two ways: a ValueError (CorruptVideoError is one) whose message names the file (and
line and field where there is one), or a successful read whose result satisfies the format's
invariants (nothing silently wrong). Through `WindowDataset` a damaged clip is skipped and
counted while the intact clip keeps delivering windows.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drivesim.data.annotations import ClipAnnotations, ClipBoxes, FrameBoxes, load_annotations
from drivesim.data.dataset import ClipLabels, write_clip
from drivesim.data.labels import BOX_CLASSES, CROWDEDNESS_LABELS, SPLITS, TIME_OF_DAY_LABELS
from drivesim.data.manifest import MANIFEST_NAME, ClipRecord, read_manifest, write_manifest
from drivesim.data.video import VideoReader
from drivesim.data.windows import WindowConfig, WindowDataset

HOSTILE = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)
NUM_FRAMES, HEIGHT, WIDTH = 12, 32, 64
WINDOW = WindowConfig(num_frames=4, stride=2, height=16, width=32, split=None)
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


# -- a two-clip dataset, built once and copied per example -----------------------------------------------
def _annotations(seed: int) -> ClipAnnotations:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(NUM_FRAMES):
        n = int(rng.integers(0, 4))
        lo = rng.uniform(0, 0.5, (n, 2))
        xyxy = np.concatenate([lo, lo + rng.uniform(0.01, 0.5, (n, 2))], axis=1).astype(np.float32)
        frames.append(FrameBoxes(xyxy, rng.integers(0, 3, n).astype(np.int64), np.arange(n, dtype=np.int64)))
    return ClipAnnotations(
        num_frames=NUM_FRAMES,
        boxes=ClipBoxes.from_frames(frames),
        actions=rng.uniform(-1, 1, (NUM_FRAMES, 2)).astype(np.float32),
        ego=rng.uniform(0, 30, (NUM_FRAMES, 3)).astype(np.float32),
        events=rng.random((NUM_FRAMES, 2)) < 0.2,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hostile_data") / "ds"
    records = []
    for i in range(2):
        labels = ClipLabels(f"clip_{i:02d}", 10.0, "day", "low", "train", "test", seed=i)
        t = np.arange(NUM_FRAMES)[:, None, None, None]
        frames = np.broadcast_to((t * 17 + i * 60) % 256, (NUM_FRAMES, HEIGHT, WIDTH, 3)).astype(np.uint8)
        records.append(write_clip(root, labels, iter(frames), _annotations(i)))
    write_manifest(root / MANIFEST_NAME, records)
    return root


@contextmanager
def fresh_copy(template: Path) -> Iterator[Path]:
    """A private copy of the template dataset for one example (removed afterwards)."""
    tmp = Path(tempfile.mkdtemp(prefix="hostile_", dir=template.parent))
    try:
        root = tmp / "ds"
        shutil.copytree(template, root)
        yield root
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def assert_sane_record(r: ClipRecord) -> None:
    assert isinstance(r.id, str) and ID_RE.fullmatch(r.id) and len(r.id) <= 200
    for p in (r.video, r.annotations):
        if p is not None:
            assert isinstance(p, str) and p and not p.startswith("/") and ".." not in p.split("/") and "\0" not in p
    assert isinstance(r.fps, float) and math.isfinite(r.fps) and r.fps > 0
    for n in (r.height, r.width, r.num_frames):
        assert type(n) is int and 1 <= n <= 2**31 - 1
    assert r.time_of_day in TIME_OF_DAY_LABELS and r.crowdedness in CROWDEDNESS_LABELS and r.split in SPLITS
    assert isinstance(r.source, str) and r.source
    assert r.seed is None or (type(r.seed) is int and 0 <= r.seed < 2**63)


def assert_sane_annotations(ann: ClipAnnotations, num_frames: int) -> None:
    assert ann.num_frames == num_frames
    if ann.boxes is not None:
        b = ann.boxes
        assert b.offsets.shape == (num_frames + 1,) and b.offsets[0] == 0 and np.all(b.offsets[1:] >= b.offsets[:-1])
        n = int(b.offsets[-1])
        assert b.xyxy.shape == (n, 4) and np.isfinite(b.xyxy).all()
        assert b.classes.shape == b.track_ids.shape == (n,) and b.labelled.shape == (num_frames,)
        if n:
            assert -1e-4 <= b.xyxy.min() and b.xyxy.max() <= 1 + 1e-4
            assert np.all(b.xyxy[:, 2] >= b.xyxy[:, 0]) and np.all(b.xyxy[:, 3] >= b.xyxy[:, 1])
            assert 0 <= b.classes.min() and b.classes.max() < len(BOX_CLASSES) and b.track_ids.min() >= -1
        assert sum(len(b.frame(i)) for i in range(num_frames)) == n
    for name, width in (("actions", 2), ("ego", 3)):
        arr = getattr(ann, name)
        assert arr is None or (arr.shape == (num_frames, width) and np.isfinite(arr).all())
    assert ann.events is None or (ann.events.shape == (num_frames, 2) and ann.events.dtype == bool)


def assert_windows_survive(root: Path, damaged: str) -> str:
    """Every window index yields a sample; the damaged clip is either fine or skipped and counted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = WindowDataset(root, WINDOW)
        for index in sorted({0, len(ds) // 2, len(ds) - 1}):
            sample = ds[index]
            assert sample.video.shape == (4, 3, 16, 32) and torch.isfinite(sample.video).all()
            assert -1.0 <= float(sample.video.min()) and float(sample.video.max()) <= 1.0
    report = ds.report()
    assert report.usable_clips + report.skipped == report.clips_in_split == 2
    if damaged in report.failed or damaged in report.missing or damaged in report.too_short:
        return "skipped"
    return "used"


# -- manifests -----------------------------------------------------------------------------------------------
FIELDS = ("id", "video", "annotations", "fps", "height", "width", "num_frames", "time_of_day", "crowdedness")
FIELDS += ("split", "source", "seed")
hostile_value = st.one_of(
    st.sampled_from(
        [None, True, False, -1, 0, 1, 13, 2**31, 2**63, 10**30, 10**400, 1.5, -0.0, 1e308, math.nan, math.inf]
    ),
    st.sampled_from(["", " ", "x" * 300, "a\u0000b", "../x", "/abs/x", "a\\b", "videos/", "videos/clip_01.mp4"]),
    st.sampled_from(["day", "night", "unknown", "train", "medium", "clip_00", "clip_01\n", "\ud800", "é" * 130]),
    st.sampled_from([[], {}, [1], {"a": 1}, [["x"]]]),
    st.text(max_size=12),
    st.integers(),
    st.floats(),
)


@st.composite
def manifest_line(draw: st.DrawFn, good: dict[str, Any]) -> tuple[str, str | None]:
    """(text of line 2, the field the damage touches, None for raw garbage)."""
    kind = draw(st.sampled_from(["replace", "replace", "replace", "drop", "extra", "raw", "bytes", "deep"]))
    obj = dict(good)
    if kind == "replace":
        field = draw(st.sampled_from(FIELDS))
        obj[field] = draw(hostile_value)
    elif kind == "drop":
        field = draw(st.sampled_from([f for f in FIELDS if f != "seed"]))
        del obj[field]
    elif kind == "extra":
        field = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in FIELDS))
        obj[field] = draw(hostile_value)
    elif kind == "raw":
        return draw(st.text(max_size=60).map(lambda s: s.replace("\n", " "))), None
    elif kind == "bytes":
        return draw(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ").decode("latin-1"))), None
    else:
        depth = draw(st.integers(10, 100_000))
        return '{"id": ' + "[" * depth + "]" * depth + "}", None
    event(f"manifest: {kind}")
    return json.dumps(obj, ensure_ascii=draw(st.booleans())), field


@settings(HOSTILE, max_examples=60)
@given(data=st.data())
def test_damaged_manifest_line(template: Path, data: st.DataObject) -> None:
    good = [json.loads(line) for line in (template / MANIFEST_NAME).read_text().splitlines()]
    line, field = data.draw(manifest_line(good[1]))
    with fresh_copy(template) as root:
        path = root / MANIFEST_NAME
        text = json.dumps(good[0]) + "\n" + line + "\n"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        try:
            records = read_manifest(path)
        except ValueError as exc:
            event("manifest: refused")
            msg = str(exc)
            assert msg.startswith(f"{path}:2:"), msg
            if field is not None and "not UTF-8" not in msg:
                assert repr(field) in msg or field in msg, msg
            return
        event("manifest: accepted")
        for r in records:
            assert_sane_record(r)
        assert [r.id for r in records][:1] == ["clip_00"]
        if len(records) == 2:
            event(f"windows: {assert_windows_survive(root, records[1].id)}")


# -- annotation files -----------------------------------------------------------------------------------------
def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _hostile_array(draw: st.DrawFn, arr: np.ndarray) -> np.ndarray:
    how = draw(st.sampled_from(["dtype", "shape", "value", "scalar", "empty", "uint_decreasing"]))
    event(f"annotation array: {how}")
    try:
        return _transform(draw, arr, how)
    except (ValueError, TypeError, IndexError):  # e.g. a string field cast to float: store something else odd
        return np.array(-1)


def _transform(draw: st.DrawFn, arr: np.ndarray, how: str) -> np.ndarray:
    if how == "dtype":
        dtype = draw(st.sampled_from([np.float16, np.float64, np.int8, np.int64, np.uint64, np.bool_, "<U3", "c8"]))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return arr.astype(dtype)
    if how == "shape":
        reshape = draw(st.sampled_from(["flat", "drop_last", "add_axis", "double", "transpose"]))
        if reshape == "flat":
            return arr.reshape(-1)
        if reshape == "drop_last":
            return arr[:-1] if arr.ndim else arr[None][:0]
        if reshape == "add_axis":
            return arr[None]
        if reshape == "double":
            return np.concatenate([arr, arr]) if arr.ndim else np.stack([arr, arr])
        return arr.T.copy()
    if how == "scalar":
        return np.array(draw(st.sampled_from([3, -1, 2**40, "x", 1.5, True])))
    if how == "empty":
        return np.zeros((0,) + arr.shape[1:], arr.dtype)
    if how == "uint_decreasing":  # offsets that go down, stored unsigned (a diff would wrap around)
        out = arr.astype(np.uint64).copy()
        if out.size >= 3:
            out[1], out[2] = out[2] + 1, out[1]
        return out
    out = arr.copy()
    if out.size == 0:
        return out
    flat = out.reshape(-1)
    i = draw(st.integers(0, flat.size - 1))
    if out.dtype.kind == "f":
        flat[i] = draw(st.sampled_from([np.nan, np.inf, -np.inf, -0.5, 1.5, 1e30, -1e-3]))
    elif out.dtype.kind in "iu":
        flat[i] = draw(st.sampled_from([-5, -2, -1, 9, 10**6, 2**40] if out.dtype.kind == "i" else [9, 10**6, 2**40]))
    elif out.dtype.kind == "b":
        flat[i] = not flat[i]
    else:
        flat[i] = draw(st.sampled_from(["bus", "plane", "", "car "]))
    return out


@st.composite
def damaged_annotations(draw: st.DrawFn, good: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    data = dict(good)
    keys = sorted(data)
    op = draw(st.sampled_from(["array", "array", "array", "drop", "extra", "num_frames", "inverted_box"]))
    if op == "array":
        key = draw(st.sampled_from(keys))
        data[key] = _hostile_array(draw, data[key])
    elif op == "drop":
        del data[draw(st.sampled_from(keys))]
    elif op == "extra":
        data[draw(st.text(alphabet="abcxyz_", min_size=1, max_size=6))] = np.zeros(2)
    elif op == "num_frames":
        data["num_frames"] = np.array(draw(st.sampled_from([0, -1, NUM_FRAMES - 1, NUM_FRAMES + 1, 2**62])))
    else:
        xyxy = data["boxes_xyxy"].copy()
        if len(xyxy):
            row = draw(st.integers(0, len(xyxy) - 1))
            xyxy[row] = xyxy[row][[2, 3, 0, 1]]
        data["boxes_xyxy"] = xyxy
    event(f"annotations: {op}")
    return data


@settings(HOSTILE, max_examples=50)
@given(data=st.data())
def test_damaged_annotation_arrays(template: Path, data: st.DataObject) -> None:
    good = _load_npz(template / "annotations" / "clip_01.npz")
    damaged = data.draw(damaged_annotations(good))
    compressed = data.draw(st.booleans())
    with fresh_copy(template) as root:
        path = root / "annotations" / "clip_01.npz"
        with open(path, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **damaged)
        try:
            ann = load_annotations(path, expected_num_frames=NUM_FRAMES)
        except ValueError as exc:
            event("annotations: refused")
            assert str(exc).startswith(f"{path}: "), str(exc)
        else:
            event("annotations: accepted")
            assert_sane_annotations(ann, NUM_FRAMES)
        if data.draw(st.booleans()):  # half of the cases also go through the window reader
            event(f"windows: {assert_windows_survive(root, 'clip_01')}")


def _damage_bytes(draw: st.DrawFn, raw: bytes, header: int = 0) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "flip_head", "random", "zero_span", "splice", "empty"]))
    event(f"bytes: {kind}")
    b = bytearray(raw)
    if kind == "truncate":
        return bytes(b[: draw(st.integers(0, len(b) - 1))])
    if kind in ("flip", "flip_head"):
        hi = min(len(b), header or 256) if kind == "flip_head" else len(b)
        for _ in range(draw(st.integers(1, 40))):
            b[draw(st.integers(0, hi - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    if kind == "random":
        return draw(st.binary(max_size=4000))
    if kind == "zero_span":
        start = draw(st.integers(0, len(b) - 1))
        stop = draw(st.integers(start, min(len(b), start + 2000)))
        b[start:stop] = bytes(stop - start)
        return bytes(b)
    if kind == "splice":
        start = draw(st.integers(0, len(b) - 1))
        return bytes(b[:start] + b[start : start + draw(st.integers(1, 500))] + b[start:])
    return b""


@settings(HOSTILE, max_examples=40)
@given(data=st.data())
def test_corrupt_annotation_file_bytes(template: Path, data: st.DataObject) -> None:
    raw = (template / "annotations" / "clip_01.npz").read_bytes()
    with fresh_copy(template) as root:
        path = root / "annotations" / "clip_01.npz"
        path.write_bytes(_damage_bytes(data.draw, raw))
        try:
            ann = load_annotations(path, expected_num_frames=NUM_FRAMES)
        except ValueError as exc:
            assert str(exc).startswith(f"{path}: "), str(exc)
        else:
            assert_sane_annotations(ann, NUM_FRAMES)


def test_npy_header_declaring_a_huge_array(tmp_path: Path) -> None:
    """A crafted header must not surface as MemoryError from deep inside numpy."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(3))
    member = buf.getvalue().replace(b"'shape': (3,)", b"'shape': (10000000000000,)")
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("num_frames.npy", member)
    with pytest.raises(ValueError, match="bomb.npz: not a readable npz annotation file"):
        load_annotations(path)


# -- videos ------------------------------------------------------------------------------------------------------
@settings(HOSTILE, max_examples=45)
@given(data=st.data())
def test_corrupt_video_bytes(template: Path, data: st.DataObject) -> None:
    raw = (template / "videos" / "clip_01.mp4").read_bytes()
    with fresh_copy(template) as root:
        path = root / "videos" / "clip_01.mp4"
        path.write_bytes(_damage_bytes(data.draw, raw, header=2000))  # faststart: the moov atom is up front
        try:
            with VideoReader(path) as reader:
                frames = reader.read_window(0, NUM_FRAMES)
        except ValueError as exc:  # CorruptVideoError
            event("video: refused")
            assert str(exc).startswith(f"{path}: "), str(exc)
        else:
            event("video: decoded")
            assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[0] == NUM_FRAMES
            assert frames.shape[-1] == 3
        if data.draw(st.integers(0, 2)) == 0:  # a third also go through the window reader
            event(f"windows: {assert_windows_survive(root, 'clip_01')}")


def test_manifest_with_mismatched_frame_counts_is_skipped_not_fatal(template: Path) -> None:
    with fresh_copy(template) as root:
        records = read_manifest(root / MANIFEST_NAME)
        longer = ClipRecord(**{**records[1].__dict__, "num_frames": 40})  # the video has 12 frames
        write_manifest(root / MANIFEST_NAME, [records[0], longer])
        assert assert_windows_survive(root, "clip_01") == "skipped"  # annotations say 12 -> refused and counted
