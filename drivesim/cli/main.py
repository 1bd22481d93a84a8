"""The `drivesim` command: `drivesim <command> [<subcommand>] key=value ...`.

Every command has a primary Hydra config under `conf/` that the key=value overrides
(Hydra override grammar) are applied to. This package is the only place that
composes Hydra configs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig

from drivesim.cli.typed_config import UsageError


@dataclass(frozen=True)
class Command:
    config_name: str
    run: Callable[[DictConfig], object]
    help: str
    positional: str | None = None  # config key that one bare argument after the command sets


def _demo(cfg: DictConfig) -> object:
    from drivesim.cli.demo import run_demo

    return run_demo(cfg)


def _data_synth(cfg: DictConfig) -> object:
    from drivesim.cli.data_cmds import run_synth

    return run_synth(cfg)


def _data_show(cfg: DictConfig) -> object:
    from drivesim.cli.data_cmds import run_show

    return run_show(cfg)


def _data_bdd100k(cfg: DictConfig) -> object:
    from drivesim.cli.data_cmds import run_bdd100k

    return run_bdd100k(cfg)


def _data_shards(cfg: DictConfig) -> object:
    from drivesim.cli.data_cmds import run_shards

    return run_shards(cfg)


def _bundle(cfg: DictConfig) -> object:
    from drivesim.cli.bundle_cmd import run_bundle

    return run_bundle(cfg)


def _data_latents(cfg: DictConfig) -> object:
    from drivesim.cli.latents_cmd import run_latents

    return run_latents(cfg)


def _train(cfg: DictConfig) -> object:
    raise UsageError("train needs stage=NAME")


def _compose(cfg: DictConfig) -> object:
    from drivesim.cli.compose_cmd import run_compose

    return run_compose(cfg)


def _generate(cfg: DictConfig) -> object:
    from drivesim.cli.generate_cmd import run_generate

    return run_generate(cfg)


def _eval(cfg: DictConfig) -> object:
    from drivesim.cli.eval_cmds import run_eval

    return run_eval(cfg)


COMMANDS: dict[tuple[str, ...], Command] = {
    ("demo",): Command("demo", _demo, "render a demo drive into outputs/demo/"),
    ("data", "synth"): Command("data_synth", _data_synth, "render a dataset from the procedural world"),
    ("data", "show"): Command(
        "data_show", _data_show, "storyboard PNG of one clip: data show DIR clip=ID out=PNG", positional="dataset"
    ),
    ("data", "bdd100k"): Command("data_bdd100k", _data_bdd100k, "convert BDD100K videos+labels to ours"),
    ("data", "shards"): Command("data_shards", _data_shards, "pack a dataset into WebDataset tar shards"),
    ("data", "latents"): Command("data_latents", _data_latents, "encode a dataset once into a latent cache"),
    ("train",): Command("train", _train, "train one stage: stage=probes|autoencoder|temporal_decoder|..."),
    ("compose",): Command("compose", _compose, "first frame of a scene from boxes and labels (PNG)"),
    ("generate",): Command("generate", _generate, "scenario videos of any length from the world model"),
    ("bundle",): Command("bundle", _bundle, "one model folder from trained stages (fp16): bundle src=DIR out=DIR"),
    ("eval",): Command("eval", _eval, "evaluate generated videos against real ones with the probes"),
}


def _usage() -> str:
    lines = ["usage: drivesim <command> [key=value ...]", "", "commands:"]
    for words, cmd in COMMANDS.items():
        lines.append(f"  {' '.join(words):<16} {cmd.help}")
    lines.append("")
    lines.append("Overrides use Hydra's grammar, e.g. `drivesim data synth out=/tmp/ds num_clips=8`.")
    return "\n".join(lines)


def parse(argv: list[str]) -> tuple[Command, list[str]]:
    """Split argv into the command (leading words without '=') and Hydra overrides."""
    words = [a for a in argv if "=" not in a and not a.startswith("-")]
    overrides = [a for a in argv if "=" in a]
    flags = [a for a in argv if a.startswith("-") and "=" not in a]
    if flags:
        raise UsageError(f"unknown flag(s) {flags}; drivesim takes key=value overrides only")
    key = next((tuple(words[:n]) for n in range(len(words), 0, -1) if tuple(words[:n]) in COMMANDS), None)
    if key is None:
        known = [" ".join(k) for k in COMMANDS]
        raise UsageError(f"unknown command {' '.join(words)!r}; known commands: {known}")
    cmd = COMMANDS[key]
    rest = words[len(key) :]
    if rest:
        if cmd.positional is None or len(rest) > 1:
            raise UsageError(f"unexpected argument(s) {rest} after `{' '.join(key)}`; use key=value overrides")
        overrides = [f"{cmd.positional}={rest[0]}", *overrides]
    if key == ("train",):
        cmd, overrides = _train_stage(overrides)
    return cmd, overrides


def _train_stage(overrides: list[str]) -> tuple[Command, list[str]]:
    """`train stage=NAME ...` composes `conf/train/NAME.yaml`; `stage` picks the file."""
    from drivesim.cli.train_cmds import STAGES

    stages = [o for o in overrides if o.split("=", 1)[0] == "stage"]
    if len(stages) != 1:
        raise UsageError(f"train needs exactly one stage=NAME; stages: {sorted(STAGES)}")
    stage = stages[0].split("=", 1)[1]
    if stage not in STAGES:
        raise UsageError(f"unknown stage={stage!r}; stages: {sorted(STAGES)}")
    rest = [o for o in overrides if o not in stages]
    return Command(f"train/{stage}", STAGES[stage], f"train {stage}"), rest


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose `conf/<config_name>.yaml` with overrides; errors name the bad override."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from drivesim.paths import conf_dir

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:  # ValueError: e.g. `=1` (empty key)
        raise UsageError(f"bad override for `{config_name}`: {exc}") from None
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(_usage())
        return 0
    try:
        cmd, overrides = parse(argv)
        cfg = compose(cmd.config_name, overrides)
        cmd.run(cfg)
    except UsageError as exc:
        print(f"drivesim: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"drivesim: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
