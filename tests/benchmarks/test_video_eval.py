"""benchmarks/_video_eval.py: the driven world clips that action adherence commands the engine with."""

import numpy as np

from tests.benchmarks import load_benchmark


def test_driven_clips_record_what_the_world_applied_and_are_reproducible():
    video_eval = load_benchmark("_video_eval")
    clips = video_eval.driven_clips(3_000_000, 2, 1.0, (32, 64), 30, driver_seed=5, warmup_s=0.5)
    assert clips.frames.shape == (2, 31, 32, 64, 3) and clips.frames.dtype == np.uint8
    assert clips.actions.shape == (2, 31, 2) and clips.speed.shape == (2, 31)
    assert np.all(clips.actions[:, 0] == 0)  # nothing led to the start frame
    assert np.all(clips.actions[:, 1:, 0] != 0)  # the driver steers every step
    assert len(np.unique(clips.actions[:, 1:, 1])) <= 2 * 2  # accel held (1 s < one 1.6-s hold, or two)
    assert clips.time_of_day == ["day", "day"] and clips.crowdedness == ["low", "medium"]
    # the world's speed follows the held accel: faster under throttle, slower under brake
    dv = clips.speed[:, -1] - clips.speed[:, 0]
    accel = clips.actions[:, 1:, 1].mean(1)
    assert np.all(np.sign(dv[np.abs(accel) > 0.2]) == np.sign(accel[np.abs(accel) > 0.2]))
    again = video_eval.driven_clips(3_000_000, 2, 1.0, (32, 64), 30, driver_seed=5, warmup_s=0.5)
    assert np.array_equal(clips.frames, again.frames) and np.array_equal(clips.actions, again.actions)
    other = video_eval.driven_clips(3_000_000, 2, 1.0, (32, 64), 30, driver_seed=6, warmup_s=0.5)
    assert not np.array_equal(clips.actions, other.actions)


def test_open_loop_patterns_leave_the_road_where_the_pattern_driver_does_not():
    load_benchmark("_video_eval")
    instrument = load_benchmark("action_instrument")
    rng = np.random.default_rng(0)
    open_loop = instrument.world_clips(
        3_000_000, 3, 4.0, (32, 64), 30, lambda i: instrument.open_loop_actor(rng, 4.0, 30)
    )
    driven = instrument.world_clips(3_000_000, 3, 4.0, (32, 64), 30, lambda i: instrument.pattern_actor(7_000_000 + i))
    assert open_loop[1] > 0.2 and driven[1] == 0.0  # fraction of frames off the road
    assert np.abs(open_loop[0].actions[:, 1:, 0]).max() > 0.7  # the open-loop steer is held strong
