"""Spike clips for training and evaluation: a torch Dataset over a converted dataset.

Reads a converted folder or a packed ``.h5`` through ``spikesim.converted.open_dataset``,
takes ``frames * bin`` consecutive spike frames per clip (a random temporal crop in
training, the centred window in evaluation), unpacks the bits to uint8 0/1 (the model turns
them into floats on its device, so batches stay 8x smaller than float32 until then),
optionally sums every ``bin`` consecutive frames into one count frame (temporal binning),
and pairs each clip with a text: its own caption, a class prompt, or either.

Temporal binning: with ``bin = k`` an item is ``frames`` frames of spike counts in
[0, k], each the sum of k raw spike frames (a TFP-like exposure of k steps). A small model
trained from scratch on little data generalises far better from counts than from raw
binary frames, whose per-frame firing phases it otherwise memorises (docs/training.md).

Every random draw comes from a generator seeded with ``(seed, epoch, clip index)``, so a
sample is the same whatever the number of loader workers or processes, and a resumed run
sees exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from spikesim import (
    SpikesimError,
    ValHoldout,
    carve_val,
    open_dataset,
    pick_spread,
    unpack_frames,
)

from .checkpoint import Checkpoint, load_model
from .device import pick_device
from .errors import SpklipError
from .model import SPKLIP
from .prompts import TEMPLATES, class_prompt, random_prompt

CaptionMode = Literal["caption", "prompt", "mixed", "both"]
CAPTION_MODES: tuple[str, ...] = ("caption", "prompt", "mixed", "both")


class ShortClipWarning(UserWarning):
    """Some clips have fewer frames than asked; they are padded with empty frames."""


def unpack_spikes(packed: np.ndarray, height: int, width: int, flipud: bool) -> np.ndarray:
    """Unpack ``.dat`` frames to image order through the one bit layout
    (``spikesim.unpack_frames``): ``packed`` uint8 (n, H*W//8) in file order -> uint8 0/1
    (n, H, W), C-contiguous (a view of the bool array, no copy)."""
    return unpack_frames(packed, height, width, flipud=flipud).view(np.uint8)


def bin_frames(spikes: np.ndarray, k: int) -> np.ndarray:
    """Sum every ``k`` consecutive frames: uint8 (n*k, H, W) 0/1 -> uint8 (n, H, W) counts
    in [0, k]. ``k`` = 1 returns the input."""
    if k == 1:
        return spikes
    n = spikes.shape[0] // k
    return spikes[: n * k].reshape(n, k, *spikes.shape[1:]).sum(axis=1, dtype=np.uint8)


def crop_start(n_frames: int, frames: int, rng: np.random.Generator | None) -> int:
    """First frame of the ``frames``-long window of a clip of ``n_frames``: uniform
    over all valid starts with ``rng``, centred without one; 0 for a short clip."""
    room = n_frames - frames
    if room <= 0:
        return 0
    if rng is None:
        return room // 2
    return int(rng.integers(0, room + 1))


class SpikeClips(Dataset):
    """Clips of a converted spike dataset, as ``(frames, H, W)`` uint8 tensors with a text.

    ``path``: a converted folder or packed ``.h5``. ``split``: keep only clips of this
    split (``"train"``, ``"test"``, ...), or None for all. ``frames``: T frames per item.
    ``bin``: raw spike frames summed into each item frame (1: raw 0/1 spikes; at most 255).
    ``augment``: random temporal crop and random prompt template (else the centred window
    and the first template); it never selects a split (``split`` does).
    ``exclude``: class names whose clips are left out (training without them; labels keep
    their places in ``classes``).
    ``captions``: ``"caption"`` uses each clip's own caption (its class prompt when it has
    none), ``"prompt"`` always a class prompt, ``"mixed"`` either with equal odds in training
    (the caption in evaluation), ``"both"`` a class prompt as ``text`` and the caption as
    ``caption_text`` in training (two losses, spklip.loss.prompt_caption_loss; the caption
    in evaluation). ``paraphrases``: in training, a clip's caption is drawn each time from
    its caption and the paraphrases its source listed (``ClipRecord.paraphrases``, which
    ``spikesim convert`` copies from ``captions.jsonl``); evaluation always uses the
    caption. ``seed``: base seed.

    Validation: when the dataset has no ``"val"`` split of its own, ``split="val"`` is carved
    from the training clips by group (``spikesim.carve_val``) with ``holdout`` (None: the
    default ``ValHoldout()``, 0.2 of the group names, seed 0); with a ``holdout`` given,
    ``split="train"`` is the rest of the training clips, so the two never share a group.

    An item is a dict: ``spikes`` uint8 (T, H, W) (0/1, or counts in [0, bin]), ``label`` int,
    ``text`` str, ``caption`` bool (``text`` is the clip's own caption, not a class prompt),
    ``index`` int (position in this dataset); with ``captions="both"`` and ``augment`` also
    ``caption_text`` str (the clip's caption, its class prompt when it has none). Indexing
    with ``(epoch, i)`` draws the random crop of that epoch (what :class:`EpochSampler`
    yields); a plain ``i`` is epoch 0.

    The dataset file is opened lazily in each process (loader workers included) and is
    never pickled into workers.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        frames: int,
        split: str | None = None,
        augment: bool = False,
        captions: CaptionMode = "mixed",
        seed: int = 0,
        templates: Sequence[str] = TEMPLATES,
        bin: int = 1,
        exclude: Sequence[str] = (),
        holdout: ValHoldout | None = None,
        paraphrases: bool = False,
    ) -> None:
        if captions not in CAPTION_MODES:
            raise SpklipError(
                f"captions must be one of {', '.join(CAPTION_MODES)}, got {captions!r}"
            )
        if frames < 1:
            raise SpklipError(f"frames must be at least 1, got {frames}")
        if not 1 <= bin <= 255:
            raise SpklipError(f"bin must be between 1 and 255 frames, got {bin}")
        self.path = Path(path)
        if not self.path.exists():
            raise SpklipError(
                f"{self.path}: no such dataset; convert one with `spikesim convert` "
                "(or `spikesim synth` then convert)"
            )
        ds = open_dataset(self.path)
        self.classes: list[str] = list(ds.classes)
        self.height: int = int(ds.height)
        self.width: int = int(ds.width)
        self.flipud: bool = bool(ds.flipud)
        self.splits = sorted({str(c.split) for c in ds.clips})
        # The carving in force (None: the manifest's splits as they are).
        self.holdout: ValHoldout | None = None
        if split == "val" and "val" not in self.splits:
            self.holdout = holdout or ValHoldout()
        elif holdout is not None and split == holdout.from_split and "val" not in self.splits:
            self.holdout = holdout
        side = carve_val(ds.clips, self.holdout) if self.holdout is not None else {}
        # Positions in the underlying dataset, so reads go to the right clip.
        unknown = sorted(set(exclude) - set(self.classes))
        if unknown:
            raise SpklipError(
                f"{self.path}: no class {unknown[0]!r} to exclude; "
                f"classes: {', '.join(self.classes)}"
            )
        self.excluded = tuple(sorted(exclude))
        self._source_index = [
            i
            for i, c in enumerate(ds.clips)
            if (split is None or side.get(c.path, c.split) == split) and c.cls not in self.excluded
        ]
        self.records = [ds.clips[i] for i in self._source_index]
        self._all_records = list(ds.clips)
        _close(ds)
        if not self.records:
            where = f" in split {split!r} (splits present: {', '.join(self.splits) or 'none'})"
            raise SpklipError(
                f"{self.path}: no clips{where if split else ''}; check --data and --split"
            )
        self.frames = int(frames)
        self.bin = int(bin)
        self.raw_frames = self.frames * self.bin  # spike frames read per item
        self.augment = bool(augment)
        self.captions: CaptionMode = captions
        self.paraphrases = bool(paraphrases)
        self.seed = int(seed)
        self.templates = tuple(templates)
        self._ds: Any = None
        self._pid: int | None = None
        short = sum(1 for c in self.records if int(c.frames) < self.raw_frames)
        if short:
            warnings.warn(
                f"{short} of {len(self.records)} clips have fewer than {self.raw_frames} "
                "spike frames; "
                "they are padded with empty frames at the end",
                ShortClipWarning,
                stacklevel=2,
            )

    def __len__(self) -> int:
        return len(self.records)

    def all_records(self) -> list[Any]:
        """Every clip record of the dataset, whatever the split (``ClipRecord``)."""
        return list(self._all_records)

    @property
    def labels(self) -> np.ndarray:
        """int64 (N,) class index of each clip."""
        return np.array([int(c.label) for c in self.records], dtype=np.int64)

    @property
    def has_captions(self) -> bool:
        """Whether any clip carries its own caption."""
        return any(_caption(c) for c in self.records)

    def eval_text(self, i: int) -> str:
        """The text clip ``i`` is retrieved by: its caption, else its class prompt."""
        c = self.records[i]
        return _caption(c) or class_prompt(c.cls, self.templates[0])

    def _dataset(self) -> Any:
        # h5py and memory maps must not cross a fork: each process opens its own.
        if self._ds is None or self._pid != os.getpid():
            self._ds = open_dataset(self.path)
            self._pid = os.getpid()
        return self._ds

    def rng(self, epoch: int, i: int) -> np.random.Generator:
        """The generator of clip ``i`` in ``epoch``."""
        return np.random.default_rng([self.seed, int(epoch), int(i)])

    def read_clip(self, i: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """uint8 (T, H, W): the window of ``T * bin`` spike frames of clip ``i`` (random
        with ``rng``, centred without), zero-padded at the end when the clip is shorter,
        then binned (0/1 when ``bin`` is 1, counts otherwise)."""
        rec = self.records[i]
        n = int(rec.frames)
        start = crop_start(n, self.raw_frames, rng)
        count = min(self.raw_frames, n)
        packed = self._dataset().read_packed(self._source_index[i], start, count)
        spikes = unpack_spikes(np.asarray(packed), self.height, self.width, self.flipud)
        if spikes.shape[0] < self.raw_frames:
            pad = np.zeros((self.raw_frames - count, self.height, self.width), np.uint8)
            spikes = np.concatenate([spikes, pad])
        return bin_frames(spikes, self.bin)

    def text(self, i: int, rng: np.random.Generator | None = None) -> str:
        """The training text of clip ``i`` under the caption mode."""
        return self.text_and_kind(i, rng)[0]

    def text_and_kind(self, i: int, rng: np.random.Generator | None = None) -> tuple[str, bool]:
        """:meth:`text` and whether it is the clip's own caption (True) or a class prompt
        (False): a caption describes this clip alone (spklip.loss, ``instance``)."""
        rec = self.records[i]
        own = _caption(rec)
        if rng is None:  # evaluation: deterministic
            if self.captions == "prompt" or not own:
                return class_prompt(rec.cls, self.templates[0]), False
            return own, True
        use_caption = bool(own) and (
            self.captions == "caption" or (self.captions == "mixed" and rng.random() < 0.5)
        )  # "both": the prompt here, the caption in the item's caption_text
        if use_caption:
            return self.training_caption(i, rng), True
        return random_prompt(rec.cls, rng, self.templates), False

    def training_caption(self, i: int, rng: np.random.Generator) -> str:
        """Clip ``i``'s caption for a training draw: with ``paraphrases``, one of its
        caption and its paraphrases, uniformly; else the caption. '' when it has none."""
        rec = self.records[i]
        own = _caption(rec)
        others = tuple(getattr(rec, "paraphrases", ()) or ()) if self.paraphrases and own else ()
        if not others:
            return own
        k = int(rng.integers(len(others) + 1))
        return own if k == 0 else others[k - 1].strip()

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        i = int(i)
        rng = self.rng(epoch, i) if self.augment else None
        try:
            spikes = self.read_clip(i, rng)
        except (SpikesimError, SpklipError):
            raise
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            # A damaged file (a corrupt HDF5 chunk, an unreadable .dat): one line naming the
            # clip, in a type the main process prints as such (see make_loader).
            raise SpklipError(
                f"{self.path}: clip {self.records[i].path} cannot be read "
                f"({type(err).__name__}: {err}); the dataset is damaged: convert it again"
            ) from None
        text, is_caption = self.text_and_kind(i, rng)
        item = {
            "spikes": torch.from_numpy(spikes),
            "label": int(self.records[i].label),
            "text": text,
            "caption": is_caption,
            "index": i,
        }
        if self.captions == "both" and rng is not None:
            own = self.training_caption(i, rng)
            item["caption_text"] = own or class_prompt(self.records[i].cls, self.templates[0])
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_ds"] = None  # workers open their own handle
        state["_pid"] = None
        return state


def _caption(rec: Any) -> str:
    cap = getattr(rec, "caption", None)
    return cap.strip() if isinstance(cap, str) else ""


def _close(ds: Any) -> None:
    close = getattr(ds, "close", None)
    if callable(close):
        close()


class EpochSampler(Sampler):
    """Shuffles (or not) and shards clip indices over processes, yielding ``(epoch, i)``
    so that workers know the epoch without shared state. ``set_epoch`` before each epoch.

    ``rank`` / ``world_size``: this process's share, as in DistributedSampler (which
    does the work; with one process it is a seeded shuffle).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        self.inner = DistributedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.inner.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self.inner:
            yield (self.epoch, int(i))

    def __len__(self) -> int:
        return len(self.inner)


class ClassRunSampler(Sampler):
    """Shuffles clip indices so that they come in runs of ``run`` clips of one class: each
    class's clips in a seeded random order cut into runs, the runs in a seeded random order.
    Consecutive batches then hold several clips of each of ``batch_size / run`` classes:
    within-class negatives for a loss with identity targets (a clip's own caption). Yields
    ``(epoch, i)`` like :class:`EpochSampler`; one process only. ``set_epoch`` before each
    epoch; the order depends only on ``(seed, epoch)``.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, run: int, *, seed: int = 0) -> None:
        if run < 1:
            raise SpklipError(f"clips of one class per run must be >= 1, got {run}")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.run = int(run)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self) -> list[int]:
        """This epoch's clip indices, every clip once."""
        rng = np.random.default_rng([self.seed, self.epoch])
        runs = []
        for c in np.unique(self.labels):
            members = rng.permutation(np.flatnonzero(self.labels == c))
            runs += [members[k : k + self.run] for k in range(0, len(members), self.run)]
        return [int(i) for r in rng.permutation(len(runs)) for i in runs[r]]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self.order():
            yield (self.epoch, i)

    def __len__(self) -> int:
        return len(self.labels)


def make_loader(
    dataset: SpikeClips,
    *,
    batch_size: int,
    shuffle: bool,
    workers: int = 0,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    class_run: int = 1,
) -> tuple[DataLoader, EpochSampler | ClassRunSampler]:
    """A DataLoader over ``dataset`` and its sampler (call ``sampler.set_epoch(e)``).
    ``class_run`` > 1 (with ``shuffle``, one process): batches made of runs of that many
    clips of one class (:class:`ClassRunSampler`).

    Batches are dicts: ``spikes`` uint8 (B, T, H, W), ``label`` int64 (B,), ``text``
    list[str], ``caption`` bool (B,), ``index`` int64 (B,) (and ``caption_text`` list[str]
    with training texts "both"). Workers are persistent (no re-fork per epoch) and each
    opens the dataset itself.
    """
    sampler: EpochSampler | ClassRunSampler
    if class_run > 1 and shuffle:
        if world_size > 1:
            raise SpklipError(
                f"class runs (class_run={class_run}) are for one process; train without "
                "torchrun or with class_run=1"
            )
        sampler = ClassRunSampler(dataset.labels, class_run, seed=seed)
    else:
        sampler = EpochSampler(
            dataset, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size, drop_last=False
        )
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=2)
    loader = _OneLineErrors(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last and len(sampler) >= batch_size,
        pin_memory=torch.cuda.is_available(),
        **kwargs,
    )
    return loader, sampler


