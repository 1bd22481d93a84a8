"""Every training stage for 2 steps, one after the other, in one process per rank (test_stages_torchrun).

`prepare(work)` builds each stage's tiny inputs (run once, before the launch, by the test).
`python -m torch.distributed.run --nproc_per_node=2 _stage_script.py WORK OUT [STAGE ...]` then runs
the stages in STAGES order (the temporal decoder uses the autoencoder just trained, the temporal upsampler the
image upsampler). After each stage every rank writes OUT/rank<r>/<stage>.safetensors (the parameters
of every optimizer that stepped, in creation order) and OUT/rank<r>/<stage>.json (the safetensors
files this rank wrote and how many DistributedDataParallel wrappers the stage built).
The tiny inputs and configs come from the per-stage unit tests in this folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parents[1]):  # the test modules by name; the repository root for `tests.*`
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

STAGES = (
    "autoencoder",
    "autoencoder_shards",
    "temporal_decoder",
    "image_ldm",
    "video_ldm",
    "interpolation",
    "reward",
    "upsampler",
    "upsampler_temporal",
    "probes",
)


@dataclass(frozen=True)
class StageOutputs:
    checkpoint: Path  # rank 0's run checkpoint after step 2
    weights: list[Path]  # the exported stage file(s)


RUN_DIRS = {
    "autoencoder": "ae/run",
    "autoencoder_shards": "ae_shards/run",
    "temporal_decoder": "td_run",
    "image_ldm": "image_ldm/run/run",
    "video_ldm": "video_ldm/run/run",
    "interpolation": "interpolation/run",
    "reward": "reward/run",
    "upsampler": "upsampler/image",
    "upsampler_temporal": "upsampler/temporal",
    "probes": "probes/run",
}
MODEL_DIRS = {
    "autoencoder": "ae/model",
    "autoencoder_shards": "ae_shards/model",
    "temporal_decoder": "ae/model",
    "image_ldm": "image_ldm/run/model",
    "video_ldm": "video_ldm/model",
    "interpolation": "interpolation/model",
    "reward": "reward/model",
    "upsampler": "upsampler/model",
    "upsampler_temporal": "upsampler/model",
    "probes": "probes/model",
}


def outputs(work: Path, stage: str) -> StageOutputs:
    names = {"probes": ["frame_probe", "clip_probe"], "autoencoder_shards": ["autoencoder"]}.get(stage, [stage])
    return StageOutputs(
        checkpoint=work / RUN_DIRS[stage] / "checkpoints" / "step_00000002",
        weights=[work / MODEL_DIRS[stage] / f"{name}.safetensors" for name in names],
    )


def prepare(work: Path) -> None:
    """The stages' input data: a tiny MP4 dataset and its shards, latent caches, an image-LDM folder, a reward cache."""
    import test_image_ldm
    import test_interpolation
    import test_reward
    import test_video_ldm
    from test_autoencoder_training import make_dataset

    from drivesim.data.shards import ShardWriteConfig, write_shards

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        make_dataset(work / "ds")  # 2 train clips: one train shard per rank
        write_shards(ShardWriteConfig(dataset=str(work / "ds"), out=str(work / "sh"), shard_max_clips=1))
        test_image_ldm.make_latent_cache(work / "image_ldm" / "cache")
        test_video_ldm.make_latent_cache(work / "video_ldm" / "cache")
        test_video_ldm.make_image_model(work / "video_ldm" / "model")
        test_interpolation._workspace(work / "interpolation")
        test_reward._cache(work / "reward")
    finally:
        torch.set_num_threads(threads)


