"""Other vehicles: state arrays, car following (IDM), lane changes, spawning.

Every vehicle drives in the ego car's direction. Its position s is its REAR bumper's arc
length; x its lateral centre (m from the road centre). Speeds follow the Intelligent
Driver Model behind the nearest vehicle (or the ego car) overlapping its lane; lane
changes are random (and more likely behind a slower leader) and only start when the
target lane has room, moving sideways over ~3 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drivesim.world.types import VEHICLE_CLASSES

CAR, TRUCK = VEHICLE_CLASSES.index("car"), VEHICLE_CLASSES.index("truck")
# length, width, height (m) per class
DIMS = np.array([[4.5, 1.8, 1.45], [12.0, 2.5, 3.6]], np.float64)
NUM_CAR_COLOURS, NUM_TRUCK_COLOURS = 8, 5

IDM_ACCEL, IDM_DECEL, IDM_HEADWAY, IDM_GAP = 1.6, 2.5, 1.1, 3.0
SAME_LANE = 2.3  # lateral centre distance under which two vehicles share a lane (m)
LATERAL_GAIN, LATERAL_SPEED = 1.2, 1.3
LANE_CHANGE_RATE = 1.0 / 14.0  # spontaneous attempts per second
OVERTAKE_RATE = 1.0 / 2.5  # attempts per second behind a slower leader


@dataclass
class Traffic:
    """Structure of arrays, one entry per vehicle."""

    s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v_des: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lane: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    colour: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    track: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    braking: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    next_track: int = 1

    _FIELDS = ("s", "x", "v", "v_des", "lane", "cls", "colour", "track", "braking")

    def __len__(self) -> int:
        return int(self.s.shape[0])

    @property
    def length(self) -> np.ndarray:
        return DIMS[self.cls, 0]

    @property
    def width(self) -> np.ndarray:
        return DIMS[self.cls, 1]

    @property
    def height(self) -> np.ndarray:
        return DIMS[self.cls, 2]

    def keep(self, mask: np.ndarray) -> None:
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[mask])

    def add(self, s: float, x: float, v: float, v_des: float, lane: int, cls: int, colour: int) -> int:
        """Append one vehicle; returns its new track id."""
        values = {"s": s, "x": x, "v": v, "v_des": v_des, "lane": lane, "cls": cls, "colour": colour,
                  "track": self.next_track, "braking": False}
        for name in self._FIELDS:
            arr = getattr(self, name)
            setattr(self, name, np.append(arr, np.asarray(values[name], dtype=arr.dtype)))
        self.next_track += 1
        return self.next_track - 1


def desired_speed(rng: np.random.Generator, cls: int, lane: int, num_lanes: int) -> float:
    """Cars are faster on the left lanes; trucks keep ~22 m/s."""
    if cls == TRUCK:
        return float(rng.uniform(19.0, 25.0))
    from_right = num_lanes - 1 - lane
    return float(rng.uniform(22.0, 29.0) + 2.5 * from_right)


def sample_vehicle(rng: np.random.Generator, truck_fraction: float, num_lanes: int) -> tuple[int, int, int]:
    """Random (class, lane, colour); trucks avoid the leftmost lane."""
    cls = TRUCK if rng.random() < truck_fraction else CAR
    lo = 1 if (cls == TRUCK and num_lanes > 1) else 0
    lane = int(rng.integers(lo, num_lanes))
    colour = int(rng.integers(0, NUM_TRUCK_COLOURS if cls == TRUCK else NUM_CAR_COLOURS))
    return cls, lane, colour


def lane_is_free(tr: Traffic, i: int | None, s_rear: float, length: float, v: float, x_lane: float,
                 ego_rear: float, ego_front: float, ego_x: float, ego_v: float, margin: float) -> bool:
    """True if a vehicle (index i, or a new one when i is None) fits into the lane at x_lane:
    `margin` metres plus a speed-difference allowance to the vehicles ahead and behind."""
    front = s_rear + length
    in_lane = np.abs(tr.x - x_lane) < SAME_LANE
    if i is not None:
        in_lane[i] = False
    rears = tr.s[in_lane]
    ahead = rears >= s_rear
    speeds = tr.v[in_lane]
    if np.any(rears[ahead] - front - margin - 0.5 * np.maximum(0.0, v - speeds[ahead]) <= 0.0):
        return False
    behind = ~ahead
    fronts = rears[behind] + DIMS[tr.cls[in_lane][behind], 0]
    if np.any(s_rear - fronts - margin - np.maximum(0.0, speeds[behind] - v) <= 0.0):
        return False
    if abs(ego_x - x_lane) >= SAME_LANE:
        return True
    if ego_rear >= s_rear:
        return ego_rear - front - margin - 0.5 * max(0.0, v - ego_v) > 0.0
    return s_rear - ego_front - margin - max(0.0, ego_v - v) > 0.0


def step_traffic(tr: Traffic, lane_centres: np.ndarray, ego_rear: float, ego_front: float, ego_x: float,
                 ego_v: float, dt: float, rng: np.random.Generator, headway: float = IDM_HEADWAY) -> None:
    """Advance all vehicles by dt (IDM longitudinally with time headway `headway` s, lane changes)."""
    n = len(tr)
    if n == 0:
        return
    s, x, v = tr.s, tr.x, tr.v
    length = DIMS[tr.cls, 0]
    x_target = lane_centres[tr.lane]
    # Leaders: every vehicle and the ego car (last column) are candidates; a vehicle leads
    # if its rear is ahead and it overlaps the current or the target lane.
    rear_all = np.concatenate((s, [ego_rear]))  # (n+1,)
    x_all = np.concatenate((x, [ego_x]))[None, :]  # (1, n+1)
    v_all = np.concatenate((v, [ego_v]))
    overlap = (np.abs(x[:, None] - x_all) < SAME_LANE) | (np.abs(x_target[:, None] - x_all) < SAME_LANE)
    gap = rear_all[None, :] - (s + length)[:, None]  # (n, n+1)
    gap[~(overlap & (rear_all[None, :] > s[:, None]))] = np.inf
    lead = gap.argmin(axis=1)
    g = gap[np.arange(n), lead]
    has_leader = g < np.inf
    v_lead = v_all[lead]
    s_star = np.maximum(IDM_GAP + v * headway + v * (v - v_lead) * (0.5 / np.sqrt(IDM_ACCEL * IDM_DECEL)), 0.0)
    interaction = np.where(has_leader, (s_star / np.maximum(g, 0.1)) ** 2, 0.0)
    acc = np.minimum(np.maximum(IDM_ACCEL * (1.0 - (v / tr.v_des) ** 4 - interaction), -9.0), IDM_ACCEL)
    tr.v = np.maximum(v + acc * dt, 0.0)
    tr.s = s + tr.v * dt
    tr.braking = acc < -1.0
    tr.x = x + np.minimum(np.maximum(LATERAL_GAIN * (x_target - x), -LATERAL_SPEED), LATERAL_SPEED) * dt

    # Lane-change attempts (few per second over all vehicles; the loop runs over attempts only).
    settled = np.abs(tr.x - x_target) < 0.3
    slow_leader = has_leader & (g < 45.0) & (v_lead < tr.v_des - 2.0)
    rate = np.where(slow_leader, OVERTAKE_RATE, LANE_CHANGE_RATE)
    attempt = settled & (rng.random(n) < rate * dt)
    for i in np.flatnonzero(attempt):
        lane = int(tr.lane[i])
        if slow_leader[i] and lane > 0:
            direction = -1
        else:
            direction = 1 if rng.random() < 0.5 else -1
        target = lane + direction
        if not 0 <= target < len(lane_centres):
            continue
        if tr.cls[i] == 1 and target == 0 and len(lane_centres) > 1:
            continue
        if lane_is_free(tr, int(i), float(tr.s[i]), float(length[i]), float(tr.v[i]),
                        float(lane_centres[target]), ego_rear, ego_front, ego_x, ego_v, margin=5.0):
            tr.lane[i] = target
