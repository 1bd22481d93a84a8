import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drivesim.data.annotations import ClipAnnotations, ClipBoxes, FrameBoxes
from drivesim.data.dataset import ClipLabels, write_clip
from drivesim.data.manifest import write_manifest
from drivesim.eval.probe_io import save_probes
from drivesim.eval.report import to_plain
from drivesim.eval.results import EvalOptions
from drivesim.eval.sharded import evaluate_shard, merge_shards, unshard
from drivesim.eval.suite import evaluate
from drivesim.eval.video_sets import EvalClip, VideoSet
from drivesim.training.distributed import DistInfo, shard
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

SCRIPT = Path(__file__).with_name("_eval_sharded_script.py")
OPTIONS = EvalOptions(frame_step=1, clip_hop=2, window_seconds=0.6, min_box_height=0.0, paired=True)


pytestmark = pytest.mark.usefixtures("one_thread")


def _info(rank: int, world: int) -> DistInfo:
    return DistInfo(rank=rank, local_rank=rank, world_size=world, device=torch.device("cpu"))


def _labelled(i: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.array([[0.1 + 0.05 * i, 0.2, 0.5, 0.7]], np.float32)
    actions = np.stack([np.linspace(-1, 1, t), np.full(t, 0.1 * i)], 1).astype(np.float32)  # (t, 2)
    return boxes, actions


def _set(frames: np.ndarray, ids: list[str]) -> VideoSet:
    clips = []
    for i, (f, cid) in enumerate(zip(frames, ids)):
        boxes, actions = _labelled(i, f.shape[0])
        clips.append(EvalClip(cid, f, 10.0, TIME_OF_DAY[i % 2], CROWDEDNESS[i % 3], [boxes] * f.shape[0], actions))
    return VideoSet(tuple(clips), ids[0])


def test_unshard_inverts_shard():
    items = list(range(7))
    for world in (1, 2, 3, 9):
        parts = [shard(items, _info(r, world)) for r in range(world)]
        assert unshard(parts, len(items)) == items
    with pytest.raises(ValueError, match="rank 1 returned 2 results; its share of 7 items is 3"):
        unshard([[0, 2, 4, 6], [1, 3]], 7)


def test_merged_shards_give_the_single_process_report(tiny_probes, make_clips):
    frames = make_clips(9, 12)
    real = _set(frames[:4], ["c0", "c1", "c2", "c3"])
    generated = _set(frames[4:], ["c0", "c1", "c2", "g3", "g4"])  # 3 paired, 2 without a real twin
    single = to_plain(evaluate(real, generated, tiny_probes, OPTIONS))
    parts = [evaluate_shard(real, generated, tiny_probes, OPTIONS, _info(r, 3)) for r in range(3)]
    assert [len(p.real) for p in parts] == [2, 1, 1] and [len(p.generated) for p in parts] == [2, 2, 1]
    merged = merge_shards(parts, real, generated, OPTIONS)
    # the same per-clip numbers pooled in the same order: bit-identical
    assert to_plain(evaluate(merged.real, merged.generated, tiny_probes, OPTIONS)) == single
    assert single["temporal"]["num_paired_clips"] == 3 and len(single["drift"]) == 2
    with pytest.raises(ValueError, match="rank order"):
        merge_shards(parts[::-1], real, generated, OPTIONS)


def _dataset(root: Path, frames: np.ndarray, ids: list[str]) -> None:
    records = []
    for i, (f, cid) in enumerate(zip(frames, ids)):
        t = f.shape[0]
        boxes, actions = _labelled(i, t)
        ann = ClipAnnotations(
            num_frames=t,
            boxes=ClipBoxes.from_frames([FrameBoxes(boxes, np.zeros(1, np.int64), np.zeros(1, np.int64))] * t),
            actions=actions,
        )
        labels = ClipLabels(cid, 10.0, TIME_OF_DAY[i % 2], CROWDEDNESS[i % 3], "test", "generated")
        records.append(write_clip(root, labels, iter(f), ann))
    write_manifest(root / "manifest.jsonl", records)


def _run(results: Path, overrides: list[str], ranks: int) -> None:
    results.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable]
    if ranks > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
    done = subprocess.run(
        [*launch, str(SCRIPT), str(results), *overrides], env=env, timeout=240, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _assert_close(a, b, path: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), path
    else:
        assert a == b, path


def test_two_gloo_ranks_write_the_single_process_report(tmp_path, tiny_probes, make_clips):
    frames = make_clips(9, 12)
    real, gen = tmp_path / "real", tmp_path / "gen"
    _dataset(real, frames[:4], ["c0", "c1", "c2", "c3"])
    _dataset(gen, frames[4:], ["c0", "c1", "c2", "g3", "g4"])
    save_probes(tmp_path / "probes", tiny_probes)
    common = [f"real={real}", f"generated={gen}", f"probes={tmp_path / 'probes'}", "options.frame_step=1"]
    common += ["options.clip_hop=2", "options.window_seconds=0.6", "options.min_box_height=0.0", "options.paired=true"]
    _run(tmp_path / "single", [*common, f"out={tmp_path / 'out1'}"], ranks=1)
    _run(tmp_path / "multi", [*common, f"out={tmp_path / 'out2'}"], ranks=2)

    returned = [json.loads((tmp_path / "multi" / f"rank{r}.json").read_text())["returned_report"] for r in (0, 1)]
    assert returned == [True, False]  # only rank 0 gets (and writes) the report
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["drift.png", "report.json", "storyboard.png"]
    single = json.loads((tmp_path / "out1" / "report.json").read_text())
    multi = json.loads((tmp_path / "out2" / "report.json").read_text())
    _assert_close(multi, single)
    assert single["generated"]["num_clips"] == 5 and single["temporal"]["num_paired_clips"] == 3
    assert single["action"] is not None and single["box"] is not None and single["condition"] is not None
