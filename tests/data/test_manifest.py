import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest

from drivesim.data.labels import crowdedness_index, hash_split, time_of_day_index
from drivesim.data.manifest import ClipRecord, ManifestWriter, read_manifest, write_manifest


def _record(i: int, **changes: object) -> ClipRecord:
    fields = dict(
        id=f"c{i}",
        video=f"videos/c{i}.mp4",
        annotations=f"annotations/c{i}.npz",
        fps=30.0,
        height=64,
        width=128,
        num_frames=240,
        time_of_day="day",
        crowdedness="low",
        split="train",
        source="test",
        seed=i,
    )
    return ClipRecord(**(fields | changes))


def test_round_trip(tmp_path: Path) -> None:
    records = [
        _record(0),
        _record(1, annotations=None, seed=None, time_of_day="dawn_dusk", crowdedness="unknown"),
    ]
    write_manifest(tmp_path / "manifest.jsonl", records)
    assert read_manifest(tmp_path / "manifest.jsonl") == records
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.jsonl"]  # the temporary file was renamed


def _lines(path: Path, objs: list) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("{not json", r"bad\.jsonl:2: invalid JSON"),
        ({"time_of_day": "noon"}, r"bad\.jsonl:2: field 'time_of_day'='noon' is not allowed"),
        ({"num_frames": 0}, r"bad\.jsonl:2: field 'num_frames'=0 must be >= 1"),
        ({"height": "64"}, r"bad\.jsonl:2: field 'height'='64' must be an integer"),
        ({"width": True}, r"bad\.jsonl:2: field 'width'=True must be an integer"),
        ({"fps": -1}, r"bad\.jsonl:2: field 'fps'=-1 must be a positive"),
        ({"video": "/abs/x.mp4"}, r"bad\.jsonl:2: field 'video'='/abs/x.mp4' must be a POSIX path relative"),
        ({"annotations": "../x.npz"}, r"bad\.jsonl:2: field 'annotations'"),
        ({"split": "dev"}, r"bad\.jsonl:2: field 'split'='dev'"),
        ({"id": "has space"}, r"bad\.jsonl:2: field 'id'='has space'"),
        ({"colour": "red"}, r"bad\.jsonl:2: field 'colour' is not part of the format"),
        ({"id": "c0"}, r"bad\.jsonl:2: field 'id'='c0' repeats the id of line 1"),
        ("[1, 2]", r"bad\.jsonl:2: a manifest line must be a JSON object"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path: Path, bad: object, expected: str) -> None:
    second = bad if isinstance(bad, str) else asdict(_record(1)) | bad
    path = _lines(tmp_path / "bad.jsonl", [asdict(_record(0)), second])
    with pytest.raises(ValueError, match=expected):
        read_manifest(path)


def test_missing_field_and_blank_lines(tmp_path: Path) -> None:
    obj = asdict(_record(2))
    del obj["crowdedness"]
    path = _lines(tmp_path / "m.jsonl", [asdict(_record(0)), "", asdict(_record(1)), obj])
    with pytest.raises(ValueError, match=r"m\.jsonl:4: field 'crowdedness' is missing"):
        read_manifest(path)
    seedless = asdict(_record(3))
    del seedless["seed"]  # seed is optional
    assert read_manifest(_lines(tmp_path / "ok.jsonl", [seedless]))[0].seed is None


def test_manifest_writer_keeps_existing_and_sorts(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path, flush_interval_s=1e9) as writer:
        writer.add(_record(2))
        writer.add(_record(0))
        assert not path.exists() or read_manifest(path) == []  # nothing flushed yet
    assert [r.id for r in read_manifest(path)] == ["c0", "c2"]
    with ManifestWriter(path) as writer:
        assert "c2" in writer
        with pytest.raises(ValueError, match="already in the manifest"):
            writer.add(_record(2))
        writer.add(_record(1))
    assert [r.id for r in read_manifest(path)] == ["c0", "c1", "c2"]


def test_hash_split_is_deterministic_and_roughly_80_10_10() -> None:
    ids = [f"clip_{i:05d}" for i in range(3000)]
    splits = [hash_split(i) for i in ids]
    assert splits == [hash_split(i) for i in ids]
    counts = Counter(splits)
    assert 0.77 < counts["train"] / 3000 < 0.83
    assert 0.08 < counts["val"] / 3000 < 0.12 and 0.08 < counts["test"] / 3000 < 0.12
    with pytest.raises(ValueError, match="split fractions"):
        hash_split("x", 0.7, 0.5)


def test_label_indices() -> None:
    assert [time_of_day_index(v) for v in ("day", "night", "dawn_dusk", "unknown")] == [0, 1, 2, -1]
    assert [crowdedness_index(v) for v in ("low", "medium", "high", "unknown")] == [0, 1, 2, -1]
    with pytest.raises(ValueError, match="'time_of_day'='noon'"):
        time_of_day_index("noon")
