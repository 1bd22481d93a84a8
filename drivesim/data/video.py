"""H.264 MP4 clips, written and read with PyAV, one frame at a time (constant memory).

Frames handed in and out are `h w c` uint8 RGB. Writing goes to a temporary file
that replaces the target only on `close()`, so a clip file is either complete or
absent. Reading never loads the whole file: `frames()` streams, `read_window()` seeks
to the keyframe before the window and decodes only up to its last frame.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from drivesim.data.atomic import temporary_sibling


class CorruptVideoError(ValueError):
    """A video file that cannot be opened or decoded, or ends before an expected frame."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    height: int
    width: int
    num_frames: int  # from the container header; 0 when the container does not say


def _fps_fraction(fps: float) -> Fraction:
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps={fps!r} must be a positive number")
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    """Encode RGB frames into an H.264 MP4 (yuv420p, constant rate factor `crf`).

    Use as a context manager or call `close()`; on an exception inside the `with`
    block nothing is left at `path`. Height and width must be even (yuv420p).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        height: int,
        width: int,
        crf: int = 18,
        preset: str = "medium",
        keyframe_interval: int | None = None,
    ) -> None:
        if height <= 0 or width <= 0 or height % 2 or width % 2:
            raise ValueError(f"video size {height}x{width} must be positive and even (yuv420p)")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf={crf} must be in [0, 51]")
        self.path = Path(path)
        self.height, self.width = height, width
        self.num_frames = 0
        rate = _fps_fraction(fps)
        self._time_base = 1 / rate
        gop = keyframe_interval if keyframe_interval is not None else max(1, round(float(rate)))
        self._tmp = temporary_sibling(self.path, ".mp4")
        self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream(
            "libx264", rate=rate, options={"crf": str(crf), "preset": preset, "g": str(gop)}
        )
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        """Append one `h w c` uint8 RGB frame."""
        if self._closed:
            raise ValueError(f"{self.path}: write() after close()")
        if frame.dtype != np.uint8 or frame.shape != (self.height, self.width, 3):
            raise ValueError(
                f"{self.path}: frame must be uint8 of shape {(self.height, self.width, 3)}, "
                f"got {frame.dtype} {frame.shape}"
            )
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.num_frames
        vf.time_base = self._time_base
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.num_frames += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file to `path`."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.num_frames == 0:
                raise ValueError(f"{self.path}: a video needs at least one frame")
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the partial file; `path` is left untouched."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int = 18) -> None:
    """Write a `t h w c` uint8 array as one MP4 (convenience for small arrays)."""
    if frames.ndim != 4:
        raise ValueError(f"frames must be t h w c uint8, got shape {frames.shape}")
    with VideoWriter(path, fps, frames.shape[1], frames.shape[2], crf=crf) as writer:
        for frame in frames:
            writer.write(frame)


class VideoReader:
    """Decode an MP4/MOV lazily. Raises CorruptVideoError for unreadable files.

    Frame `i` is the frame whose presentation time is i / fps after the stream start.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        try:
            # undecodable metadata (a corrupt header) must not hide a readable picture stream
            self._container = av.open(str(self.path), metadata_errors="replace")
            if not self._container.streams.video:
                raise CorruptVideoError(f"{self.path}: no video stream")
            self._stream = self._container.streams.video[0]
            ctx = self._stream.codec_context
            if ctx is None:
                raise CorruptVideoError(f"{self.path}: no decoder for the video stream (codec unknown or corrupt)")
            self._stream.thread_type = "AUTO"
            rate = self._stream.average_rate or self._stream.guessed_rate
            if not rate or self._stream.time_base is None:
                raise CorruptVideoError(f"{self.path}: the video stream has no frame rate or time base")
            self._rate = Fraction(rate)
            self.info = VideoInfo(
                fps=float(self._rate),
                height=int(ctx.height),
                width=int(ctx.width),
                num_frames=int(self._stream.frames or 0),
            )
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            self.close()
            raise CorruptVideoError(f"{self.path}: cannot open video: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self._start_pts = self._stream.start_time or 0

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _index(self, frame: av.VideoFrame) -> int | None:
        if frame.pts is None or self._stream.time_base is None:
            return None
        return round((frame.pts - self._start_pts) * self._stream.time_base * self._rate)

    def _decode(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) from the current position; indices from timestamps, or counted
        from 0 when the stream has none (only valid without a prior seek)."""
        count = 0
        try:
            for frame in self._container.decode(self._stream):
                index = self._index(frame)
                yield (count if index is None else index), frame
                count += 1
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(f"{self.path}: decoding failed: {exc}") from exc

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        try:
            return frame.to_ndarray(format="rgb24")  # (h, w, 3)
        except (av.error.FFmpegError, ValueError) as exc:
            raise CorruptVideoError(f"{self.path}: a decoded frame cannot be converted to RGB: {exc}") from exc

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, `h w c` uint8 RGB."""
        for _, frame in self._decode():
            yield self._rgb(frame)

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        """The frames at the given increasing indices as `t h w c` uint8 (only they are kept)."""
        given = list(indices)
        if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in given):
            raise ValueError(f"{self.path}: frame indices must be ints, got {given[:8]}")
        wanted = [int(i) for i in given]
        if not wanted:
            raise ValueError("read_frames needs at least one index")
        if wanted[0] < 0 or any(b <= a for a, b in zip(wanted, wanted[1:])):
            raise ValueError(f"frame indices must be increasing and >= 0, got {wanted}")
        out = self._read_after_seek(wanted)
        if out is None:  # the seek landed past the first wanted frame: decode from the start
            self._seek(0)
            out = self._collect(wanted)
        return np.stack(out)  # (t, h, w, c)

    def read_window(self, start: int, num_frames: int, stride: int = 1) -> np.ndarray:
        """Frames start, start + stride, ... (num_frames of them) as `t h w c` uint8."""
        for name, value, low in (("start", start, 0), ("num_frames", num_frames, 1), ("stride", stride, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{self.path}: read_window {name}={value!r} is not allowed; expected an int >= {low}")
        return self.read_frames(range(start, start + num_frames * stride, stride))

    def _seek(self, index: int) -> None:
        try:
            if index == 0:
                self._container.seek(0)
                return
            pts = self._start_pts + int(Fraction(index) / self._rate / self._stream.time_base)
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(f"{self.path}: seek to frame {index} failed: {exc}") from exc

    def _read_after_seek(self, wanted: list[int]) -> list[np.ndarray] | None:
        self._seek(wanted[0])
        return self._collect(wanted, strict_first=True)

    def _collect(self, wanted: list[int], strict_first: bool = False) -> list[np.ndarray] | None:
        """Decode forward and keep the wanted frames. A wanted index that the timestamps skip
        over (a dropped frame) takes the next decoded frame. With `strict_first`, return None
        when the first decoded frame is already past the first wanted one (seek overshoot)."""
        out: list[np.ndarray] = []
        pos = 0
        for index, frame in self._decode():
            if index < wanted[pos]:
                continue
            if strict_first and pos == 0 and index > wanted[0]:
                return None
            array = self._rgb(frame)
            while pos < len(wanted) and wanted[pos] <= index:
                out.append(array)
                pos += 1
            if pos == len(wanted):
                return out
        raise CorruptVideoError(
            f"{self.path}: the video ended before frame {wanted[pos]} "
            f"({len(out)} of {len(wanted)} requested frames decoded)"
        )
