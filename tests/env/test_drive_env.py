import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from drivesim.env.drive_env import DriveWorldEnv
from drivesim.env.vector_env import DriveWorldVectorEnv
from tests.env.scripted_engine import ScriptedEngine


def _env(**kw):
    return DriveWorldEnv(engine=ScriptedEngine(), horizon_steps=kw.pop("horizon_steps", 20), **kw)


def test_check_env_continuous_and_discrete():
    check_env(_env(), skip_render_check=False)
    check_env(_env(action_type="discrete"), skip_render_check=False)


def test_spaces_and_info():
    env = _env()
    assert env.observation_space == gym.spaces.Box(0, 255, (16, 32, 3), np.uint8)
    assert env.action_space == gym.spaces.Box(-1, 1, (2,), np.float32)
    obs, info = env.reset(seed=3, options={"time_of_day": "night", "crowdedness": "high"})
    assert obs.dtype == np.uint8 and obs.shape == (16, 32, 3)
    assert info["time_of_day"] == "night" and info["crowdedness"] == "high"
    obs, reward, term, trunc, info = env.step(np.array([0.1, 0.2], np.float32))
    assert info["frames"].shape == (4, 16, 32, 3) and info["frames"].dtype == np.uint8
    assert np.array_equal(info["frames"][-1], obs)
    assert set(info["rewards"]) == {"collision", "high_speed", "on_road"}
    assert 0.0 <= reward <= 1.0
    assert np.array_equal(env.render(), obs)


def test_same_seed_same_observations_and_different_seed_differs():
    def run(seed):
        env = _env()
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for a in np.linspace(-0.5, 0.5, 5):
            out.append(env.step(np.array([a, 0.1], np.float32))[0])
        return np.stack(out)

    assert np.array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_terminates_on_predicted_collision_and_truncates_at_horizon():
    env = _env(horizon_steps=3)
    env.reset(seed=0)
    _, _, term, _, info = env.step(np.array([0.0, -1.0], np.float32))
    assert term and info["rewards"]["collision"] < 0
    env.reset(seed=0)
    truncs = [env.step(np.zeros(2, np.float32))[3] for _ in range(3)]
    assert truncs == [False, False, True]


@pytest.mark.parametrize(
    "action, match",
    [
        (np.zeros(3, np.float32), "shape"),
        (np.array([np.nan, 0.0], np.float32), "finite"),
        (np.array([np.inf, 0.0], np.float32), "finite"),
        ("left", "numeric"),
    ],
)
def test_bad_actions_raise_and_env_stays_usable(action, match):
    env = _env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)
    obs, *_ = env.step(np.zeros(2, np.float32))
    assert obs.shape == (16, 32, 3)


def test_out_of_range_actions_are_clipped():
    a, b = _env(), _env()
    a.reset(seed=1)
    b.reset(seed=1)
    oa = a.step(np.array([5.0, 0.5], np.float32))[0]
    ob = b.step(np.array([1.0, 0.5], np.float32))[0]
    assert np.array_equal(oa, ob)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"weather": "rain"}, "unknown reset option"),
        ({"time_of_day": "dusk"}, "time_of_day"),
        ({"crowdedness": 3}, "crowdedness"),
        ({"boxes": [[0.5, 0.5, 0.4, 0.6]]}, "x1 < x2"),
        ({"boxes": [[0.1, 0.1, 0.2, float("nan")]]}, "finite"),
        ({"boxes": [[-0.1, 0.1, 0.2, 0.3]]}, "normalised"),
        ({"boxes": [[0.1, 0.2, 0.3]]}, "shape"),
        ({"boxes": [[0.1, 0.1, 0.2, 0.2]] * 1000}, "at most"),
        ({"initial_frames": np.zeros((8, 8, 3), np.uint8)}, "initial_frames"),
        ({"initial_frames": np.zeros((16, 32, 3), np.float32)}, "uint8"),
    ],
)
def test_bad_reset_options(options, match):
    env = _env()
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options=options)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16, 32, 3)


