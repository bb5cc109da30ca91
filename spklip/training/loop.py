"""Contrastive training of SPKLIP on a converted spike dataset.

``train(TrainConfig(data=..., model=..., out=...))`` runs the whole loop: AdamW with a
linear warm-up and cosine decay, gradient clipping, mixed precision on CUDA, a
checkpoint every epoch (``OUT/checkpoints/epoch_NNN/``, ``latest``), one JSON line per
epoch in ``OUT/results.jsonl`` (loss, learning rate, seconds, and the zero-shot Top-1 on
the validation split when there is one), tqdm progress bars, and seeds.

The same code runs alone or under ``torchrun`` (DistributedDataParallel; gloo on CPU,
nccl on GPU; RANK / WORLD_SIZE / LOCAL_RANK from the environment): each process reads
its share of the clips, features are gathered across processes so the contrastive loss
sees the global batch, and rank 0 alone writes files and shows progress.

Everything random is seeded from ``seed`` and the epoch: the crops and prompts of a
sample (``spklip.data``), the shuffle, dropout. A run resumed from epoch k's checkpoint
therefore gives the numbers of an uninterrupted run (exactly on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from spikesim import ValHoldout, splits_record, write_atomic, write_json

from ..checkpoint import (
    CHECKPOINTS,
    epoch_dir_name,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from ..data import CAPTION_MODES, SpikeClips, check_compatible, data_bin, make_loader
from ..errors import SpklipError
from ..evaluation.zeroshot import zero_shot_top1
from ..factory import create_model_from_config, get_model_config, get_recipe
from ..loss import contrastive_loss, prompt_caption_loss
from ..model import SPKLIP
from ..prompts import all_prompt_texts
from ..tokenizer import SpikeTokenizer
from .optim import lr_factor, param_groups

RESULTS = "results.jsonl"
SPLITS = "splits.json"  # the carved validation split: settings, val and train clip paths
BEST = "best.json"  # the epoch with the best validation Top-1 (model selection)


# TrainConfig fields that default (None) to the model's recipe (spklip.factory.TrainRecipe).
_RECIPE_SETTINGS = (
    "epochs", "batch_size", "lr", "captions", "label_aware", "caption_weight",
    "caption_paraphrases",
)  # fmt: skip


@dataclass
class TrainConfig:
    """What a training run needs; None means "the model's recipe" (the ``recipe`` section of
    its config, ``spklip.factory.get_recipe``; the paper's lr 2e-5, batch 8, 30 epochs and
    mixed texts where it says nothing)."""

    data: str | os.PathLike  # converted folder or packed .h5
    out: str | os.PathLike = "runs/spklip"  # run folder: checkpoints/, results.jsonl
    model: str | None = None  # a name from spklip.factory.list_models(); None: spklip-paper
    # (or, with ``resume``, the run's)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # create_model overrides
    epochs: int | None = None
    batch_size: int | None = None  # per process
    lr: float | None = None  # peak learning rate, reached after the warm-up
    weight_decay: float = 0.1  # AdamW; not applied to biases, norms, embeddings, the scale
    warmup: float = 0.05  # warm-up length as a fraction of all steps
    min_lr_ratio: float = 0.0  # the cosine ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0  # max global gradient norm; None: no clipping
    frames: int | None = None  # T model input frames per clip; None: the model config's
    bin: int = 1  # data-side binning: spike frames summed by the loader into each model input
    # frame (see spklip.data); the model's own ``temporal_bin`` is the normal way to bin
    seed: int = 0
    workers: int = 2  # DataLoader worker processes per training process
    resume: bool = False  # continue from OUT/checkpoints/latest
    captions: str | None = None  # "caption" | "prompt" | "mixed" (spklip.data.SpikeClips)
    label_aware: bool | None = None  # clips of one class in a batch are not negatives
    caption_weight: float | None = None  # captions "both": weight of the caption term
    caption_paraphrases: bool | None = None  # draw each training caption from the clip's
    # caption and its paraphrases (None: the model's recipe)
    class_run: int = 1  # > 1: batches made of runs of this many clips of one class
    # (spklip.data.ClassRunSampler: within-class negatives for the caption term); 1: shuffled
    exclude_classes: tuple[str, ...] = ()  # classes left out of training (true zero-shot)
    train_split: str = "train"
    # Zero-shot Top-1 after each epoch and model selection (OUT/best.json) on this split;
    # "val" is carved from train_split by group (spikesim.carve_val, recorded in
    # OUT/splits.json) unless the dataset has its own. The test split is never read.
    val_split: str | None = "val"
    val_fraction: float = 0.2  # share of the training group names carved into "val"
    val_seed: int = 0  # seed of that carving (fixed across training seeds: one val set)
    amp: bool = True  # bfloat16/float16 autocast, on CUDA only
    device: str | None = None  # None: cuda:LOCAL_RANK when available, else cpu
    progress: bool = True  # tqdm bars (rank 0 only)
    tokenizer_vocab: int | None = None  # None: the model's text.vocab_size
    threads: int | None = None  # torch CPU threads per process; None: torch's default
    stop_after: int | None = None  # end after this epoch, as if interrupted (the schedule
    # still plans for `epochs`; `resume` continues)
    keep_last: int | None = 3  # epoch checkpoints kept: the newest N plus the best by
    # val_top1; None keeps them all

    def resolved(self) -> TrainConfig:
        """A copy with every None default filled in for ``self.model``."""
        model = self.model or "spklip-paper"
        recipe = get_recipe(model)
        chosen = {
            name: getattr(recipe, name) if getattr(self, name) is None else getattr(self, name)
            for name in _RECIPE_SETTINGS
        }
        return dataclasses.replace(self, model=model, **chosen)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        return d


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    started: bool = False  # whether we called init_process_group (and must destroy it)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _setup_distributed(device: str | None) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is not None:
        dev = torch.device(device)
    elif torch.cuda.is_available():
        dev = torch.device("cuda", local % torch.cuda.device_count())
    else:
        dev = torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    started = False
    if world > 1 and not (dist.is_available() and dist.is_initialized()):
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        started = True
    return _Dist(rank, world, local, dev, started)


def _gather(t: torch.Tensor, d: _Dist) -> torch.Tensor:
    """All processes' ``t`` concatenated; this process's slice keeps its gradient."""
    if d.world == 1:
        return t
    parts = [torch.zeros_like(t) for _ in range(d.world)]
    dist.all_gather(parts, t.detach().contiguous())
    parts[d.rank] = t
    return torch.cat(parts)


def _loss_backward(
    net: torch.nn.Module,
    model: SPKLIP,
    batch: dict[str, Any],
    d: _Dist,
    loss_options: dict[str, Any],
    scaler: torch.amp.GradScaler,
    use_amp: bool,
    instance: bool = False,
    caption_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Forward this process's share of the global batch, the contrastive loss over the
    gathered global batch, and its backward: the gradients are those of one process holding
    the whole global batch (tests/spklip/training/test_ddp.py checks it).

    Why the scaling: every process computes the loss of the global batch, but gradients flow
    only through its own clips' features, so the encoders' gradients summed over processes
    are the full gradient, while DDP averages them (1/world of it); ``logit_scale`` enters
    every process's loss whole, so each holds its full gradient, which the average keeps.
    Scaling the loss by world and the scale's gradient back by 1/world makes both exact."""
    spikes = batch["spikes"].to(d.device, non_blocking=True)
    labels = batch["label"].to(d.device, non_blocking=True)
    # Which texts are clips' own captions (only their clip is right for them), for a loss
    # with instance targets (spklip.loss, "caption-aware").
    captions = _gather(batch["caption"].to(d.device, torch.uint8), d).bool() if instance else None
    texts = list(batch["text"])
    both = "caption_text" in batch  # captions "both": prompts then captions, one text pass
    if both:
        texts += list(batch["caption_text"])
    tokens = model.tokenizer.encode_batch(texts, model.config.text.context_length)
    tokens = tokens.to(d.device, non_blocking=True)
    with torch.autocast(d.device.type, dtype=_amp_dtype(d.device), enabled=use_amp):
        feats = net(spikes, tokens)
        if both:
            n = len(batch["text"])
            text = feats["text_features"].float()
            return _backward(
                prompt_caption_loss(
                    _gather(feats["video_features"].float(), d),
                    _gather(text[:n], d),
                    _gather(text[n:], d),
                    feats["logit_scale"].float(),
                    _gather(labels, d),
                    caption_weight=caption_weight,
                    **loss_options,
                ),
                model,
                d,
                scaler,
            )
        losses = contrastive_loss(
            _gather(feats["video_features"].float(), d),
            _gather(feats["text_features"].float(), d),
            feats["logit_scale"].float(),
            _gather(labels, d),
            **loss_options,  # label_aware, reduction ("sum": Eq. 6's, "mean": ours)
            instance=captions,
        )
    return _backward(losses, model, d, scaler)