class _OneLineErrors(DataLoader):
    """A DataLoader whose workers' user errors reach the caller as they were raised.

    PyTorch re-raises a worker's exception in the main process with the worker's whole
    traceback in its message; for the errors meant for the user (``SpikesimError``,
    ``SpklipError``) the message is cut back to the worker's own line.
    """

    def __iter__(self) -> Iterator[Any]:
        batches = super().__iter__()
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (SpikesimError, SpklipError) as err:
                raise type(err)(_worker_message(str(err))) from None
            yield batch


def _worker_message(text: str) -> str:
    """The original message of an exception PyTorch re-raised from a worker ("Caught X in
    DataLoader worker process 0.\nOriginal Traceback ...\nmodule.X: message")."""
    if "\nOriginal Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    head, sep, message = last.partition(": ")
    return message if sep and " " not in head else last


# ---------------------------------------------------------------------------- a checkpoint's data


def data_bin(checkpoint_config: dict[str, Any]) -> int:
    """The data-side binning a checkpoint was trained with (``SpikeClips(bin=...)``): key
    ``data_bin``; checkpoints written before the model had its own ``temporal_bin`` called
    it ``temporal_bin``. 1 when absent. The model's own binning is in its model_config."""
    return int(checkpoint_config.get("data_bin", checkpoint_config.get("temporal_bin", 1)))