def test_fork_and_restore_reproduce_the_same_future():
    env = _env()
    env.reset(seed=4)
    env.step(np.array([0.2, 0.1], np.float32))
    saved = env.get_state()
    future = [env.step(np.array([0.3, 0.0], np.float32))[0] for _ in range(3)]
    env.set_state(saved)
    again = [env.step(np.array([0.3, 0.0], np.float32))[0] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(future, again))


def test_state_save_load_roundtrip(tmp_path):
    env = _env()
    env.reset(seed=2)
    state = env.get_state()
    state.save(tmp_path / "s.safetensors")
    from drivesim.rollout.types import RolloutState

    loaded = RolloutState.load(tmp_path / "s.safetensors")
    env.set_state(loaded)
    a = env.step(np.zeros(2, np.float32))[0]
    env.set_state(state)
    assert np.array_equal(a, env.step(np.zeros(2, np.float32))[0])


def test_a_state_saved_before_context_speed_loads_with_the_speed_held_over_the_context(tmp_path):
    from safetensors.torch import load_file, save_file

    from drivesim.rollout.types import RolloutState

    env = _env()
    env.reset(seed=2)
    env.get_state().save(tmp_path / "s.safetensors")
    old = {k: v for k, v in load_file(str(tmp_path / "s.safetensors")).items() if k != "context_speed"}
    save_file(old, str(tmp_path / "old.safetensors"))
    loaded = RolloutState.load(tmp_path / "old.safetensors")
    assert loaded.context_speed.shape == (1, 2)
    assert loaded.context_speed.tolist() == [[float(old["speed"][0])] * 2]
    del old["rng"]
    save_file(old, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="not a RolloutState"):
        RolloutState.load(tmp_path / "bad.safetensors")


def test_vector_env_equals_sub_envs_and_uses_one_batched_call():
    n = 3
    engine = ScriptedEngine()
    venv = DriveWorldVectorEnv(num_envs=n, engine=engine, horizon_steps=50)
    obs, _ = venv.reset(seed=10)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.9, 0.9, size=(6, n, 2)).astype(np.float32)
    vec_obs = [obs]
    for a in actions:
        vec_obs.append(venv.step(a)[0])
    assert engine.calls[1:] == [("step", n)] * 6  # one batched call per step
    for i in range(n):
        env = _env(horizon_steps=50)
        single = [env.reset(seed=10 + i)[0]]
        for a in actions:
            single.append(env.step(a[i])[0])
        for t in range(len(single)):
            assert np.array_equal(vec_obs[t][i], single[t]), (i, t)


def test_vector_env_autoreset_next_step():
    venv = DriveWorldVectorEnv(num_envs=2, engine=ScriptedEngine(), horizon_steps=50)
    venv.reset(seed=0)
    crash = np.array([[0.0, -1.0], [0.0, 0.0]], np.float32)
    _, _, term, trunc, _ = venv.step(crash)
    assert term.tolist() == [True, False]
    obs, reward, term, trunc, info = venv.step(np.zeros((2, 2), np.float32))
    assert reward[0] == 0.0 and not term[0] and info["step"][0] == 0  # env 0 was reset
    assert info["step"][1] == 2
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, 2), np.float32))


def test_discrete_meta_actions():
    env = _env(action_type="discrete")
    env.reset(seed=0)
    obs, *_ = env.step(3)
    assert obs.shape == (16, 32, 3)
    with pytest.raises(ValueError, match="out of range"):
        env.step(7)


def test_stable_baselines3_image_conventions_and_a_random_agent_episode():
    """What SB3's `is_image_space` / `check_for_correct_spaces` and CleanRL's Atari-style loops need:
    channels-last uint8 in [0, 255] with 3 channels, a finite symmetric [-1, 1] action box, and
    20 random-agent steps that keep every observation inside the declared space."""
    env = _env(horizon_steps=20)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
    assert space.shape[-1] == 3 and np.all(space.low == 0) and np.all(space.high == 255)
    act = env.action_space
    assert np.all(act.low == -1) and np.all(act.high == 1) and np.all(np.isfinite(act.low))
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert space.contains(obs) and np.isfinite(reward)
        steps, done = steps + 1, terminated or truncated
    assert steps <= 20 and (terminated or steps == 20)
