from pathlib import Path

import numpy as np
import pytest

from drivesim.data.video import CorruptVideoError, VideoReader, VideoWriter, write_video


def test_round_trip_within_codec_tolerance(tmp_path: Path, frames_fn) -> None:
    frames = frames_fn(24, 64, 128)
    path = tmp_path / "a.mp4"
    with VideoWriter(path, fps=30, height=64, width=128) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.num_frames == 24
    with VideoReader(path) as reader:
        assert (reader.info.fps, reader.info.height, reader.info.width, reader.info.num_frames) == (
            30.0,
            64,
            128,
            24,
        )
        decoded = np.stack(list(reader.frames()))
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    mae = np.abs(decoded.astype(np.float64) - frames).mean()
    assert mae < 3.0, mae  # < 3/255 in [0, 1] units
    # frames stay in order: the blue level rises by 7 per frame
    assert np.all(np.diff(decoded[..., 2].mean(axis=(1, 2))) > 4)


def test_windows_match_sequential_decode(tmp_path: Path, frames_fn) -> None:
    path = tmp_path / "b.mp4"
    write_video(path, frames_fn(70, 32, 64), fps=30000 / 1001)
    with VideoReader(path) as reader:
        assert reader.info.fps == pytest.approx(29.97, abs=1e-2)
        everything = np.stack(list(reader.frames()))
        for start, t, stride in [(0, 4, 1), (13, 5, 3), (31, 2, 7), (62, 8, 1), (69, 1, 1)]:
            window = reader.read_window(start, t, stride)  # seeks backward and forward
            np.testing.assert_array_equal(window, everything[start : start + t * stride : stride])
        np.testing.assert_array_equal(reader.read_frames([5, 6, 40]), everything[[5, 6, 40]])


def test_window_past_the_end_raises(tmp_path: Path, frames_fn) -> None:
    path = tmp_path / "c.mp4"
    write_video(path, frames_fn(10, 32, 64), fps=10)
    with VideoReader(path) as reader, pytest.raises(CorruptVideoError, match="ended before frame 10"):
        reader.read_window(6, 3, 2)


def test_writer_rejects_bad_input_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", fps=30, height=33, width=64)
    path = tmp_path / "d.mp4"
    writer = VideoWriter(path, fps=30, height=32, width=64)
    with pytest.raises(ValueError, match=r"uint8 of shape \(32, 64, 3\)"):
        writer.write(np.zeros((32, 64), np.uint8))
    writer.abort()
    with pytest.raises(RuntimeError), VideoWriter(path, fps=30, height=32, width=64) as w2:
        w2.write(np.zeros((32, 64, 3), np.uint8))
        raise RuntimeError("interrupted")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary files left behind


def test_corrupt_files_raise_corrupt_video_error(tmp_path: Path, frames_fn) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptVideoError, match="garbage.mp4"):
        VideoReader(garbage)
    good = tmp_path / "good.mp4"
    write_video(good, frames_fn(40, 32, 64), fps=10)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptVideoError, match="truncated.mp4"):
        with VideoReader(truncated) as reader:
            reader.read_window(30, 5, 2)
    with pytest.raises(FileNotFoundError):
        VideoReader(tmp_path / "absent.mp4")
