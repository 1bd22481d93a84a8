"""Result types of the evaluation suite (`drivesim.eval.suite.evaluate`) and its options."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivesim.eval.adherence import ActionAdherence, BoxAdherence, ConditionAdherence
from drivesim.eval.temporal import MotionStats


@dataclass
class EvalOptions:
    frame_step: int = 2  # every k-th frame feeds FID-probe, condition and box adherence
    clip_hop: int = 4  # frames between consecutive clip-probe windows
    iou_threshold: float = 0.5
    min_box_height: float = 0.125  # normalised; requested boxes shorter than this are not scored
    window_seconds: float = 30.0  # drift window length
    # True: a generated clip whose id equals a real clip's id reproduces it (same world state and
    # actions), so PSNR / SSIM / paired flicker are computed against it
    paired: bool = False
    batch_size: int = 64
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("frame_step", "clip_hop", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not 0 < self.iou_threshold <= 1:
            raise ValueError(f"iou_threshold={self.iou_threshold} must be in (0, 1]")
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds={self.window_seconds} must be > 0")


@dataclass(frozen=True)
class SetSummary:
    source: str
    num_clips: int
    num_frames: int
    fps: list[float]


@dataclass(frozen=True)
class FrechetScores:
    """Fréchet distances generated vs real; `*_real_halves` is real vs real (two halves of the real
    clips), a reference for what a perfect generator would score. Fréchet estimates are biased
    upwards when samples are few relative to the 128 feature dimensions, and the halves use half
    the samples, so compare distances only at equal sample counts (benchmarks/eval_sanity.py does)."""

    fid_probe: float | None
    fvd_probe: float | None
    fid: float | None = None
    fvd: float | None = None
    fid_probe_real_halves: float | None = None
    fvd_probe_real_halves: float | None = None


@dataclass(frozen=True)
class TemporalScores:
    generated: MotionStats
    real: MotionStats
    flicker: float
    paired_delta_error: float | None
    psnr: float | None
    ssim: float | None
    num_paired_clips: int


@dataclass(frozen=True)
class DriftWindow:
    start_s: float
    end_s: float
    num_frames: int
    fid_probe: float | None
    condition: ConditionAdherence | None
    box: BoxAdherence | None
    action: ActionAdherence | None
    motion: MotionStats | None
    flicker: float | None
    psnr: float | None
    ssim: float | None


@dataclass(frozen=True)
class EvalReport:
    real: SetSummary
    generated: SetSummary
    frechet: FrechetScores
    condition: ConditionAdherence | None
    box: BoxAdherence | None
    action: ActionAdherence | None
    temporal: TemporalScores
    drift: list[DriftWindow]
    notes: list[str] = field(default_factory=list)
