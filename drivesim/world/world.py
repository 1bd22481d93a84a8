"""The procedural ground-truth driving world.

    world = World(WorldConfig(height=64, width=128, fps=30))
    frame = world.reset(seed=0, time_of_day="day", crowdedness="low")
    frame = world.step(np.array([steer, accel], np.float32))   # rendered at the config size
    big = world.render(height=256, width=512)                   # same state, another size

All randomness comes from one numpy Generator per world, seeded by `reset`, so a seed and
an action sequence give identical frames and boxes. Rendering never changes the state.

Traffic density is held constant over an episode: vehicles that fall more than 25 m
behind or get 135 m ahead are removed and new ones appear 90-130 m ahead (when the ego car
is faster than the newcomer) or just behind it in another lane (when it is slower, so the
newcomer overtakes), keeping up to `WorldConfig.traffic_<crowdedness>` vehicles around the
ego car (in dense traffic the count is limited by the room on the road).

After a collision the world keeps running: the vehicle that was hit is removed and the
ego car loses half its speed; `Events.collision` is True for that step. Off-road (ego
centre beyond the road edge) slows the car down; the ego can drift at most 5 m past the edge.
"""

from __future__ import annotations

import numpy as np

from drivesim.world.config import WorldConfig
from drivesim.world.ego import WIDTH as EGO_WIDTH
from drivesim.world.ego import EgoCar
from drivesim.world.numeric import real_array
from drivesim.world.placement import place_from_boxes, validate_boxes
from drivesim.world.render import Renderer
from drivesim.world.road import Road, RoadProfile
from drivesim.world.scene import Scene
from drivesim.world.scenery import SceneryGenerator
from drivesim.world.traffic import DIMS, TRUCK, Traffic, desired_speed, lane_is_free, sample_vehicle, step_traffic
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY, EgoState, Events, WorldFrame, check_label
from drivesim.world.view import View

REMOVE_AHEAD, REMOVE_BEHIND = 135.0, 25.0
HEADWAY = {"low": 1.2, "medium": 1.0, "high": 0.75}  # dense traffic drives closer (s)


def check_action(action: np.ndarray) -> np.ndarray:
    """(2,) float32 [steer, accel] clipped to [-1, 1]; ValueError for a wrong shape, NaN/inf or
    a non-real value (strings, bools, complex, objects, ints beyond float range)."""
    arr = real_array(action, "action", "numeric [steer, accel]")
    if arr.shape != (2,):
        raise ValueError(f"action has shape {arr.shape}; expected (2,) = [steer, accel] in [-1, 1]")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"action={arr.tolist()} contains NaN or inf; expected finite [steer, accel] in [-1, 1]")
    return np.minimum(np.maximum(arr, -1.0), 1.0).astype(np.float32)