def _backward(
    losses: dict[str, torch.Tensor], model: SPKLIP, d: _Dist, scaler: torch.amp.GradScaler
) -> dict[str, torch.Tensor]:
    """The backward of :func:`_loss_backward` (see there why the loss is scaled by world)."""
    scaler.scale(losses["loss"] * d.world).backward()
    if d.world > 1 and model.logit_scale.grad is not None:
        model.logit_scale.grad.div_(d.world)
    return losses


def _amp_dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    # Dropout and any other torch draw of this epoch depend on (seed, epoch, rank) only.
    torch.manual_seed((seed * 1_000_003 + epoch * 1009 + rank) % (2**63))


def best_epoch(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the highest ``val_top1`` (the earliest on ties), None without any."""
    scored = [r for r in rows if "val_top1" in r]
    return max(scored, key=lambda r: (r["val_top1"], -r["epoch"])) if scored else None


def _write_best(out: Path, rows: list[dict[str, Any]]) -> None:
    best = best_epoch(rows)
    if best is not None:
        where = out / CHECKPOINTS / epoch_dir_name(int(best["epoch"]))
        write_json(out / BEST, {"epoch": best["epoch"], "val_top1": best["val_top1"],
                                "checkpoint": str(where)})  # fmt: skip


def read_results(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``OUT/results.jsonl`` (empty when absent)."""
    path = Path(out) / RESULTS
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _build_model(cfg: TrainConfig, data: SpikeClips | None, ckpt: Any) -> SPKLIP:
    if ckpt is not None:
        model = create_model_from_config(ckpt.config["model_config"])
        model.load_state_dict(ckpt.state_dict)
        model.tokenizer = SpikeTokenizer.from_json(ckpt.tokenizer_json)
        return model
    overrides = dict(cfg.model_overrides)
    if cfg.frames is not None:
        overrides["frames"] = cfg.frames
    if data is not None and "image_size" not in overrides:
        # Build the model for the data's frame size (the attention pooling grid follows it).
        overrides["image_size"] = [data.height, data.width]
    config = get_model_config(cfg.model, **overrides)
    return create_model_from_config(config, seed=cfg.seed)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a run; see the module docstring. Returns ``{"out", "epochs",
    "checkpoint" (the last), "best_checkpoint" (the one best on validation, which
    ``best.json`` names; the last without validation), "best" (its results row), "results":
    [rows], "train_seconds", "world_size"}`` (on every rank; files are written by rank 0
    only)."""
    if config.keep_last is not None and config.keep_last < 1:
        raise SpklipError(f"keep_last must be >= 1 (or None: keep all), got {config.keep_last}")
    if config.resume:
        config = _resume_settings(config)
    cfg = config.resolved()
    if cfg.captions not in CAPTION_MODES:
        raise SpklipError(f"captions must be one of {', '.join(CAPTION_MODES)}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or not cfg.lr > 0:
        raise SpklipError("epochs and batch size must be >= 1 and the learning rate > 0")
    if not cfg.caption_weight >= 0:
        raise SpklipError(f"caption_weight must be a number >= 0, got {cfg.caption_weight!r}")
    get_model_config(cfg.model)  # an unknown model name fails before any work
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    d = _setup_distributed(cfg.device)
    try:
        return _train(cfg, d)
    finally:
        if d.started:
            dist.destroy_process_group()


# Settings a resumed run takes from its run folder; the rest (data, out, device, threads,
# workers, progress, stop_after, keep_last) may change from one session to the next.
_RUN_SETTINGS = (
    "model", "model_overrides", "epochs", "batch_size", "lr", "weight_decay", "warmup",
    "min_lr_ratio", "grad_clip", "frames", "bin", "seed", "captions", "label_aware",
    "caption_weight", "caption_paraphrases", "class_run",
    "train_split", "val_split", "amp", "tokenizer_vocab",
)  # fmt: skip


def _resume_settings(config: TrainConfig) -> TrainConfig:
    """``config`` with every run setting taken from the run's latest checkpoint. A setting
    counts as given when it differs from TrainConfig's default; a given setting that differs
    from the run's raises ``SpklipError`` (a resumed run must follow its own recipe: another
    model, learning rate or caption mode would silently continue a different experiment)."""
    found = latest_checkpoint(config.out)
    if found is None:
        return config  # nothing to resume: a fresh run
    saved = load_checkpoint(found).config.get("train_config") or {}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    defaults["model_overrides"] = {}
    changes: dict[str, Any] = {}
    clashes = []
    for name in _RUN_SETTINGS:
        if name not in saved:
            continue
        given, old = getattr(config, name), saved[name]
        if given == defaults[name] or given == old:
            changes[name] = old
        elif name == "frames" and old is None:
            continue  # the checkpoint's model config decides (checked below)
        else:
            clashes.append(f"{name}={given!r} (the run has {old!r})")
    if clashes:
        raise SpklipError(
            f"{config.out}: --resume continues the run with its own settings, but "
            f"{', '.join(clashes)}; drop those options, or start a new run in another --out"
        )
    return dataclasses.replace(config, **changes)


def _prune_checkpoints(ckdir: Path, keep: int | None, history: list[dict[str, Any]]) -> None:
    """Delete epoch folders beyond the newest ``keep``, except the best by ``val_top1``
    (:func:`best_epoch`, the one ``best.json`` names)."""
    if keep is None:
        return
    folders = sorted(p for p in ckdir.glob("epoch_*") if p.is_dir() and not p.name.startswith("."))
    kept = {p.name for p in folders[-keep:]}
    best = best_epoch(history)  # the checkpoint best.json names is never deleted
    if best is not None:
        kept.add(epoch_dir_name(int(best["epoch"])))
    for folder in folders:
        if folder.name not in kept:
            shutil.rmtree(folder, ignore_errors=True)


def _train(cfg: TrainConfig, d: _Dist) -> dict[str, Any]:
    t_start = time.perf_counter()
    out = Path(cfg.out)
    ckpt = None
    if cfg.resume:
        found = latest_checkpoint(out)
        if found is not None:
            ckpt = load_checkpoint(found, with_train_state=True)
    elif latest_checkpoint(out) is not None:
        raise SpklipError(
            f"{out} already holds checkpoints; pass --resume to continue that run, or "
            "choose another --out"
        )
    if ckpt is not None:
        saved = ckpt.config.get("train_config", {})
        # The model and the data pipeline must stay those of the interrupted run.
        cfg = dataclasses.replace(
            cfg,
            frames=ckpt.config["model_config"]["frames"],
            bin=data_bin(ckpt.config),
        )
        if saved.get("data") and Path(saved["data"]) != Path(cfg.data) and d.main:
            tqdm.write(f"note: resuming on {cfg.data}, the run started on {saved['data']}")

    frames = cfg.frames
    if frames is None:
        frames = cfg.model_overrides.get("frames") or get_model_config(cfg.model).frames
    holdout = None
    if cfg.val_split == "val":
        # A resumed run keeps the clips it validated on, whatever the settings now say.
        recorded = ckpt.config.get("val_holdout") if ckpt is not None else None
        holdout = (
            ValHoldout.from_record(recorded)
            if recorded
            else ValHoldout(cfg.val_fraction, cfg.val_seed, from_split=cfg.train_split)
        )
    train_set = SpikeClips(
        cfg.data,
        frames=frames,
        split=cfg.train_split,
        augment=True,
        captions=cfg.captions,
        paraphrases=bool(cfg.caption_paraphrases),
        seed=cfg.seed,
        bin=cfg.bin,
        exclude=cfg.exclude_classes,
        holdout=holdout,
    )
    holdout = train_set.holdout  # None when the dataset has a "val" split of its own
    val_record = None
    if holdout is not None:
        val_record = splits_record(train_set.all_records(), holdout)
        holdout = ValHoldout.from_record(val_record)
    val_set = None
    carved = val_record is not None and bool(val_record["val"])
    if (
        cfg.val_split
        and holdout is not None
        and not carved
        and cfg.val_split not in train_set.splits
    ):
        if d.main:  # too few groups to carve from (e.g. one training group per class)
            warnings.warn(
                f"{cfg.data}: no validation clips could be carved from train (a class needs "
                "two training groups); epochs are not validated and the last one is kept",
                stacklevel=2,
            )
    elif cfg.val_split and (cfg.val_split in train_set.splits or carved):
        val_set = SpikeClips(
            cfg.data,
            frames=frames,
            split=cfg.val_split,
            augment=False,
            bin=cfg.bin,
            exclude=cfg.exclude_classes,
            holdout=holdout,
        )

    model = _build_model(cfg, train_set, ckpt)
    check_compatible(model, train_set)
    if model.tokenizer is None:
        texts = [c.caption for c in train_set.records if c.caption]
        texts += all_prompt_texts(train_set.classes, train_set.templates)
        tok_json = None
        if d.main:  # one tokenizer for every process
            vocab = cfg.tokenizer_vocab or model.config.text.vocab_size
            tok_json = SpikeTokenizer.train(texts, vocab_size=vocab).to_json()
        if d.world > 1:
            box = [tok_json]
            dist.broadcast_object_list(box, src=0)
            tok_json = box[0]
        model.tokenizer = SpikeTokenizer.from_json(tok_json)
    model.to(d.device)
    net: torch.nn.Module = model
    if d.world > 1:
        ids = [d.device.index] if d.device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)

    loader, sampler = make_loader(
        train_set,
        batch_size=cfg.batch_size,
        shuffle=True,
        workers=cfg.workers,
        seed=cfg.seed,
        rank=d.rank,
        world_size=d.world,
        drop_last=True,
        class_run=cfg.class_run,
    )
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise SpklipError(
            f"{cfg.data}: no full batch of {cfg.batch_size} clips; lower --batch-size"
        )
    total = steps_per_epoch * cfg.epochs
    warmup = round(cfg.warmup * total)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup, cfg.min_lr_ratio)
    )
    use_amp = cfg.amp and d.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and _amp_dtype(d.device) == torch.float16)

    start_epoch, history = 1, []
    if ckpt is not None:
        state = ckpt.train_state
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and use_amp:
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"]) + 1
        history = list(ckpt.config.get("history", []))
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        if history:
            _write_results(out / RESULTS, history)  # drops rows of epochs after the checkpoint
        else:  # no epoch saved yet: no results file (an empty one would say "trained")
            (out / RESULTS).unlink(missing_ok=True)
        if val_record is not None:
            write_json(out / SPLITS, {"data": str(cfg.data), **val_record})

    tok_json = model.tokenizer.to_json()
    model_config = model.config.to_dict()
    last_epoch = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    recipe = get_recipe(cfg.model)
    loss_options = {"label_aware": cfg.label_aware, "reduction": recipe.reduction}
    for epoch in range(start_epoch, last_epoch + 1):
        t0 = time.perf_counter()
        _seed_epoch(cfg.seed, epoch, d.rank)
        sampler.set_epoch(epoch)
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=d.device)
        bar = tqdm(
            loader,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not (d.main and cfg.progress),
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            optimizer.zero_grad(set_to_none=True)
            losses = _loss_backward(
                net,
                model,
                batch,
                d,
                loss_options,
                scaler,
                use_amp,
                instance=recipe.instance,
                caption_weight=cfg.caption_weight,
            )
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += losses["loss"].detach().double()
            bar.set_postfix(
                loss=f"{losses['loss'].item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}"
            )
        if d.world > 1:
            dist.all_reduce(loss_sum)
        loss = loss_sum.item() / (steps_per_epoch * d.world)

        row: dict[str, Any] = {
            "epoch": epoch,
            "loss": round(loss, 6),
            "lr": scheduler.get_last_lr()[0],
            "logit_scale": round(float(model.scale().item()), 4),
            "steps": steps_per_epoch * epoch,
        }
        if d.main:
            if val_set is not None:
                row["val_top1"] = zero_shot_top1(model, val_set, batch_size=cfg.batch_size)
            row["seconds"] = round(time.perf_counter() - t0, 2)
            history.append(row)
            state = {
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "seed": cfg.seed,
                "torch_rng": torch.get_rng_state(),
            }
            save_checkpoint(
                out / CHECKPOINTS / epoch_dir_name(epoch),
                model,
                config={
                    "model_name": cfg.model,
                    "model_overrides": cfg.model_overrides,
                    "model_config": model_config,
                    "data_bin": cfg.bin,
                    "train_config": cfg.to_dict(),
                    "classes": train_set.classes,
                    "exclude_classes": list(train_set.excluded),
                    "epoch": epoch,
                    "world_size": d.world,
                    "history": history,
                    "val_holdout": None
                    if val_record is None
                    else {k: v for k, v in val_record.items() if k != "train"},
                },
                tokenizer_json=tok_json,
                train_state=state,
            )
            _write_results(out / RESULTS, history)
            _prune_checkpoints(out / CHECKPOINTS, cfg.keep_last, history)
            _write_best(out, history)
            if cfg.progress:
                shown = ", ".join(
                    f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                )
                tqdm.write(shown)
        d.barrier()

    last = latest_checkpoint(out)
    best = best_epoch(history)
    # The model selected on validation; the last epoch when no validation split was carved.
    chosen = out / CHECKPOINTS / epoch_dir_name(int(best["epoch"])) if best else last
    return {
        "out": str(out),
        "epochs": cfg.epochs,
        "checkpoint": str(last) if last else None,
        "best_checkpoint": str(chosen) if chosen else None,
        "best": best,
        "results": read_results(out) if d.main else history,
        "train_seconds": round(time.perf_counter() - t_start, 2),
        "world_size": d.world,
    }
