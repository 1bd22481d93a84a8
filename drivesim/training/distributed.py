"""One code path for 1 and N processes: torchrun / DistributedDataParallel helpers.

Under `torchrun` the environment holds RANK, LOCAL_RANK and WORLD_SIZE; without it the
run is a single process and every helper here is a no-op. Backend: nccl on CUDA, gloo
on CPU. Only rank 0 writes checkpoints, logs and plots.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def check_batch(owner: str, batch_size: int, info: DistInfo) -> None:
    """The global `batch_size` must split evenly over the ranks (a ValueError names the field)."""
    if batch_size % info.world_size:
        raise ValueError(f"{owner}.batch_size={batch_size} must be divisible by world_size={info.world_size}")


def rank_rows(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's rows of a global batch: rows r * n / N .. (r + 1) * n / N (all of them in one process)."""
    per = x.shape[0] // info.world_size
    return x[info.rank * per : (info.rank + 1) * per]


def rank_generator(generator: torch.Generator, seed: int, step: int, info: DistInfo) -> torch.Generator:
    """After the shared global batch is drawn: `generator` in one process, else this rank's own
    generator seeded by (seed, step, rank), so the ranks' noise differs."""
    if not info.distributed:
        return generator
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + info.rank)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group if launched by torchrun; pick this rank's device.

    device: "auto" (CUDA if available else CPU), "cpu" or "cuda".
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device={device!r}; allowed: 'auto', 'cpu', 'cuda'")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but CUDA is not available")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def wrap_ddp(model: nn.Module, info: DistInfo) -> nn.Module:
    """DistributedDataParallel over `model` when distributed, else `model` itself."""
    if not info.distributed:
        return model
    ids = [info.local_rank] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of `value` over ranks (returns a new tensor)."""
    out = value.detach().clone()
    if info.distributed:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= info.world_size
    return out


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when `flag` is True on any (a collective: every rank calls it), e.g. so that
    all ranks stop at the same step when one runs out of time; `flag` itself in one process."""
    if not info.distributed:
        return flag
    return float(all_reduce_mean(torch.tensor(float(flag)), info)) > 0


def all_gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """Every rank's picklable `value`, in rank order (a collective: every rank calls it); [value] in one process."""
    if not info.distributed:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def shard(items: list, info: DistInfo) -> list:
    """This rank's share of `items` (round robin), e.g. for generation or evaluation jobs."""
    return items[info.rank :: info.world_size]


def shard_batch_indices(n: int, global_batch: int, step: int, info: DistInfo, seed: int) -> list[int]:
    """Indices of this rank's slice of the global batch at `step`.

    The global batch is drawn from a permutation seeded by (seed, epoch) so it is the same
    on every rank and independent of world size: N processes with global_batch B see
    exactly the samples one process with batch B sees, split in rank order.
    """
    if global_batch % info.world_size:
        raise ValueError(f"global_batch={global_batch} must be divisible by world_size={info.world_size}")
    per_epoch = max(1, n // global_batch)
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    batch = perm[k * global_batch : (k + 1) * global_batch].tolist()
    per_rank = global_batch // info.world_size
    return batch[info.rank * per_rank : (info.rank + 1) * per_rank]


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """precision: "fp32", "bf16" (CPU or CUDA) or "fp16" (CUDA only)."""
    if precision == "fp32":
        yield
        return
    if precision not in ("bf16", "fp16"):
        raise ValueError(f"precision={precision!r}; allowed: 'fp32', 'bf16', 'fp16'")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs CUDA; use 'bf16' or 'fp32' on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        # Every rank finishes its collectives before any rank tears gloo down: a rank that
        # destroys its group while a peer still talks to it can abort the peer at exit.
        dist.barrier()
        dist.destroy_process_group()
