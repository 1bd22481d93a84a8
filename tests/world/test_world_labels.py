from __future__ import annotations

import numpy as np

from tests.world.helpers import rollout


def test_night_frames_are_much_darker_than_day_frames():
    _, day = rollout(seed=2, steps=30, time_of_day="day")
    _, night = rollout(seed=2, steps=30, time_of_day="night")
    day_mean = np.mean([f.image.mean() for f in day])
    night_mean = np.mean([f.image.mean() for f in night])
    assert night_mean < 0.5 * day_mean
    assert all(f.time_of_day == "night" for f in night)


def test_crowdedness_sets_clearly_different_vehicle_counts():
    counts = {}
    for crowd in ("low", "medium", "high"):
        per_frame = []
        for seed in range(3):
            _, frames = rollout(seed=seed, steps=150, crowdedness=crowd)
            per_frame += [len(f.boxes) for f in frames[::5]]
        counts[crowd] = np.mean(per_frame)
    assert counts["low"] < 2.5
    assert counts["low"] + 1.5 < counts["medium"] < counts["high"] - 2.5


def test_traffic_density_is_held_over_an_episode():
    world, frames = rollout(seed=7, steps=600, crowdedness="high")
    late = [len(f.boxes) for f in frames[300:]]
    early = [len(f.boxes) for f in frames[:300]]
    assert abs(np.mean(late) - np.mean(early)) < 3.0
    assert len(world.traffic) >= world.config.traffic_high - 10  # capacity-limited in dense traffic
