"""The road's shape: a curvature profile along the arc length s, generated lazily.

The road is flat. Its curvature k(s) (1/m, positive = bends right) is piecewise constant
over segments of 150-450 m, blended smoothly (smoothstep over 100 m) from one segment to
the next. The renderer needs the lateral displacement of the road centre at distance d
ahead, relative to the tangent at the ego position: C(d) = integral_0^d integral_0^u k du' du.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

BLEND = 100.0
SEGMENT_MIN, SEGMENT_MAX = 150.0, 450.0
MAX_CURVATURE = 0.005
PROFILE_STEP = 2.0


@dataclass(frozen=True)
class RoadProfile:
    """Road centre ahead of the ego car: offsets[i] is C(distances[i]) in metres."""

    distances: np.ndarray
    offsets: np.ndarray

    def at(self, d: np.ndarray) -> np.ndarray:
        """C(d) for any distances (linear interpolation; d past the end extrapolates flat)."""
        return np.interp(d, self.distances, self.offsets)


class Road:
    """Curvature segments, extended forward as the ego car drives (uses the world's rng)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._starts = [-1.0e6, float(rng.uniform(40.0, 200.0))]
        self._curvatures = [0.0, self._sample_curvature()]
        self._end = self._starts[-1] + float(rng.uniform(SEGMENT_MIN, SEGMENT_MAX))
        self._arrays = (np.array(self._starts), np.array(self._curvatures))

    def _sample_curvature(self) -> float:
        if self._rng.random() < 0.3:
            return 0.0
        return float(self._rng.choice([-1.0, 1.0]) * self._rng.uniform(0.0012, MAX_CURVATURE))

    def extend(self, s_max: float) -> None:
        """Make sure segments cover the road up to arc length s_max."""
        grown = False
        while self._end < s_max:
            self._starts.append(self._end)
            self._curvatures.append(self._sample_curvature())
            self._end += float(self._rng.uniform(SEGMENT_MIN, SEGMENT_MAX))
            grown = True
        if grown:
            self._arrays = (np.array(self._starts), np.array(self._curvatures))

    def curvature(self, s: np.ndarray | float) -> np.ndarray:
        """k(s) in 1/m for arc lengths s (already covered by `extend`)."""
        starts, curv = self._arrays
        s = np.asarray(s, dtype=np.float64)
        idx = np.maximum(np.searchsorted(starts, s, side="right") - 1, 0)
        t = np.minimum(np.maximum((s - starts[idx]) * (1.0 / BLEND), 0.0), 1.0)
        t = t * t * (3.0 - 2.0 * t)
        prev = curv[np.maximum(idx - 1, 0)]
        return prev + (curv[idx] - prev) * t

    def curvature_at(self, s: float) -> float:
        """k(s) for one arc length (scalar fast path of `curvature`)."""
        starts = self._starts
        i = min(max(bisect.bisect_right(starts, s) - 1, 0), len(starts) - 1)
        t = min(max((s - starts[i]) / BLEND, 0.0), 1.0)
        t = t * t * (3.0 - 2.0 * t)
        prev = self._curvatures[max(i - 1, 0)]
        return float(prev + (self._curvatures[i] - prev) * t)

    def profile(self, s0: float, length: float) -> RoadProfile:
        """Lateral offsets of the road centre from the ego tangent over [0, length] ahead."""
        d = np.arange(0.0, length + PROFILE_STEP, PROFILE_STEP)
        k = self.curvature(s0 + d)
        slope = np.concatenate([[0.0], np.cumsum(0.5 * (k[1:] + k[:-1])) * PROFILE_STEP])
        offsets = np.concatenate([[0.0], np.cumsum(0.5 * (slope[1:] + slope[:-1])) * PROFILE_STEP])
        return RoadProfile(distances=d, offsets=offsets)
