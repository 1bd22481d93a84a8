"""Nonsense on the `drivesim` command line (issue 10): unknown commands and keys, wrong types,
missing `=`, flags, garbage text.

Property-based (hypothesis, derandomized, no example database). Every generated argv contains
at least one thing that must be refused, so no command ever starts its real work; `main` must
return a nonzero code with a `drivesim: ...` message naming the culprit, never raise. The
tests run in an empty temporary folder and check that it stays empty.
"""

from __future__ import annotations

import contextlib
import io
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drivesim.cli.main import COMMANDS, main

HOSTILE = settings(
    deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow], print_blob=False
)
COMMAND_WORDS = {w for words in COMMANDS for w in words}
# Typed fields per command (the dataclass each command validates its config with).
TYPED: dict[tuple[str, ...], dict[str, str]] = {
    ("demo",): {"seconds": "float", "fps": "int", "height": "int", "storyboard_frames": "int"},
    ("data", "synth"): {"num_clips": "int", "clip_seconds": "float", "fps": "int", "seed": "int"},
    ("data", "show"): {"frames": "int", "cols": "int", "scale": "int"},
    ("train", "stage=probes"): {"steps": "int", "lr": "float", "seed": "int", "augment": "bool"},
    ("train", "stage=autoencoder"): {"seed": "int"},
    ("generate",): {"minutes": "float", "seed": "int", "engine.keyframe_steps": "int", "engine.upsample": "bool"},
    ("compose",): {"seed": "int", "steps": "int", "guidance": "float", "draw_boxes": "bool"},
    ("eval",): {"storyboard_clips": "int", "options.iou_threshold": "float", "options.paired": "bool"},
}
COMMAND_LINES = [list(words) for words in TYPED] + [["data", "bdd100k"], ["data", "latents"]]


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile_cli")


def run(argv: list[str], folder: Path) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.chdir(folder), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(argv)
    assert list(folder.iterdir()) == [], f"{argv} ran a command: {sorted(os.listdir(folder))}"
    return rc, err.getvalue()


letters = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8)
never_a_number = letters.map(lambda s: "zz" + s)  # not a number, bool, null or interpolation
garbage = st.text(max_size=15)  # any unicode, control characters included


@st.composite
def hostile_argv(draw: st.DrawFn) -> tuple[list[str], str, str]:
    """(argv, kind of damage, text the error message must contain)."""
    kind = draw(st.sampled_from(["unknown_command", "unknown_key", "wrong_type", "missing_equals", "flag"]))
    event(f"cli: {kind}")
    cmd = list(draw(st.sampled_from(COMMAND_LINES)))
    noise = draw(st.lists(st.builds(lambda k, v: f"zz{k}={v}", letters, garbage), max_size=2))
    if kind == "unknown_command":
        first = draw(
            st.one_of(garbage, letters).filter(
                lambda w: "=" not in w and not w.startswith("-") and w not in COMMAND_WORDS | {"help"}
            )
        )
        return [first, *draw(st.lists(garbage.filter(lambda w: not w.startswith("-")), max_size=2))], kind, "unknown"
    if kind == "unknown_key":
        key = draw(st.one_of(never_a_number, st.sampled_from(["engine.zzx", "zz.y", "options.zz", "zz_0"])))
        return [*cmd, *noise, f"{key}={draw(garbage)}"], kind, ""
    if kind == "wrong_type":
        typed = TYPED.get(tuple(cmd))
        if typed is None:
            return [*cmd, "zzkey=1"], kind, "zzkey"
        key = draw(st.sampled_from(sorted(typed)))
        bad = [never_a_number, st.sampled_from(["[1,2]", "{a:1}", "[]", "{}", "[zz]"])]
        if typed[key] == "int":
            bad.append(st.sampled_from(["1.5", "-0.5", "1e3"]))
        value = draw(st.one_of(*bad))
        return [*cmd, f"{key}={value}"], kind, key.split(".")[-1]
    if kind == "missing_equals":
        words = draw(st.lists(letters.filter(lambda w: w not in COMMAND_WORDS), min_size=2, max_size=3))
        return [*cmd, *words], kind, "unexpected argument"
    flag = draw(st.one_of(st.just("--help"), st.just("-x"), letters.map(lambda s: "--" + s)))
    return [*cmd, flag], kind, "unknown flag"


@settings(HOSTILE, max_examples=45)
@given(case=hostile_argv())
def test_hostile_argv_gives_a_usage_error(empty_dir: Path, case: tuple[list[str], str, str]) -> None:
    argv, kind, named = case
    rc, err = run(argv, empty_dir)
    assert rc != 0, (argv, err)
    assert err.startswith("drivesim: "), err
    assert "Traceback" not in err
    if named:
        assert named in err, (argv, err)


@settings(HOSTILE, max_examples=30)
@given(
    head=st.one_of(st.sampled_from(COMMAND_LINES), st.lists(garbage, max_size=2)),
    tail=st.lists(garbage, max_size=3),
)
def test_random_text_never_raises(empty_dir: Path, head: list[str], tail: list[str]) -> None:
    """Garbage after a command or instead of one (plus one unknown key, so nothing can start)."""
    argv = [*head, *tail, "zzbad=1"]
    if argv[0] in ("help", "-h", "--help"):
        argv = ["zz", *argv]
    rc, err = run(argv, empty_dir)
    assert rc in (1, 2) and err.startswith("drivesim: "), (argv, rc, err)


@pytest.mark.parametrize(
    "argv, named",
    [
        (["demo", "=1"], "bad override"),
        (["demo", "="], "bad override"),
        (["demo", "a==b"], "a==b"),
        (["demo", "seconds='abc"], "seconds"),
        (["demo", "x=\x00"], "bad override"),
        (["demo", "seconds=${oops}"], "oops"),
        (["demo", "scenarios=[abc]"], "scenarios"),
        (["generate", "engine=abc"], "EngineConfig"),
        (["train"], "stage"),
        (["train", "stage="], "stage"),
        (["train", "stage=probes", "stage=probes"], "stage"),
        (["data"], "unknown command"),
        (["data", "show", "a", "b"], "unexpected argument"),
    ],
)
def test_known_nonsense(empty_dir: Path, argv: list[str], named: str) -> None:
    rc, err = run(argv, empty_dir)
    assert rc != 0 and err.startswith("drivesim: ") and named in err, err


# -- demo values: seconds must be finite, out non-empty ------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "source=world", "seconds=1e999"],
        ["demo", "source=world", "seconds=nan"],
        ["demo", "source=world", "out=", "seconds=0.05", "storyboard_frames=1"],
    ],
    ids=["inf-seconds", "nan-seconds", "empty-out"],
)
def test_demo_value_gaps(tmp_path: Path, argv: list[str]) -> None:
    err = io.StringIO()
    with contextlib.chdir(tmp_path), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    assert rc != 0 and ("seconds" in err.getvalue() or "out" in err.getvalue())