class World:
    """Ground-truth world: state in metres, rendered on demand at any size."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config if config is not None else WorldConfig()
        self._renderer = Renderer(self.config)
        self._started = False

    # ------------------------------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, time_of_day: str = "day", crowdedness: str = "medium",
              boxes: np.ndarray | None = None) -> WorldFrame:
        """Start a new episode and return its first frame (rendered at the config size).

        boxes: optional (n, 4) normalised x1, y1, x2, y2 boxes at the config size; vehicles are
        placed to approximately match them (see `placement.place_from_boxes`) instead of the
        random initial traffic.
        """
        check_label("time_of_day", time_of_day, TIME_OF_DAY)
        check_label("crowdedness", crowdedness, CROWDEDNESS)
        if boxes is not None:
            boxes = validate_boxes(boxes)
        cfg = self.config
        self.rng = np.random.default_rng(seed)
        self.time_of_day, self.crowdedness = time_of_day, crowdedness
        self.road = Road(self.rng)
        lanes = self._lanes = cfg.lane_centres()
        lane = int(self.rng.integers(0, cfg.num_lanes))
        speed = float(np.clip(cfg.initial_speed + self.rng.uniform(-3.0, 3.0), 0.0, cfg.max_speed))
        self.ego_car = EgoCar(s=0.0, x=float(lanes[lane]), heading=0.0, speed=speed)
        self.road.extend(cfg.draw_distance + 400.0)
        self.traffic = Traffic()
        self._scenery = SceneryGenerator(self.rng, cfg.half_road)
        self._scenery.update(0.0, cfg.scenery_distance + 20.0)
        self._profile: RoadProfile | None = None
        self.frame_index = 0
        self.last_action = np.zeros(2, np.float32)
        self.last_events = Events()
        self._started = True
        if boxes is not None:
            place_from_boxes(self, boxes)
        else:
            self._initial_traffic()
        return self.render()

    def step(self, action: np.ndarray) -> WorldFrame:
        """Advance one world step (1/fps s) with action = [steer, accel] and render at the config size.

        steer < 0 turns left, > 0 right; accel > 0 throttle, < 0 brake. Values outside [-1, 1]
        are clipped; a wrong shape or NaN raises ValueError.
        """
        self.advance(action)
        return self.render()

    def advance(self, action: np.ndarray) -> Events:
        """`step` without rendering (for frame skipping); returns the step's events."""
        self._require_started()
        act = check_action(action)
        cfg, ego = self.config, self.ego_car
        off_road = abs(ego.x) > cfg.half_road
        steer, accel = act.tolist()
        ego.step(steer, accel, self.road.curvature_at(ego.s), cfg.dt, cfg.max_speed, off_road)
        ego.x = min(max(ego.x, -cfg.half_road - 5.0), cfg.half_road + 5.0)
        self.road.extend(ego.s + cfg.draw_distance + 400.0)
        step_traffic(self.traffic, self._lanes, ego.rear, ego.front, ego.x, ego.speed, cfg.dt, self.rng,
                     headway=HEADWAY[self.crowdedness])
        collision = self._resolve_collisions()
        self._manage_population()
        self._scenery.update(ego.s, cfg.scenery_distance + 20.0)
        self._profile = None
        self.frame_index += 1
        self.last_action = act
        self.last_events = Events(collision=collision, off_road=bool(abs(ego.x) > cfg.half_road))
        return self.last_events

    def render(self, height: int | None = None, width: int | None = None, draw_vehicles: bool = True) -> WorldFrame:
        """The current state rendered at (height, width) (default: the config size), with the
        visible vehicles' boxes at that size. `draw_vehicles=False` leaves vehicles out (debugging)."""
        self._require_started()
        h = self.config.height if height is None else height
        w = self.config.width if width is None else width
        image, boxes = self._renderer.render(self._scene(), h, w, draw_vehicles=draw_vehicles)
        return WorldFrame(
            image=image, boxes=boxes, ego=self.ego_state, events=self.last_events, action=self.last_action.copy(),
            time_of_day=self.time_of_day, crowdedness=self.crowdedness, frame_index=self.frame_index,
        )

    # ------------------------------------------------------------------------------------------ queries
    @property
    def ego_state(self) -> EgoState:
        ego = self.ego_car
        return EgoState(speed=float(ego.speed), lateral_offset=float(ego.x / self.config.lane_width),
                        heading=float(ego.heading))

    @property
    def road_curvature(self) -> float:
        """Road curvature (1/m, positive = bends right) at the ego position."""
        return self.road.curvature_at(self.ego_car.s)

    def view(self, height: int | None = None, width: int | None = None) -> View:
        """Camera projection tables for a render size (default: the config size)."""
        return self._renderer.view(self.config.height if height is None else height,
                                   self.config.width if width is None else width)

    def profile(self) -> RoadProfile:
        """Road centre offsets ahead of the ego car (cached per step)."""
        if self._profile is None:
            self._profile = self.road.profile(self.ego_car.s, self.config.draw_distance + 20.0)
        return self._profile

    def _scene(self) -> Scene:
        return Scene(ego=self.ego_car, traffic=self.traffic, scenery=self._scenery.objects, profile=self.profile(),
                     night=self.time_of_day == "night")

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("World.reset() must be called before step/advance/render")

    # ------------------------------------------------------------------------------------------ traffic
    def _resolve_collisions(self) -> bool:
        tr, ego = self.traffic, self.ego_car
        if not len(tr):
            return False
        hit = ((tr.s < ego.front) & (tr.s + tr.length > ego.rear)
               & (np.abs(tr.x - ego.x) < 0.5 * (tr.width + EGO_WIDTH)))
        if not hit.any():
            return False
        tr.keep(~hit)
        ego.speed *= 0.5
        return True

    def _spawn(self, ahead: bool | None, d_range: tuple[float, float] | None = None, tries: int = 4) -> bool:
        """Try to add one random vehicle; ahead=None chooses by relative speed. True if added."""
        cfg, ego, rng = self.config, self.ego_car, self.rng
        cls, lane, colour = sample_vehicle(rng, cfg.truck_fraction, cfg.num_lanes)
        v_des = desired_speed(rng, cls, lane, cfg.num_lanes)
        if ahead is None:
            ahead = ego.speed + 2.0 >= v_des
        length = float(DIMS[cls, 0])
        lo_lane = 1 if (cls == TRUCK and cfg.num_lanes > 1) else 0
        for _ in range(tries):
            if d_range is not None:
                d = float(rng.uniform(*d_range))
            elif ahead:
                d = float(rng.uniform(90.0, 130.0))
            else:
                d = -float(rng.uniform(5.0, 25.0)) - length
            x_lane = float(self._lanes[lane])
            near_ego = abs(x_lane - ego.x) < 3.5  # the ego's lane (or the one it is moving into)
            blocked = near_ego and d < 22.0  # never behind the ego in its lane, nor just ahead
            if not blocked and lane_is_free(self.traffic, None, ego.s + d, length, v_des, x_lane, ego.rear,
                                            ego.front, ego.x, ego.speed, margin=6.0):
                self.traffic.add(ego.s + d, x_lane, v_des, v_des, lane, cls, colour)
                return True
            lane = int(rng.integers(lo_lane, cfg.num_lanes))
        return False

    def _initial_traffic(self) -> None:
        target = self.config.traffic_count(self.crowdedness)
        for _ in range(8 * target):
            if len(self.traffic) >= target:
                break
            self._spawn(ahead=True, d_range=(12.0, 140.0))

    def _manage_population(self) -> None:
        tr, ego = self.traffic, self.ego_car
        if len(tr):
            d = tr.s - ego.s
            out = (d > REMOVE_AHEAD) | (d + tr.length < -REMOVE_BEHIND)
            if out.any():
                tr.keep(~out)
        target = self.config.traffic_count(self.crowdedness)
        if len(tr) < target:
            self._spawn(ahead=None, tries=3)
