"""Hostile input at scene composition (issue 10): box lists, box files (JSON / YAML) and the
arguments of `compose_scene`.

Property-based (hypothesis, derandomized, no example database). A box layout is either
accepted exactly as given (normalised, x1 < x2, y1 < y2, known class) or refused with a
ValueError naming the entry (or file) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.model import Autoencoder
from drivesim.diffusion.image_model import ImageLDM, LatentGeometry
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.diffusion.unet import UNetConfig
from drivesim.rollout.compose import (
    BoxLayout,
    ComposeModels,
    compose_scene,
    load_box_file,
    load_compose_models,
    parse_boxes,
)
from drivesim.training.checkpoint import save_stage
from drivesim.world.types import VEHICLE_CLASSES

HOSTILE = settings(
    deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow], print_blob=False
)
MAX_BOXES = 3
EXPLAINS = re.compile(r"allowed|expected|must|at most|need")
unit = st.floats(0.0, 1.0)


def interval(draw: st.DrawFn) -> tuple[float, float]:
    """lo < hi in [0, 1], still distinct in float32."""
    lo = draw(st.floats(0.0, 0.99))
    return lo, min(1.0, lo + draw(st.floats(0.001, 1.0)))


@st.composite
def good_entry(draw: st.DrawFn) -> tuple[Any, list[float], int]:
    """(entry as a user writes it, its xyxy, its class index)."""
    (x1, x2), (y1, y2) = interval(draw), interval(draw)
    xyxy = [x1, y1, x2, y2]
    cls = draw(st.sampled_from([None, *VEHICLE_CLASSES, *range(len(VEHICLE_CLASSES))]))
    index = 0 if cls is None else (VEHICLE_CLASSES.index(cls) if isinstance(cls, str) else cls)
    form = draw(st.sampled_from(["list", "tuple", "mapping"]))
    if form == "mapping":
        entry: Any = {"box": xyxy} if cls is None else {"box": xyxy, "class": cls}
    else:
        entry = xyxy if cls is None else [*xyxy, cls]
        entry = tuple(entry) if form == "tuple" else entry
    return entry, xyxy, index


not_a_coordinate = st.one_of(
    st.floats(max_value=-1e-9),
    st.floats(min_value=1.000001),
    st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -(10**400), True, False, None, "0.5", [0.5], 1j]),
)


@st.composite
def bad_entry(draw: st.DrawFn) -> Any:
    entry, xyxy, _ = draw(good_entry())
    kind = draw(st.sampled_from(["coordinate", "coordinate", "inverted", "class", "length", "type", "mapping_keys"]))
    event(f"bad box: {kind}")
    if kind == "coordinate":
        coords = list(xyxy)
        coords[draw(st.integers(0, 3))] = draw(not_a_coordinate)
        return coords
    if kind == "inverted":
        return [xyxy[2], xyxy[1], xyxy[0], xyxy[3]] if draw(st.booleans()) else [xyxy[0], xyxy[3], xyxy[2], xyxy[1]]
    if kind == "class":
        cls = draw(st.one_of(st.text(max_size=6).filter(lambda c: c not in VEHICLE_CLASSES), st.integers().filter(
            lambda c: not 0 <= c < len(VEHICLE_CLASSES)), st.sampled_from([1.0, True, None, [0], "Car", "car "])))
        return [*xyxy, cls]
    if kind == "length":
        return draw(st.lists(unit, max_size=7).filter(lambda v: len(v) not in (4, 5)))
    if kind == "type":
        return draw(st.one_of(st.text(max_size=8), st.integers(), st.none(), st.floats()))
    return {"box": xyxy, draw(st.sampled_from(["colour", "cls", 1, ("x",)])): 1}


@settings(HOSTILE, max_examples=100)
@given(
    good=st.lists(good_entry(), max_size=MAX_BOXES),
    bad=st.one_of(st.none(), bad_entry()),
    where=st.integers(0, MAX_BOXES),
    wrap=st.sampled_from(["list", "tuple", "mapping"]),
)
def test_box_lists(good: list, bad: Any, where: int, wrap: str) -> None:
    entries = [g[0] for g in good]
    index = -1
    if bad is not None:
        entries = entries[: MAX_BOXES - 1]  # room for the damaged entry within the allowed count
        index = min(where, len(entries))
        entries.insert(index, bad)
    given_entries: Any = {"list": entries, "tuple": tuple(entries), "mapping": {"boxes": entries}}[wrap]
    if bad is None:
        layout = parse_boxes(given_entries, MAX_BOXES)
        assert isinstance(layout, BoxLayout) and layout.xyxy.dtype == np.float32 and layout.classes.dtype == np.int64
        np.testing.assert_array_equal(layout.xyxy, np.array([g[1] for g in good], np.float32).reshape(-1, 4))
        assert layout.classes.tolist() == [g[2] for g in good]
        return
    with pytest.raises(ValueError) as info:
        parse_boxes(given_entries, MAX_BOXES)
    assert f"boxes[{index}]" in str(info.value), str(info.value)
    assert EXPLAINS.search(str(info.value)), str(info.value)


@settings(HOSTILE, max_examples=30)
@given(extra=st.integers(1, 2000), container=st.sampled_from(["list", "array", "mapping_extra_key", "text", "number"]))
def test_box_list_shapes(extra: int, container: str) -> None:
    boxes = [[0.1, 0.2, 0.3, 0.4]] * (MAX_BOXES + extra)
    value: Any = {
        "list": boxes,
        "array": np.array(boxes),
        "mapping_extra_key": {"boxes": boxes[:1], "time_of_day": "night"},  # would be silently ignored
        "text": "0.1 0.2 0.3 0.4",
        "number": 0.5,
    }[container]
    with pytest.raises(ValueError, match="boxes") as info:
        parse_boxes(value, MAX_BOXES)
    assert "at most" in str(info.value) or "only 'boxes'" in str(info.value) or "must be a list" in str(info.value)


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=20,
)


@st.composite
def box_file(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".json", ".yaml", ".yml", ""]))
    kind = draw(st.sampled_from(["json_value", "boxes", "bytes", "text", "deep", "big_int", "nan"]))
    event(f"box file: {kind}")
    if kind == "json_value":
        raw = json.dumps(draw(json_value)).encode()
    elif kind == "boxes":
        raw = json.dumps(draw(st.lists(st.lists(st.floats(-0.5, 1.5), min_size=4, max_size=4), max_size=5))).encode()
    elif kind == "bytes":
        raw = draw(st.binary(max_size=200))
    elif kind == "text":
        raw = draw(st.text(max_size=200)).encode("utf-8", errors="surrogatepass")
    elif kind == "deep":
        depth = draw(st.integers(50, 1200))  # past the parsers' recursion limits; PyYAML is slow beyond
        raw = ("[" * depth + "]" * depth).encode()
    elif kind == "big_int":
        raw = b"[[0." + b"1" * draw(st.integers(1, 10)) + b", 0, " + b"9" * 5000 + b", 1]]"
    else:
        raw = b"[[NaN, 0, 1, 1]]" if suffix == ".json" else b"[[.nan, 0, 1, 1]]"
    return suffix, raw


@settings(HOSTILE, max_examples=45)
@given(case=box_file())
def test_box_files(tmp_path_factory: pytest.TempPathFactory, case: tuple[str, bytes]) -> None:
    suffix, raw = case
    path = tmp_path_factory.mktemp("boxes", numbered=True) / f"b{suffix}"
    path.write_bytes(raw)
    try:
        layout = load_box_file(path, MAX_BOXES)
    except ValueError as exc:
        event("box file: refused")
        assert str(path) in str(exc), str(exc)
        return
    event("box file: accepted")
    assert len(layout) <= MAX_BOXES and layout.xyxy.shape == (len(layout), 4)
    xyxy = layout.xyxy
    assert np.all((0 <= xyxy) & (xyxy <= 1)) and np.all(xyxy[:, 0] < xyxy[:, 2]) and np.all(xyxy[:, 1] < xyxy[:, 3])
    assert np.all((0 <= layout.classes) & (layout.classes < len(VEHICLE_CLASSES)))


# -- compose_scene on tiny random models ---------------------------------------------------------------------
TINY_AE = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)
UNET = dataclasses.replace(UNetConfig.tiny(), box_conditioning="both", zero_init=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ComposeModels:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hostile_compose") / "model"
    ae = Autoencoder(TINY_AE)
    ae.latent_scale.fill_(0.5)
    save_stage(folder, "autoencoder", ae, TINY_AE, extra={"latent_scale": 0.5, "image_size": [16, 32]})
    ldm = ImageLDM.build(UNET, ScheduleConfig(), "v", LatentGeometry(4, 8, 16, 0.5), max_boxes=MAX_BOXES)
    save_stage(folder, "image_ldm", ldm.unet, ldm.stage_config(), extra=ldm.stage_extra())
    return load_compose_models(folder)


not_a_label = st.one_of(
    st.text(max_size=6).filter(lambda s: s not in ("day", "night", "low", "medium", "high")),
    st.integers(),
    st.sampled_from([["day"], ("night",), np.array(["day", "night"]), b"day", 1.0]),
)
bad_args = st.one_of(
    st.tuples(st.just("time_of_day"), not_a_label),
    st.tuples(st.just("crowdedness"), not_a_label),
    st.tuples(st.just("seed"), st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), st.floats(),
                                          st.booleans(), st.text(max_size=3))),
    st.tuples(st.just("steps"), st.one_of(st.integers(max_value=0), st.integers(min_value=1001), st.floats(),
                                           st.booleans(), st.none())),
    st.tuples(st.just("boxes"), bad_entry().map(lambda e: [e])),
)


@settings(HOSTILE, max_examples=30)
@given(bad=st.one_of(st.none(), bad_args), seed=st.integers(0, 2**31))
def test_compose_scene_arguments(models: ComposeModels, bad: tuple[str, Any] | None, seed: int) -> None:
    kwargs: dict[str, Any] = {"boxes": [[0.2, 0.5, 0.4, 0.8, "car"]], "time_of_day": "night", "crowdedness": "low",
                              "seed": seed, "steps": 1}
    if bad is None:
        frame = compose_scene(models, **kwargs)
        assert frame.dtype == np.uint8 and frame.shape == (16, 32, 3)
        return
    name, value = bad
    kwargs[name] = value
    with pytest.raises(ValueError) as info:
        compose_scene(models, **kwargs)
    assert name in str(info.value) and EXPLAINS.search(str(info.value)), str(info.value)
