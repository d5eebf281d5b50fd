"""Training on several processes: PyTorch's DistributedDataParallel (DDP), started by torchrun.

`torchrun --nproc_per_node N -m fmsnb pretrain ...` starts N copies of the command with RANK,
LOCAL_RANK and WORLD_SIZE in their environment; `start` joins them into one process group (NCCL
between GPUs, gloo between CPUs), each process on the GPU of its LOCAL_RANK. Without torchrun
(WORLD_SIZE unset or 1) nothing here acts, and training runs in one process as it always did.
`train` gives every rank its slice of each step's global batch (`share`), DDP averages the
gradients, and the ranks agree on what each knows only for its slice (`mean`, `maximum`).
`main_first` lets rank 0 make files the others then read (corpora, the caption cache, an
imported release) and `from_main` hands them its answers; only rank 0 writes a run's files. An
engine of our own was not needed: DDP is PyTorch's, and Hugging Face Accelerate would add a
dependency and a launcher of its own for the same averaging.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes: rank 0 of 1 without torchrun."""
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and summaries."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def launched() -> bool:
    """True in a process that torchrun started among several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current() -> Group:
    """The process group `start` joined, or the single process (rank 0 of 1)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Group()
    return Group(dist.get_rank(), dist.get_world_size())


def start(device) -> torch.device:
    """Join the process group torchrun set up (nothing to do without torchrun) and return the
    device this process trains on: `device` itself, except that "cuda" becomes this process's
    own GPU, cuda:LOCAL_RANK. A GPU other than its own is an error naming the setting."""
    device = torch.device(device)
    if not launched():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.index not in (None, local):
            raise ValueError(f"--device {device}: under torchrun each process trains on the GPU "
                             f"of its LOCAL_RANK (here cuda:{local}); give --device cuda")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def share(batch_size: int, group: Group) -> slice:
    """The slice of a step's global batch (batch_size,) that this rank trains on: rank r of W
    takes the r-th of W equal parts. ValueError unless W divides the batch."""
    if batch_size % group.size:
        fits = [n for n in range(2, batch_size + 1) if batch_size % n == 0]
        raise ValueError(f"batch_size {batch_size} does not split evenly over {group.size} "
                         f"processes (WORLD_SIZE): use a number of processes that divides it "
                         f"({', '.join(map(str, fits)) or 'none but 1'}), or another batch_size")
    n = batch_size // group.size
    return slice(group.rank * n, (group.rank + 1) * n)


def mean(x: torch.Tensor, group: Group) -> torch.Tensor:
    """x averaged over the processes (x itself in one process); x on the process's device."""
    if not group.parallel:
        return x
    total = x.detach().clone()
    dist.all_reduce(total)
    return total / group.size


def maximum(n: int, group: Group, device) -> int:
    """The largest of the processes' values of n (n itself in one process)."""
    if not group.parallel:
        return n
    value = torch.tensor(n, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return int(value)


def barrier(group: Group) -> None:
    """Wait until every process reaches this point."""
    if group.parallel:
        dist.barrier()


@contextmanager
def main_first(group: Group):
    """Rank 0 runs the block first, the other ranks once it has finished: for files that rank 0
    makes and the others then read. A failure on rank 0 ends the run: torchrun then stops the
    ranks waiting here."""
    if not group.main:
        barrier(group)
    yield
    if group.main:
        barrier(group)


def from_main(obj, group: Group):
    """Rank 0's value of a small picklable `obj` (a path, a number), on every rank."""
    if not group.parallel:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
