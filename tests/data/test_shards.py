"""WebDataset tar shards: writer, shard manifest, and the streaming window reader."""

import itertools
import json
import shutil
import sys
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from drivesim.cli.main import main
from drivesim.data.shard_windows import ShardReadConfig, ShardWindowDataset
from drivesim.data.shards import (
    SHARD_MANIFEST,
    CorruptShardError,
    ShardWriteConfig,
    read_shard_manifest,
    write_shards,
)
from drivesim.data.windows import DataWarning, WindowConfig, WindowDataset, collate_windows

torch.set_num_threads(1)

# 20 frames per clip; span (4 - 1) * 2 + 1 = 7, step 3 -> 5 windows per clip, 30 in all.
CFG = WindowConfig(num_frames=4, stride=2, height=16, width=32, split=None, max_boxes=3, window_step=3)


@dataclass(frozen=True)
class Node:
    rank: int
    world_size: int


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synth dataset `ds`, packed as `sh2` (2 clips a shard) and `sh1` (1 clip a shard)."""
    root = tmp_path_factory.mktemp("shards")
    synth = ["data", "synth", f"out={root / 'ds'}", "num_clips=6", "clip_seconds=2", "fps=10", "height=32", "width=64"]
    assert main(synth) == 0
    for n in (1, 2):
        assert main(["data", "shards", f"dataset={root / 'ds'}", f"out={root / f'sh{n}'}", f"shard_max_clips={n}"]) == 0
    return root


def _keys(samples) -> list[tuple[str, int]]:
    return [(s.clip_id, s.start) for s in samples]


def _assert_same(a, b) -> None:
    assert _keys(a) == _keys(b)
    for x, y in zip(a, b):
        for name, value in vars(x).items():
            other = getattr(y, name)
            same = torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
            assert same, (x.clip_id, x.start, name)


def test_writer_layout_and_manifest(data: Path) -> None:
    manifest = read_shard_manifest(data / "sh2")
    assert [s.name for s in manifest.shards] == ["shards-000000.tar", "shards-000001.tar", "shards-000002.tar"]
    assert [s.num_clips for s in manifest.shards] == [2, 2, 2]
    assert [c.id for s in manifest.shards for c in s.clips] == [f"synth_{i:06d}" for i in range(6)]
    assert sorted(p.name for p in (data / "sh2").iterdir()) == [s.name for s in manifest.shards] + [SHARD_MANIFEST]
    for s in manifest.shards:
        assert (data / "sh2" / s.name).stat().st_size == s.bytes
    with tarfile.open(data / "sh2" / "shards-000001.tar") as tar:
        names = tar.getnames()
        line = json.loads(tar.extractfile(names[0]).read())
    assert names == [f"00000000{k}.{ext}" for k in (2, 3) for ext in ("json", "npz", "mp4")]
    ds_line = (data / "ds" / "manifest.jsonl").read_text().splitlines()[2]
    assert line == json.loads(ds_line)  # the manifest line, unchanged


def test_shards_give_the_directory_windows(data: Path) -> None:
    directory = WindowDataset(data / "ds", CFG)
    expected = [directory[i] for i in range(len(directory))]
    assert len(expected) == 30
    for name in ("sh1", "sh2"):
        streamed = ShardWindowDataset(data / name, CFG)
        assert streamed.num_windows == 30
        _assert_same(expected, list(streamed))
    split = directory.folder.clip("synth_000001").split  # a split that has clips
    cfg = WindowConfig(num_frames=3, stride=1, height=32, width=64, split=split, max_boxes=2, window_step=5)
    by_dir = WindowDataset(data / "ds", cfg)
    _assert_same([by_dir[i] for i in range(len(by_dir))], list(ShardWindowDataset(data / "sh2", cfg)))


def test_node_and_worker_splits_partition_the_windows(data: Path) -> None:
    everything = _keys(ShardWindowDataset(data / "sh1", CFG))
    seen: list[tuple[str, int]] = []
    for rank in range(2):
        ds = ShardWindowDataset(data / "sh1", CFG, node=Node(rank, 2))
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="forkserver")
        part = _keys(loader)
        assert 0 < len(part) < len(everything)
        seen += part
    assert len(seen) == len(set(seen)) == len(everything) and set(seen) == set(everything)
    shards = [ShardWindowDataset(data / "sh1", CFG, node=Node(r, 2)).shards_for(w, 2) for r in (0, 1) for w in (0, 1)]
    assert sorted(s.name for part in shards for s in part) == [f"shards-{i:06d}.tar" for i in range(6)]


def test_rank_comes_from_the_environment(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    ds = ShardWindowDataset(data / "sh1", CFG)
    assert (ds.rank, ds.world_size) == (1, 3)
    assert [s.name for s in ds.shards_for(0, 1)] == ["shards-000001.tar", "shards-000004.tar"]


def test_shuffle_changes_the_order_not_the_set(data: Path) -> None:
    plain = _keys(ShardWindowDataset(data / "sh1", CFG))
    read = ShardReadConfig(shuffle=True, clip_buffer=4, window_buffer=8, seed=3)
    ds = ShardWindowDataset(data / "sh1", CFG, read)
    first = _keys(ds)
    assert first != plain and sorted(first) == sorted(plain)
    assert _keys(ShardWindowDataset(data / "sh1", CFG, read)) == first  # seeded
    ds.set_epoch(1)
    second = _keys(ds)
    assert second != first and sorted(second) == sorted(plain)
    batch = collate_windows(list(itertools.islice(iter(ds), 4)))
    assert batch.video.shape == (4, 4, 3, 16, 32)


def test_resampled_is_endless_and_draws_with_replacement(data: Path) -> None:
    everything = set(_keys(ShardWindowDataset(data / "sh2", CFG)))
    draws = []
    for rank in range(2):
        ds = ShardWindowDataset(data / "sh2", CFG, ShardReadConfig(resampled=True, seed=1), node=Node(rank, 8))
        draws.append(_keys(itertools.islice(iter(ds), 60)))  # twice the dataset
        assert len(draws[-1]) == 60 and set(draws[-1]) <= everything
        assert len(set(draws[-1])) < 60  # with replacement
    assert draws[0] != draws[1]  # every rank draws its own shards


def test_truncated_shard_raises_or_is_skipped(data: Path, tmp_path: Path) -> None:
    shards = tmp_path / "sh2"
    shutil.copytree(data / "sh2", shards)
    broken = shards / "shards-000001.tar"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    with pytest.raises(CorruptShardError, match=r"shards-000001\.tar: .*truncated"):
        list(ShardWindowDataset(shards, CFG))
    ds = ShardWindowDataset(shards, CFG, ShardReadConfig(on_corrupt_shard="skip"))
    with pytest.warns(DataWarning, match="skipping shard shards-000001.tar"):
        kept = _keys(ds)
    assert {k[0] for k in kept} == {"synth_000000", "synth_000001", "synth_000004", "synth_000005"}
    assert list(ds.report().failed_shards) == ["shards-000001.tar"]


def test_damaged_header_of_the_same_size_is_caught(data: Path, tmp_path: Path) -> None:
    shards = tmp_path / "sh2"
    shutil.copytree(data / "sh2", shards)
    broken = shards / "shards-000002.tar"
    with tarfile.open(broken) as tar:
        offset = tar.getmember("000000005.json").offset  # header of the shard's second sample
    raw = bytearray(broken.read_bytes())
    raw[offset : offset + 512] = b"\xff" * 512
    broken.write_bytes(bytes(raw))
    with pytest.raises(CorruptShardError, match=r"shards-000002\.tar: holds 1 clips but shards\.json lists 2"):
        list(ShardWindowDataset(shards, CFG))


def test_corrupt_video_inside_a_shard_is_skipped_like_the_directory_reader(data: Path, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(data / "ds", ds)
    (ds / "videos" / "synth_000002.mp4").write_bytes(b"not a video" * 50)
    write_shards(ShardWriteConfig(dataset=str(ds), out=str(tmp_path / "sh"), shard_max_clips=4))
    reader = ShardWindowDataset(tmp_path / "sh", CFG)
    with pytest.warns(DataWarning, match="synth_000002"):
        samples = list(reader)
    assert len(samples) == 25 and "synth_000002" not in {s.clip_id for s in samples}
    assert sum(s.fallbacks for s in samples) == 1 and list(reader.report().failed) == ["synth_000002"]


def test_writer_skips_bad_clips_and_limits_bytes(data: Path, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(data / "ds", ds)
    (ds / "videos" / "synth_000001.mp4").unlink()
    (ds / "annotations" / "synth_000003.npz").write_bytes(b"garbage")
    limit = 24_000  # about two clips
    result = write_shards(ShardWriteConfig(dataset=str(ds), out=str(tmp_path / "sh"), shard_max_bytes=limit))
    assert sorted(result.skipped) == ["synth_000001", "synth_000003"] and result.num_clips == 4
    assert "missing" in result.skipped["synth_000001"] and "npz" in result.skipped["synth_000003"]
    assert len(result.shards) >= 2 and all(s.bytes <= limit + 10240 for s in result.shards if s.num_clips > 1)
    assert json.loads((tmp_path / "sh" / SHARD_MANIFEST).read_text())["skipped"] == result.skipped
    assert not [p for p in (tmp_path / "sh").iterdir() if p.name.startswith(".")]  # no temporary files left
    with pytest.raises(ValueError, match="already holds shards; pass overwrite=true"):
        write_shards(ShardWriteConfig(dataset=str(ds), out=str(tmp_path / "sh")))
    again = write_shards(ShardWriteConfig(dataset=str(ds), out=str(tmp_path / "sh"), overwrite=True))
    assert [s.name for s in again.shards] == ["shards-000000.tar"]
    assert sorted(p.name for p in (tmp_path / "sh").iterdir()) == ["shards-000000.tar", SHARD_MANIFEST]


def test_bad_arguments_are_named(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds = str(data / "ds")
    with pytest.raises(ValueError, match="shard_max_clips=0"):
        ShardWriteConfig(dataset=ds, out="x", shard_max_clips=0)
    with pytest.raises(ValueError, match="shard_max_bytes=100"):
        ShardWriteConfig(dataset=ds, out="x", shard_max_bytes=100)
    with pytest.raises(ValueError, match="splits has 'training'"):
        ShardWriteConfig(dataset=ds, out="x", splits=["training"])
    with pytest.raises(ValueError, match="must differ from dataset"):
        write_shards(ShardWriteConfig(dataset=ds, out=ds))
    with pytest.raises(ValueError, match="on_corrupt_shard='ignore'"):
        ShardReadConfig(on_corrupt_shard="ignore")
    with pytest.raises(ValueError, match="window_buffer=0"):
        ShardReadConfig(window_buffer=0)
    with pytest.raises(ValueError, match="rank=2 and world_size=2"):
        ShardWindowDataset(data / "sh2", CFG, node=Node(2, 2))
    with pytest.raises(ValueError, match="3 shards hold split=None but world_size=4.*resampled=True"):
        ShardWindowDataset(data / "sh2", CFG, node=Node(0, 4))
    with pytest.raises(ValueError, match="no windows of 40 frames"):
        ShardWindowDataset(data / "sh2", WindowConfig(num_frames=40, split=None))
    with pytest.raises(FileNotFoundError, match="shard manifest not found"):
        ShardWindowDataset(tmp_path, CFG)
    (tmp_path / SHARD_MANIFEST).write_text('{"format": "drivesim.shards", "version": 7}')
    with pytest.raises(ValueError, match=r"shards\.json: field 'version'=7"):
        read_shard_manifest(tmp_path)
    assert main(["data", "shards", f"dataset={ds}", f"out={tmp_path / 'o'}", "shard_max_clips=0"]) == 1
    assert "shard_max_clips=0" in capsys.readouterr().err


def test_missing_webdataset_names_the_extra(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "webdataset", None)
    with pytest.raises(ImportError, match=r"drivesim\[shards\]"):
        ShardWindowDataset(data / "sh2", CFG)


def test_no_shard_for_a_worker_warns(data: Path) -> None:
    ds = ShardWindowDataset(data / "sh2", CFG, node=Node(1, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(ds._shard_stream(1, 2)) == []
    assert any("rank 1 worker 1 got no shard" in str(w.message) for w in caught)