def checkpoint_dataset(
    model: SPKLIP, checkpoint: Checkpoint, data: str | os.PathLike, **options: Any
) -> SpikeClips:
    """The clips of ``data`` read the way ``checkpoint`` was trained: the model's input
    frames (raw spike frames; the model bins them again by its own ``temporal_bin``), the
    run's data-side bin (:func:`data_bin`) and, for ``split="val"``, the run's validation
    carving (its recorded ``val_holdout``: exactly the clips it validated on). ``options``
    go to :class:`SpikeClips`."""
    recorded = checkpoint.config.get("val_holdout")
    # Only "val" means the run's clips: "train" of another dataset (few-shot) is all of it.
    if recorded is not None and options.get("split") == "val" and options.get("holdout") is None:
        options["holdout"] = ValHoldout.from_record(recorded)
    return SpikeClips(data, frames=model.config.frames, bin=data_bin(checkpoint.config), **options)


def check_compatible(model: SPKLIP, dataset: SpikeClips) -> None:
    """One-line SpklipError when the data's frame size differs from the model's."""
    h, w = model.config.image_size
    if (dataset.height, dataset.width) != (h, w):
        raise SpklipError(
            f"{dataset.path}: clips are {dataset.height}x{dataset.width} but the model was "
            f"trained on {h}x{w}; evaluate on data converted with --size {h}x{w}"
        )


