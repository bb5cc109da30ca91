"""DistributedDataParallel: two processes (gloo on loopback) give the gradients of one
process holding the same global batch, for every parameter including logit_scale.

The model runs in eval mode for the comparison: BatchNorm in training mode normalises
each process's share with its own batch statistics (there is no SyncBatchNorm on CPU) and
dropout draws differ per process, so only the gradient arithmetic of the step (gather,
loss, DDP's averaging, ``spklip.training.loop._loss_backward``) is compared here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from spklip.factory import create_model_from_config, get_model_config
from spklip.prompts import all_prompt_texts, class_prompt
from spklip.tokenizer import SpikeTokenizer
from spklip.training.loop import _loss_backward, _setup_distributed
from tests.spklip.training.test_loop import MINI

CLASSES = ["MoveLeft", "MoveRight", "Grow"]
GLOBAL_BATCH = 6


def _global_batch() -> dict:
    rng = np.random.default_rng(0)
    spikes = (rng.random((GLOBAL_BATCH, 12, 8, 16)) < 0.3).astype(np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 1])
    return {
        "spikes": torch.from_numpy(spikes),
        "label": torch.from_numpy(labels),
        "text": [class_prompt(CLASSES[k]) for k in labels],
    }


def first_step_grads(world: int, rank: int) -> dict[str, torch.Tensor]:
    """Gradients after one step's backward of this process's share of the global batch."""
    d = _setup_distributed("cpu")
    assert (d.world, d.rank) == (world, rank)
    config = get_model_config("spklip-tiny", **MINI, image_size=[8, 16])
    model = create_model_from_config(config, seed=0)
    model.tokenizer = SpikeTokenizer.train(all_prompt_texts(CLASSES), vocab_size=300)
    model.eval()
    net = DistributedDataParallel(model) if world > 1 else model
    share = GLOBAL_BATCH // world
    batch = {k: v[rank * share : (rank + 1) * share] for k, v in _global_batch().items()}
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    _loss_backward(net, model, batch, d, {"label_aware": True, "reduction": "mean"}, scaler, False)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    if d.started:
        dist.destroy_process_group()
    return grads


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    grads = first_step_grads(world, rank)
    torch.save(grads, f"{out}.{rank}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_gradients_of_one_with_the_same_global_batch(tmp_path: Path):
    single = first_step_grads(1, 0)
    out = str(tmp_path / "grads")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    assert "logit_scale" in single and single["logit_scale"].abs().item() > 0
    # float32 sums in another order: components that are zero in exact arithmetic (e.g. the
    # attention pool's key bias) come out as ~1e-9 noise, so tolerances are set against the
    # largest gradient of the model
    atol = 1e-5 * max(float(g.abs().max()) for g in single.values())
    for name, g in single.items():
        for grads in ranks:  # DDP leaves every process with the same, full gradient
            assert torch.allclose(grads[name], g, rtol=1e-4, atol=atol), name
