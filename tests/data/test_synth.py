"""End-to-end synth from the procedural world (skipped until drivesim.world.World exists)."""

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from drivesim.data.dataset import open_dataset
from drivesim.data.video import VideoReader

world = pytest.importorskip("drivesim.world")
if not hasattr(world, "World"):
    pytest.skip("drivesim.world.World is not written yet", allow_module_level=True)

from drivesim.data.synth import SynthConfig, clip_conditions, synthesize  # noqa: E402


def _config(out: Path, **changes: object) -> SynthConfig:
    base = SynthConfig(out=str(out), num_clips=3, clip_seconds=0.5, fps=10, height=32, width=64, seed=5)
    return replace(base, **changes)


def test_synth_writes_a_valid_balanced_dataset(tmp_path: Path) -> None:
    result = synthesize(_config(tmp_path / "ds"))
    assert result.written == 3 and result.resumed == 0
    folder = open_dataset(tmp_path / "ds")
    assert [r.id for r in folder.clips] == ["synth_000000", "synth_000001", "synth_000002"]
    assert [r.seed for r in folder.clips] == [5, 6, 7]
    assert [(r.time_of_day, r.crowdedness) for r in folder.clips] == [clip_conditions(i) for i in range(3)]
    for record in folder.clips:
        assert (record.num_frames, record.height, record.width, record.fps) == (5, 32, 64, 10.0)
        assert record.source == "procedural_world" and record.split in ("train", "val", "test")
        ann = folder.load_annotations(record)
        assert ann.boxes is not None and ann.actions is not None and ann.ego is not None and ann.events is not None
        np.testing.assert_array_equal(ann.actions[0], [0, 0])  # the reset frame has no action
        assert (ann.ego[:, 0] >= 0).all()
        with VideoReader(folder.video_path(record)) as reader:
            frames = np.stack(list(reader.frames()))
        assert frames.shape == (5, 32, 64, 3) and frames.std() > 5


def test_labels_cycle_over_all_six_combinations() -> None:
    combos = Counter(clip_conditions(i) for i in range(12))
    assert len(combos) == 6 and set(combos.values()) == {2}


def test_resume_and_settings_check(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    synthesize(_config(out, num_clips=2))
    first = (out / "videos" / "synth_000000.mp4").read_bytes()
    result = synthesize(_config(out, num_clips=3))
    assert (result.written, result.resumed, len(result.records)) == (1, 2, 3)
    assert (out / "videos" / "synth_000000.mp4").read_bytes() == first  # finished clips are not redone
    with pytest.raises(ValueError, match="other settings"):
        synthesize(_config(out, fps=12))


def test_parallel_workers_give_the_same_data(tmp_path: Path) -> None:
    synthesize(_config(tmp_path / "one", num_clips=2))
    synthesize(_config(tmp_path / "two", num_clips=2, workers=2))
    a, b = open_dataset(tmp_path / "one"), open_dataset(tmp_path / "two")
    assert [r.id for r in a.clips] == [r.id for r in b.clips]
    for ra, rb in zip(a.clips, b.clips):
        aa, ab = a.load_annotations(ra), b.load_annotations(rb)
        np.testing.assert_array_equal(aa.boxes.xyxy, ab.boxes.xyxy)
        np.testing.assert_array_equal(aa.ego, ab.ego)


def test_interrupted_run_leaves_a_valid_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools

    import drivesim.data.synth as synth

    real = synth.rollout

    def interrupted(config: SynthConfig, index: int):
        if index == 2:  # Ctrl-C in the middle of the third clip
            yield from itertools.islice(real(config, index), 2)
            raise KeyboardInterrupt
        yield from real(config, index)

    out = tmp_path / "ds"
    monkeypatch.setattr(synth, "rollout", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthesize(_config(out, num_clips=4))
    assert [r.id for r in open_dataset(out).clips] == ["synth_000000", "synth_000001"]
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["synth_000000.mp4", "synth_000001.mp4"]
    monkeypatch.undo()
    result = synthesize(_config(out, num_clips=4))  # the same command resumes
    assert (result.written, result.resumed, len(open_dataset(out).clips)) == (2, 2, 4)


def test_explore_is_a_resume_setting_and_changes_the_actions(tmp_path: Path) -> None:
    synthesize(_config(tmp_path / "calm", num_clips=1, clip_seconds=3.0))
    synthesize(_config(tmp_path / "wild", num_clips=1, clip_seconds=3.0, explore=1.0))
    calm, wild = open_dataset(tmp_path / "calm"), open_dataset(tmp_path / "wild")
    a = calm.load_annotations(calm.clips[0]).actions
    b = wild.load_annotations(wild.clips[0]).actions
    assert a is not None and b is not None and not np.allclose(a, b)
    with pytest.raises(ValueError, match="explore"):
        synthesize(_config(tmp_path / "wild", num_clips=2, clip_seconds=3.0))
    with pytest.raises(ValueError, match=r"explore=-0.1 .* in \[0, 1\]"):
        _config(tmp_path / "x", explore=-0.1)