def _runners(work: Path) -> dict[str, Callable[[], object]]:
    import test_image_ldm
    import test_interpolation
    import test_probes
    import test_upsampler
    import test_video_ldm
    from test_autoencoder_training import TINY_D, _ae_cfg

    from drivesim.autoencoder.config import TemporalDecoderConfig
    from drivesim.diffusion.upsampler_temporal import TemporalUpsamplerConfig
    from drivesim.rollout.reward_model import RewardModelConfig
    from drivesim.training import (
        autoencoder,
        image_ldm,
        interpolation,
        probes,
        reward,
        temporal_decoder,
        upsampler,
        upsampler_temporal,
        video_ldm,
    )

    # max_minutes=60 (never reached) exercises the stages' all-reduce that makes the ranks stop together.
    ae_kw = dict(max_steps=2, disc_start=1, checkpoint_every=1, eval_every=2, max_minutes=60.0)
    ae_cfg = _ae_cfg(work, "ae", work / "ds", **ae_kw)
    ae_shards_cfg = _ae_cfg(
        work, "ae_shards", work / "ds", data_format="shards", shards=str(work / "sh"), shard_frame_buffer=6, **ae_kw
    )
    td_cfg = temporal_decoder.TemporalDecoderTrainConfig(
        dataset=str(work / "ds"), run_dir=str(work / "td_run"), model_dir=ae_cfg.model_dir,
        temporal=TemporalDecoderConfig(temporal_levels=(0,)), discriminator=TINY_D, height=16, width=32,
        num_frames=4, batch_size=2, max_steps=2, disc_start=1, checkpoint_every=1, eval_every=2, log_every=1,
        val_clips=1, val_frames=6, num_threads=1, max_minutes=60.0,
    )  # fmt: skip
    ildm_cfg = test_image_ldm._cfg(work / "image_ldm", "run", max_steps=2, checkpoint_every=1, max_minutes=60.0)
    vldm_cfg = dataclasses.replace(
        test_video_ldm._cfg(work / "video_ldm", "run", max_steps=2, max_minutes=60.0),
        model_dir=str(work / "video_ldm" / "model"),
    )
    interp_cfg = test_interpolation._cfg(work / "interpolation", max_steps=2)
    reward_cfg = reward.RewardTrainConfig(
        latents=str(work / "reward" / "cache"), run_dir=str(work / "reward" / "run"),
        model_dir=str(work / "reward" / "model"), model=RewardModelConfig(channels=16), batch_size=8, max_steps=2,
        checkpoint_every=1, log_every=1, max_val_windows=16, val_split="train", device="cpu",
    )  # fmt: skip
    ups_dir = work / "upsampler" / "model"
    ups_cfg = upsampler.UpsamplerTrainConfig(
        run_dir=str(work / "upsampler" / "image"), model_dir=str(ups_dir), model=test_upsampler.TINY,
        data=test_upsampler.DATA, val_episodes=1, val_frames=1, patch_size=32, batch_size=2, max_steps=2,
        eval_steps=2, eval_every=2, checkpoint_every=1, log_every=1, max_minutes=60.0,
    )  # fmt: skip
    upt_cfg = upsampler_temporal.UpsamplerTemporalTrainConfig(
        run_dir=str(work / "upsampler" / "temporal"), model_dir=str(ups_dir),
        temporal=TemporalUpsamplerConfig(temporal_levels=(0, 1)), data=test_upsampler.DATA, num_frames=3,
        val_episodes=1, val_frames=3, patch_size=32, batch_size=2, max_steps=2, eval_steps=2, eval_every=2,
        checkpoint_every=1, log_every=1, chunk_frames=2, chunk_overlap=1,
    )  # fmt: skip
    probe_cfg = dataclasses.replace(
        test_probes._config(work, "probes"), steps=2, train_episodes=2, heldout_episodes=2, checkpoint_every=1
    )
    return {
        "autoencoder": lambda: autoencoder.train(ae_cfg),
        "autoencoder_shards": lambda: autoencoder.train(ae_shards_cfg),
        "temporal_decoder": lambda: temporal_decoder.train(td_cfg),
        "image_ldm": lambda: image_ldm.train(ildm_cfg),
        "video_ldm": lambda: video_ldm.train(vldm_cfg),
        "interpolation": lambda: interpolation.train(interp_cfg),
        "reward": lambda: reward.train(reward_cfg),
        "upsampler": lambda: upsampler.train(ups_cfg),
        "upsampler_temporal": lambda: upsampler_temporal.train(upt_cfg),
        "probes": lambda: probes.train(probe_cfg),
    }


def main(work: Path, out: Path, stages: tuple[str, ...] = STAGES) -> None:
    import safetensors.torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from drivesim import model_folder
    from drivesim.training import run_state

    rank = int(os.environ.get("RANK", "0"))
    mine = out / f"rank{rank}"
    mine.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    # Spies: every weight file goes through safetensors' save_file in these two modules.
    writes: list[str] = []
    original_save = safetensors.torch.save_file

    def save_spy(tensors, filename, metadata=None):
        writes.append(str(filename))
        return original_save(tensors, filename, metadata)

    model_folder.save_file = save_spy
    run_state.save_file = save_spy
    optimizers: list[torch.optim.Optimizer] = []

    def on_step(opt, args, kwargs) -> None:
        if not any(o is opt for o in optimizers):
            optimizers.append(opt)

    register_optimizer_step_post_hook(on_step)
    ddp_init = torch.nn.parallel.DistributedDataParallel.__init__
    wrappers = [0]

    def ddp_spy(self, *args, **kwargs):
        wrappers[0] += 1
        ddp_init(self, *args, **kwargs)

    torch.nn.parallel.DistributedDataParallel.__init__ = ddp_spy

    # One process group for the whole run: each stage's init_distributed() joins it and its cleanup()
    # may not tear it down. Re-creating the default group in one process is racy under torchrun
    # (torch reuses the store keys "default_pg/0/..." of the destroyed group, so a rank can read its
    # peer's stale address and fail with "Connection refused").
    import torch.distributed as dist

    from drivesim.training.distributed import init_distributed

    info = init_distributed("cpu")
    destroy = dist.destroy_process_group
    dist.destroy_process_group = lambda group=None: None
    runners = _runners(work)
    for stage in stages:
        writes.clear()
        optimizers.clear()
        wrappers[0] = 0
        runners[stage]()
        params = {
            f"opt{i}.param{j}": p.detach().cpu().contiguous()
            for i, opt in enumerate(optimizers)
            for j, p in enumerate(q for group in opt.param_groups for q in group["params"])
        }
        original_save(params, str(mine / f"{stage}.safetensors"))
        (mine / f"{stage}.json").write_text(json.dumps({"writes": list(writes), "ddp_wrappers": wrappers[0]}))
        print(f"rank {rank}: {stage} done ({len(params)} parameters)", flush=True)
    if info.distributed:
        dist.barrier()
        destroy()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), tuple(sys.argv[3:]) or STAGES)  # optional: a subset, in order
    # Leave without interpreter finalization (see _ddp_script.py): gloo teardown can abort a process
    # on a loaded machine after the results are already written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
