"""Hostile input at the env surface (issue 10): actions and reset options of every wrong kind.

Property-based (hypothesis, derandomized, no example database, so CI runs the same cases
every time). Each generated case is tagged: either it is valid and must work (clipped where
documented), or it must raise a ValueError whose message names the field and what is allowed.
Targets: `drivesim/ProceduralWorld-v0` (cheap, many cases) and `drivesim/DriveWorld-v0` on a
tiny random model (each accepted case runs the model, so few cases), plus the vector env.

The procedural world validates like drivesim/env: non-real actions/boxes, non-mapping options
and thousands of boxes are refused (the fixed examples at the end, plus the property tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import drivesim  # noqa: F401  (registers the env ids)
from drivesim.env.meta_actions import META_ACTIONS
from drivesim.env.options import MAX_BOXES, OPTION_KEYS
from drivesim.env.vector_env import DriveWorldVectorEnv
from drivesim.rollout.random_model import RandomModelSpec, build_random_model

HOSTILE = settings(
    deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow], print_blob=False
)
TIME_OF_DAY = ("day", "night")
CROWDEDNESS = ("low", "medium", "high")
FAST = {"keyframe_steps": 1, "first_frame_steps": 1, "interpolation_steps": 1}
H, W = 32, 64  # both envs render at this size here
EXPLAINS = re.compile(r"allowed|expected|must|at most|needs|is not a|only supported")


@dataclass(frozen=True)
class Case:
    """A hostile input and what must happen: field=None -> accepted; else ValueError naming field."""

    value: Any
    field: str | None


def assert_clear_error(exc: BaseException, field: str) -> None:
    msg = str(exc)
    assert isinstance(exc, ValueError), f"{type(exc).__name__}: {msg}"
    assert field in msg, f"message does not name {field!r}: {msg}"
    assert EXPLAINS.search(msg), f"message does not say what is allowed: {msg}"


# -- strategies: continuous actions ---------------------------------------------------------------
finite = st.floats(allow_nan=False, allow_infinity=False)  # up to +-1.8e308, subnormals, -0.0
non_finite = st.sampled_from([np.nan, np.inf, -np.inf])
ok_actions = st.one_of(
    st.tuples(finite, finite).map(list),
    st.tuples(finite, finite).map(tuple),
    st.tuples(finite, finite).map(lambda t: np.array(t, np.float64)),
    hnp.arrays(np.float32, 2, elements=st.floats(width=32, allow_nan=False, allow_infinity=False)),
    hnp.arrays(np.float16, 2, elements=st.floats(width=16, allow_nan=False, allow_infinity=False)),
    hnp.arrays(np.int64, 2, elements=st.integers(-(2**40), 2**40)),
).map(lambda a: Case(a, None))
shape_not_2 = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4).filter(lambda s: s != (2,))
bad_numeric_actions = st.one_of(
    st.tuples(finite, non_finite).map(list),
    st.tuples(non_finite, finite).map(lambda t: np.array(t, np.float32)),
    shape_not_2.flatmap(lambda s: hnp.arrays(np.float64, s, elements=st.floats(-2, 2))),
    st.lists(finite, max_size=5).filter(lambda v: len(v) != 2),
    st.just(None),
).map(lambda a: Case(a, "action"))
non_real_actions = st.one_of(
    st.text(max_size=8),
    st.tuples(st.text(max_size=3), st.text(max_size=3)).map(list),  # strings, even "0.5"
    st.tuples(st.booleans(), st.booleans()).map(list),
    st.tuples(st.complex_numbers(allow_nan=False, max_magnitude=2), finite).map(list),
    st.integers(min_value=10**310, max_value=10**320).map(lambda n: [n, 0]),  # beyond float range
    st.dictionaries(st.text(max_size=3), finite, max_size=2),
    st.just([[0.1], [0.2, 0.3]]),  # ragged
    st.just([None, 0.5]),
).map(lambda a: Case(a, "action"))


# -- strategies: reset options ------------------------------------------------------------------------


def interval(draw: st.DrawFn) -> tuple[float, float]:
    """lo < hi in [0, 1], still distinct after a cast to float32."""
    lo = draw(st.floats(0.0, 0.99))
    return lo, min(1.0, lo + draw(st.floats(0.001, 1.0)))


@st.composite
def valid_box(draw: st.DrawFn) -> list[float]:
    (x1, x2), (y1, y2) = interval(draw), interval(draw)
    return [x1, y1, x2, y2]


def valid_boxes(max_n: int) -> st.SearchStrategy:
    return st.one_of(
        st.lists(valid_box(), max_size=max_n),
        st.lists(valid_box(), min_size=1, max_size=max_n).map(lambda b: np.array(b, np.float32)),
    )


DAMAGE = ("outside", "inverted", "nonfinite", "flat", "three", "five", "deep", "many")


@st.composite
def broken_boxes(draw: st.DrawFn, kinds: tuple[str, ...] = DAMAGE) -> list:
    """One box list with exactly one kind of damage that an env must reject."""
    boxes = draw(st.lists(valid_box(), min_size=1, max_size=4))
    i, k = draw(st.integers(0, len(boxes) - 1)), draw(st.integers(0, 3))
    kind = draw(st.sampled_from(kinds))
    if kind == "outside":
        boxes[i][k] = draw(st.one_of(st.floats(max_value=-1e-6, allow_infinity=False), st.floats(1.000001, 1e300)))
    elif kind == "inverted":
        x1, y1, x2, y2 = boxes[i]
        boxes[i] = [x2, y1, x1, y2] if k % 2 == 0 else [x1, y2, x2, y1]
    elif kind == "nonfinite":
        boxes[i][k] = draw(non_finite)
    elif kind == "flat":
        return boxes[i]  # (4,) instead of (n, 4)
    elif kind == "three":
        boxes[i] = boxes[i][:3]
    elif kind == "five":
        boxes = [b + [0.5] for b in boxes]
    elif kind == "deep":
        return [boxes]  # (1, n, 4)
    else:
        boxes = boxes * draw(st.integers(70 // len(boxes) + 1, 3000 // len(boxes)))  # thousands of boxes
    return boxes


not_a_label = st.one_of(
    st.text(max_size=10).filter(lambda s: s not in TIME_OF_DAY + CROWDEDNESS),
    st.integers(),
    st.floats(),
    st.lists(st.sampled_from(TIME_OF_DAY), max_size=2),
    st.sampled_from(["Day", "NIGHT", " day", "day\n", "dusk", "mid", "medium ", ""]),
)
unknown_key = st.one_of(st.text(max_size=12), st.integers(), st.tuples(st.integers())).filter(
    lambda k: k not in OPTION_KEYS
)


def ok_options(max_boxes: int) -> st.SearchStrategy:
    opts = st.fixed_dictionaries(
        {},
        optional={
            "time_of_day": st.sampled_from((*TIME_OF_DAY, None)),
            "crowdedness": st.sampled_from((*CROWDEDNESS, None)),
            "boxes": st.one_of(st.none(), valid_boxes(max_boxes)),
        },
    )
    return st.one_of(st.none(), opts).map(lambda o: Case(o, None))


def merged(base: st.SearchStrategy, key: str, value: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(base, value).map(lambda t: {**(t[0] or {}), key: t[1]})


def bad_options(max_boxes: int, damage: tuple[str, ...] = DAMAGE) -> st.SearchStrategy:
    base = ok_options(max_boxes).map(lambda c: c.value)
    return st.one_of(
        st.tuples(base, unknown_key, st.integers()).map(
            lambda t: Case({**(t[0] or {}), t[1]: t[2]}, "unknown reset option")
        ),
        merged(base, "time_of_day", not_a_label).map(lambda o: Case(o, "time_of_day")),
        merged(base, "crowdedness", not_a_label).map(lambda o: Case(o, "crowdedness")),
        merged(base, "boxes", broken_boxes(damage)).map(lambda o: Case(o, "boxes")),
        merged(base, "boxes", st.one_of(st.text(max_size=5), st.just([["a", "b", "c", "d"]]))).map(
            lambda o: Case(o, "boxes")
        ),
    )


# -- the procedural env ---------------------------------------------------------------------------------
WORLD_DAMAGE = DAMAGE
WORLD_BAD_ACTIONS = (bad_numeric_actions, non_real_actions)


@pytest.fixture(scope="module")
def world_env():
    return gym.make("drivesim/ProceduralWorld-v0", height=H, width=W)


@settings(HOSTILE, max_examples=45)
@given(case=st.one_of(ok_actions, *WORLD_BAD_ACTIONS), seed=st.integers(0, 50))
def test_procedural_env_actions(world_env, case: Case, seed: int) -> None:
    world_env.reset(seed=seed)
    if case.field is not None:
        with pytest.raises(Exception) as info:
            world_env.step(case.value)
        assert_clear_error(info.value, case.field)
        obs, *_ = world_env.step(np.zeros(2, np.float32))  # still usable
        assert obs.shape == (H, W, 3)
        return
    obs, reward, term, trunc, info = world_env.step(case.value)
    assert obs.dtype == np.uint8 and obs.shape == (H, W, 3) and np.isfinite(reward)
    world_env.reset(seed=seed)
    clipped = np.clip(np.asarray(case.value, np.float64), -1.0, 1.0)
    obs2, *_, info2 = world_env.step(clipped)
    assert np.array_equal(obs, obs2) and info["ego"] == info2["ego"]  # out-of-range values are exactly clipped


@settings(HOSTILE, max_examples=45)
@given(case=st.one_of(ok_options(MAX_BOXES), bad_options(MAX_BOXES, WORLD_DAMAGE)), seed=st.integers(0, 50))
def test_procedural_env_reset_options(world_env, case: Case, seed: int) -> None:
    if case.field is not None:
        with pytest.raises(Exception) as info:
            world_env.reset(seed=seed, options=case.value)
        assert_clear_error(info.value, case.field)
        obs, _ = world_env.reset(seed=seed)
        assert obs.shape == (H, W, 3)
        return
    obs, info = world_env.reset(seed=seed, options=case.value)
    assert obs.dtype == np.uint8 and obs.shape == (H, W, 3)
    for key in ("time_of_day", "crowdedness"):
        if (case.value or {}).get(key) is not None:
            assert info[key] == case.value[key]


@settings(HOSTILE, max_examples=10)
@given(frames=hnp.arrays(np.uint8, st.sampled_from([(H, W, 3), (1, H, W, 3), (3, 4, 3)])))
def test_procedural_env_refuses_initial_frames(world_env, frames: np.ndarray) -> None:
    with pytest.raises(ValueError) as info:
        world_env.reset(seed=0, options={"initial_frames": frames})
    assert_clear_error(info.value, "initial_frames")


# -- the learned env on a tiny random model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return build_random_model(tmp_path_factory.mktemp("hostile") / "m", RandomModelSpec(interpolation=False))


@pytest.fixture(scope="module")
def learned_env(model_dir):
    env = gym.make("drivesim/DriveWorld-v0", model=str(model_dir), engine_config=FAST)
    env.reset(seed=0)
    return env


@pytest.fixture(scope="module")
def discrete_env(model_dir):
    env = gym.make("drivesim/DriveWorld-v0", model=str(model_dir), engine_config=FAST, action_type="discrete")
    env.reset(seed=0)
    return env


@settings(HOSTILE, max_examples=20)
@given(case=st.one_of(ok_actions, bad_numeric_actions, non_real_actions))
def test_learned_env_actions(learned_env, case: Case) -> None:
    inner = learned_env.unwrapped
    state = inner.get_state()
    if case.field is not None:
        with pytest.raises(Exception) as info:
            learned_env.step(case.value)
        assert_clear_error(info.value, case.field)
        assert torch.equal(inner.get_state().context, state.context)  # a refused action changes nothing
        return
    obs, reward, term, trunc, info = learned_env.step(case.value)
    assert obs.dtype == np.uint8 and obs.shape == (H, W, 3) and np.isfinite(reward)
    inner.set_state(state)
    clipped = np.clip(np.asarray(case.value, np.float64), -1.0, 1.0).astype(np.float32)
    assert np.array_equal(learned_env.step(clipped)[0], obs)  # out-of-range values are exactly clipped
    inner.set_state(state)


discrete_ok = st.one_of(
    st.integers(0, len(META_ACTIONS) - 1),
    st.integers(0, len(META_ACTIONS) - 1).map(np.int64),
    st.integers(0, len(META_ACTIONS) - 1).map(np.array),
).map(lambda a: Case(a, None))
discrete_bad = st.one_of(
    st.integers().filter(lambda a: not 0 <= a < len(META_ACTIONS)),
    st.floats(),  # 2.7 used to be truncated to LANE_RIGHT
    st.integers(0, len(META_ACTIONS) - 1).map(float),  # even 3.0
    st.booleans(),
    st.text(max_size=4),
    st.none(),
    st.lists(st.integers(0, 4), min_size=1, max_size=3),
    st.integers(min_value=2**64, max_value=10**40),
).map(lambda a: Case(a, "discrete action"))


@settings(HOSTILE, max_examples=20)
@given(case=st.one_of(discrete_ok, discrete_bad))
def test_learned_env_discrete_actions(discrete_env, case: Case) -> None:
    inner = discrete_env.unwrapped
    state = inner.get_state()
    if case.field is not None:
        with pytest.raises(Exception) as info:
            discrete_env.step(case.value)
        assert_clear_error(info.value, case.field)
        return
    obs, *_ = discrete_env.step(case.value)
    assert obs.dtype == np.uint8 and obs.shape == (H, W, 3)
    inner.set_state(state)


def frames_options() -> st.SearchStrategy:
    """Valid options plus initial_frames, valid or broken."""
    base = ok_options(MAX_BOXES).map(lambda c: c.value)
    ok = hnp.arrays(np.uint8, st.sampled_from([(H, W, 3), (1, H, W, 3), (2, H, W, 3)]))
    wrong_shape = st.sampled_from(
        [(W, H, 3), (H, W, 4), (H, W), (3, H, W, 3), (0, H, W, 3), (1, 1, H, W, 3), (H, W, 1)]
    )
    bad = st.one_of(
        wrong_shape.map(lambda s: np.zeros(s, np.uint8)),
        st.sampled_from([np.float32, np.float64, np.int64, np.uint16, np.bool_, np.int8]).map(
            lambda d: np.zeros((H, W, 3), d)
        ),
        st.just(np.full((H, W, 3), 300.0)),  # out of uint8 range as floats
        st.just(np.zeros((H, W, 3), np.uint8).tolist()),  # a list, not an array
        st.text(max_size=3),
    )
    return st.one_of(
        merged(base, "initial_frames", ok).map(lambda o: Case(o, None)),
        merged(base, "initial_frames", bad).map(lambda o: Case(o, "initial_frames")),
    )


@settings(HOSTILE, max_examples=20)
@given(
    case=st.one_of(ok_options(MAX_BOXES), bad_options(MAX_BOXES), frames_options()),
    seed=st.integers(0, 2**31 - 1),
)
def test_learned_env_reset_options(learned_env, case: Case, seed: int) -> None:
    if case.field is not None:
        with pytest.raises(Exception) as info:
            learned_env.reset(seed=seed, options=case.value)
        assert_clear_error(info.value, case.field)
        return
    obs, info = learned_env.reset(seed=seed, options=case.value)
    assert obs.dtype == np.uint8 and obs.shape == (H, W, 3)
    for key in ("time_of_day", "crowdedness"):
        if (case.value or {}).get(key) is not None:
            assert info[key] == case.value[key]


@settings(HOSTILE, max_examples=10)
@given(options=st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=4), st.integers(), st.just([("a", 1)])))
def test_learned_env_options_must_be_a_mapping(learned_env, options: Any) -> None:
    with pytest.raises(ValueError) as info:
        learned_env.reset(seed=0, options=options)
    assert_clear_error(info.value, "options")


# -- the vector env ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vector_env(model_dir):
    venv = gym.make_vec("drivesim/DriveWorld-v0", num_envs=2, model=str(model_dir), engine_config=FAST)
    assert isinstance(venv.unwrapped, DriveWorldVectorEnv)
    venv.reset(seed=0)
    return venv


vec_ok = st.tuples(finite, finite, finite, finite).map(lambda t: Case(np.array(t).reshape(2, 2), None))
vec_bad = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)
    .filter(lambda s: s != (2, 2))
    .flatmap(lambda s: hnp.arrays(np.float32, s, elements=st.floats(-1, 1, width=32))),
    st.tuples(finite, non_finite).map(lambda t: [list(t), [0.0, 0.0]]),
    st.just([[0.1, 0.2], [0.3]]),
    st.just([["a", "b"], ["c", "d"]]),
).map(lambda a: Case(a, "action"))
seed_bad = st.one_of(
    st.integers(max_value=-1),
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.integers(0, 9), max_size=4).filter(lambda s: len(s) != 2),
    st.tuples(st.integers(0, 9), st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=2))).map(list),
)


@settings(HOSTILE, max_examples=15)
@given(case=st.one_of(vec_ok, vec_bad))
def test_vector_env_actions(vector_env, case: Case) -> None:
    if case.field is not None:
        with pytest.raises(Exception) as info:
            vector_env.step(case.value)
        assert_clear_error(info.value, case.field)
        return
    obs, reward, *_ = vector_env.step(case.value)
    assert obs.shape == (2, H, W, 3) and np.all(np.isfinite(reward))


@settings(HOSTILE, max_examples=15)
@given(seed=seed_bad)
def test_vector_env_seeds(vector_env, seed: Any) -> None:
    with pytest.raises(Exception) as info:
        vector_env.reset(seed=seed)
    assert_clear_error(info.value, "seed")


@settings(HOSTILE, max_examples=10)
@given(case=bad_options(MAX_BOXES))
def test_vector_env_reset_options(vector_env, case: Case) -> None:
    with pytest.raises(Exception) as info:
        vector_env.reset(seed=1, options=case.value)
    assert_clear_error(info.value, case.field)


def test_envs_still_work_after_hostile_input(learned_env, discrete_env, vector_env) -> None:
    assert learned_env.reset(seed=3)[0].shape == (H, W, 3)
    assert learned_env.step(np.array([0.2, -0.1], np.float32))[0].shape == (H, W, 3)
    discrete_env.reset(seed=3)
    assert discrete_env.step(1)[0].shape == (H, W, 3)
    assert vector_env.reset(seed=[4, 5])[0].shape == (2, H, W, 3)


# -- fixed hostile examples for the procedural world ------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [{"a": 1}, [10**400, 0], np.array([1 + 1j, 0]), ["0.5", "1"], [True, False], "ab"],
    ids=["dict", "huge-int", "complex", "strings", "bools", "text"],
)
def test_procedural_env_rejects_non_real_actions(world_env, action: Any) -> None:
    world_env.reset(seed=0)
    with pytest.raises(Exception) as info:
        world_env.step(action)
    assert_clear_error(info.value, "action")


@pytest.mark.parametrize(
    "options, field",
    [
        ([1, 2], "options"),
        ("ab", "options"),
        ({1: 2, "x": 3}, "unknown reset option"),
        ({"time_of_day": np.array(["day", "night"])}, "time_of_day"),
        ({"boxes": [[10**400, 0, 1, 1]]}, "boxes"),
        ({"boxes": [[False, False, True, True]]}, "boxes"),
        ({"boxes": [["0.1", "0.1", "0.2", "0.2"]]}, "boxes"),
        ({"boxes": [[0.1, 0.1, 0.2, 0.2]] * 2000}, "boxes"),
    ],
    ids=["list", "text", "mixed-keys", "label-array", "huge-int", "bools", "strings", "2000-boxes"],
)
def test_procedural_env_rejects_hostile_options(world_env, options: Any, field: str) -> None:
    with pytest.raises(Exception) as info:
        world_env.reset(seed=0, options=options)
    assert_clear_error(info.value, field)
