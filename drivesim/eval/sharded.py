"""The evaluation suite split over ranks (torchrun): each rank runs the probes over its share of the
clips, rank 0 gathers the per-clip results and computes the Fréchet distances and aggregates.

Rank r takes clips r, r + N, ... of each set (`drivesim.training.distributed.shard`, as
`drivesim generate` does for scenarios). The per-clip results travel to rank 0 with
`torch.distributed.gather_object` (gloo on CPU, nccl on CUDA) and are put back in clip order, so
rank 0 pools exactly what one process would pool: the report equals the single-process one up to
float round-off of the probe forward passes on different devices or thread counts. Without
torchrun (world size 1) this is `drivesim.eval.suite.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import torch.distributed as dist

from drivesim.eval.probe_io import Probes
from drivesim.eval.results import EvalOptions, EvalReport
from drivesim.eval.suite import (
    GeneratedClip,
    PreparedGenerated,
    PreparedReal,
    evaluate,
    prepare_generated,
    prepare_real,
)
from drivesim.eval.torchscript_features import TorchScriptFeatures
from drivesim.eval.video_sets import VideoSet
from drivesim.eval.window_pass import WindowAcc
from drivesim.training.distributed import DistInfo, shard

T = TypeVar("T")


@dataclass(frozen=True)
class ShardResult:
    """One rank's per-clip results: real[k] is real clip rank + k * world_size, likewise generated."""

    rank: int
    real: list[WindowAcc]
    generated: list[GeneratedClip]


def unshard(parts: list[list[T]], num_items: int) -> list[T]:
    """Inverse of `shard`: parts[r] holds items r, r + N, ... (N = len(parts)); back in item order."""
    world = len(parts)
    if world < 1:
        raise ValueError("unshard needs at least one part (one per rank)")
    out: list[T] = [None] * num_items  # type: ignore[list-item]
    for rank, part in enumerate(parts):
        expected = len(range(rank, num_items, world))
        if len(part) != expected:
            raise ValueError(f"rank {rank} returned {len(part)} results; its share of {num_items} items is {expected}")
        out[rank::world] = part
    return out


def _subset(videos: VideoSet, info: DistInfo) -> VideoSet | None:
    mine = shard(list(videos.clips), info)  # rank r: clips r, r + N, ...
    return VideoSet(clips=tuple(mine), source=videos.source) if mine else None


def evaluate_shard(
    real: VideoSet,
    generated: VideoSet,
    probes: Probes,
    options: EvalOptions,
    info: DistInfo,
    fid_net: TorchScriptFeatures | None = None,
    fvd_net: TorchScriptFeatures | None = None,
) -> ShardResult:
    """The expensive part (probe and feature-network passes) for this rank's clips of both sets.
    `real` is the whole real set: a paired generated clip needs its real twin, whichever rank has it."""
    my_real, my_generated = _subset(real, info), _subset(generated, info)
    real_part = prepare_real(my_real, probes, options, fid_net, fvd_net).clips if my_real else []
    gen_part = prepare_generated(my_generated, real, probes, options, fid_net, fvd_net).clips if my_generated else []
    return ShardResult(rank=info.rank, real=real_part, generated=gen_part)


@dataclass(frozen=True)
class MergedShards:
    real: PreparedReal
    generated: PreparedGenerated


def merge_shards(parts: list[ShardResult], real: VideoSet, generated: VideoSet, options: EvalOptions) -> MergedShards:
    """Every rank's ShardResult (in rank order) back into whole prepared sets, clips in order."""
    ranks = [p.rank for p in parts]
    if ranks != list(range(len(parts))):
        raise ValueError(f"merge_shards needs one result per rank in rank order, got ranks {ranks}")
    real_clips = unshard([p.real for p in parts], len(real.clips))
    gen_clips = unshard([p.generated for p in parts], len(generated.clips))
    return MergedShards(
        real=PreparedReal(videos=real, clips=real_clips, options=options),
        generated=PreparedGenerated(videos=generated, clips=gen_clips, options=options),
    )


def _check_all_ranks(error: str | None, info: DistInfo) -> None:
    """Raise the same ValueError on every rank if any rank failed, so no rank waits in a collective
    for one that has left."""
    errors = [error]
    if info.distributed:
        errors = [None] * info.world_size
        dist.all_gather_object(errors, error)
    failed = [f"rank {r}: {e}" for r, e in enumerate(errors) if e is not None]
    if failed:
        raise ValueError("; ".join(failed))


def evaluate_sharded(
    real: VideoSet,
    generated: VideoSet,
    probes: Probes,
    options: EvalOptions,
    info: DistInfo,
    fid_net: TorchScriptFeatures | None = None,
    fvd_net: TorchScriptFeatures | None = None,
) -> EvalReport | None:
    """`evaluate(real, generated, ...)` with the per-clip work split over ranks. Every rank must
    call it with the same sets; rank 0 returns the report, the other ranks return None."""
    if not info.distributed:
        return evaluate(real, generated, probes, options, fid_net, fvd_net)
    part, error = None, None
    try:
        part = evaluate_shard(real, generated, probes, options, info, fid_net, fvd_net)
    except (ValueError, FileNotFoundError) as exc:
        error = str(exc)
    _check_all_ranks(error, info)
    parts: list[ShardResult] | None = [None] * info.world_size if info.is_main else None  # type: ignore[list-item]
    dist.gather_object(part, parts, dst=0)
    if parts is None:
        return None
    merged = merge_shards(parts, real, generated, options)
    return evaluate(merged.real, merged.generated, probes, options, fid_net, fvd_net)