@dataclass
class CheckpointClips:
    """A checkpoint's model with clips of a dataset read the way it was trained.

    ``spikes``: uint8 (N, frames, H, W), the centred window of each chosen clip, binned
    by ``dataset.bin`` (0/1 spikes when 1, counts otherwise); ``indices``: the clips'
    positions in ``dataset``.
    """

    model: SPKLIP
    checkpoint: Checkpoint
    dataset: SpikeClips
    indices: list[int]
    spikes: torch.Tensor

    def describe(self) -> dict[str, Any]:
        """Which model and clips, JSON-able."""
        cfg = self.checkpoint.config
        return {
            "checkpoint": str(self.checkpoint.path),
            "model_name": cfg.get("model_name"),
            "visual": self.model.config.visual,
            "epoch": self.checkpoint.epoch,
            "data": str(self.dataset.path),
            "data_bin": self.dataset.bin,
            "temporal_bin": getattr(self.model.config, "temporal_bin", 1),
            "input_shape": list(self.spikes.shape[1:]),
            "clip_paths": [self.dataset.records[i].path for i in self.indices],
        }


def load_checkpoint_clips(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str | None = "test",
    clips: int = 8,
    device: str | torch.device | None = "cpu",
) -> CheckpointClips:
    """Load ``checkpoint`` and read ``clips`` clips of ``split`` of ``data`` (spread evenly
    over the class-sorted clips, centred windows) exactly as the model was trained on them:
    the model's input frames (raw spike frames; the model bins them by its own
    ``temporal_bin``) and the training run's data-side bin (:func:`data_bin`)."""
    if clips < 1:
        raise SpklipError(f"clips = {clips}; need at least 1 clip")
    model, ckpt = load_model(checkpoint, device=pick_device(device))
    dataset = checkpoint_dataset(model, ckpt, data, split=split, augment=False, captions="prompt")
    check_compatible(model, dataset)
    indices = pick_spread(len(dataset), clips)
    spikes = torch.stack([torch.from_numpy(dataset.read_clip(i)) for i in indices])
    return CheckpointClips(model, ckpt, dataset, indices, spikes)
