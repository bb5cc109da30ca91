"""The training data: crops, padding, bit unpacking against read_dat, captions, loaders."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from spikesim.converted import ClipRecord
from spikesim.dat import read_dat, unpack_frames, write_dat
from spklip.data import ShortClipWarning, SpikeClips, make_loader, unpack_spikes
from spklip.errors import SpklipError
from spklip.prompts import TEMPLATES, class_prompt, class_to_words, ensemble_prompts


def make_converted(
    root: Path,
    *,
    classes: tuple[str, ...] = ("MoveLeft", "MoveRight"),
    per_class: int = 3,
    frames: int | list[int] = 20,
    size: tuple[int, int] = (8, 16),
    flipud: bool = True,
    captions: bool = True,
    test_every: int = 3,
    seed: int = 0,
    paraphrases: int = 0,
) -> Path:
    """A folder laid out as `spikesim convert` writes it, with random spikes.

    Clip k of a class is in the test split when k % test_every == test_every - 1. A list
    of ``frames`` gives each clip (in class-major order) its own length.
    """
    rng = np.random.default_rng(seed)
    rows = []
    lengths = frames if isinstance(frames, list) else None
    n = 0
    for label, cls in enumerate(classes):
        for k in range(per_class):
            t = lengths[n] if lengths else frames
            n += 1
            rel = f"{cls}/v_{cls}_g{k + 1:02d}_c01.dat"
            spikes = rng.random((t, *size)) < 0.3
            write_dat(root / rel, spikes, flipud=flipud)
            split = "test" if k % test_every == test_every - 1 else "train"
            caption = f"a thing that does {class_to_words(cls)} number {k}" if captions else None
            others = tuple(
                f"thing number {k} doing {class_to_words(cls)}, wording {j}"
                for j in range(paraphrases)
            )
            rows.append(
                ClipRecord(
                    rel, cls, label, split, caption, t, *size, f"{rel}.avi", 1, paraphrases=others
                ).to_row()
            )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "classes.txt").write_text("".join(c + "\n" for c in classes))
    (root / "config.yaml").write_text(
        yaml.safe_dump({"spike_h": size[0], "spike_w": size[1], "flipud": flipud})
    )
    return root


def test_class_names_become_words():
    assert class_to_words("ApplyEyeMakeup") == "apply eye makeup"
    assert class_to_words("brush_hair") == "brush hair"
    assert class_to_words("MoveRightFast") == "move right fast"
    assert class_to_words("YoYo") == "yo yo"
    assert class_to_words("UCFTest") == "ucf test"
    assert class_to_words("already spaced Words") == "already spaced words"
    assert class_prompt("brush_hair") == TEMPLATES[0].format("brush hair")
    groups = ensemble_prompts(["Grow", "Shrink"])
    assert [len(g) for g in groups] == [len(TEMPLATES)] * 2
    assert all("shrink" in p for p in groups[1])


@pytest.mark.parametrize(
    ("size", "flipud"), [((8, 16), True), ((8, 16), False), ((6, 12), True), ((6, 12), False)]
)
def test_the_centred_window_is_the_clip_read_by_read_dat(tmp_path, size, flipud):
    root = make_converted(tmp_path, size=size, flipud=flipud, frames=21)
    ds = SpikeClips(root, frames=10, split=None)
    item = ds[1]
    assert item["spikes"].dtype.is_floating_point is False
    assert item["spikes"].numpy().dtype == np.uint8
    assert tuple(item["spikes"].shape) == (10, *size)
    want = read_dat(root / ds.records[1].path, flipud=flipud, start=5, count=10)
    np.testing.assert_array_equal(item["spikes"].numpy(), want.astype(np.uint8))


def test_random_crops_are_windows_of_the_clip_seeded_by_epoch_and_index(tmp_path):
    root = make_converted(tmp_path, frames=40)
    ds = SpikeClips(root, frames=8, split="train", augment=True, seed=5)
    full = read_dat(root / ds.records[0].path).astype(np.uint8)
    windows = {i: full[i : i + 8] for i in range(33)}
    starts = set()
    for epoch in range(12):
        got = ds[(epoch, 0)]["spikes"].numpy()
        match = [s for s, w in windows.items() if np.array_equal(w, got)]
        assert match, "a training crop must be 8 consecutive frames of the clip"
        starts.add(match[0])
        again = ds[(epoch, 0)]["spikes"].numpy()
        np.testing.assert_array_equal(got, again)
    assert len(starts) > 3  # the crop moves between epochs
    other_seed = SpikeClips(root, frames=8, split="train", augment=True, seed=6)
    assert any(
        not np.array_equal(ds[(e, 0)]["spikes"].numpy(), other_seed[(e, 0)]["spikes"].numpy())
        for e in range(5)
    )


def test_short_clips_are_padded_with_empty_frames_and_said_once(tmp_path):
    root = make_converted(tmp_path, per_class=2, frames=[5, 12, 4, 12])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SpikeClips(root, frames=8, split=None, augment=True)
        items = [ds[(e, i)] for e in range(3) for i in range(len(ds))]
    said = [w for w in caught if issubclass(w.category, ShortClipWarning)]
    assert len(said) == 1
    assert "2 of 4 clips" in str(said[0].message)
    short = ds[0]["spikes"].numpy()
    np.testing.assert_array_equal(short[:5], read_dat(root / ds.records[0].path))
    assert not short[5:].any()
    assert all(tuple(it["spikes"].shape) == (8, 8, 16) for it in items)


def test_binning_sums_consecutive_frames_of_the_window(tmp_path):
    root = make_converted(tmp_path, per_class=2, frames=[40, 40, 25, 40])
    with pytest.warns(ShortClipWarning, match="1 of 4 clips have fewer than 30"):
        ds = SpikeClips(root, frames=6, bin=5, split=None)
    raw = read_dat(root / ds.records[0].path).astype(np.uint8)
    got = ds[0]["spikes"].numpy()
    assert got.shape == (6, 8, 16) and got.max() <= 5
    np.testing.assert_array_equal(got, raw[5:35].reshape(6, 5, 8, 16).sum(axis=1))
    short = ds[2]["spikes"].numpy()  # 25 frames: five full bins, then an empty one
    np.testing.assert_array_equal(
        short[:5],
        read_dat(root / ds.records[2].path).astype(np.uint8).reshape(5, 5, 8, 16).sum(axis=1),
    )
    assert not short[5].any()
    with pytest.raises(SpklipError, match="bin must be between 1 and 255"):
        SpikeClips(root, frames=6, bin=0)


def test_unpacking_matches_spikesim_and_is_not_slower(tmp_path):
    rng = np.random.default_rng(1)
    for (h, w), flipud in [((48, 64), True), ((6, 12), True), ((6, 12), False)]:
        packed = rng.integers(0, 256, (30, h * w // 8), dtype=np.uint8)
        ours = unpack_spikes(packed, h, w, flipud)
        assert ours.dtype == np.uint8 and ours.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(ours, unpack_frames(packed, h, w, flipud=flipud))
    # Side by side, one run: the ratio is what matters on a shared machine.
    packed = rng.integers(0, 256, (250, 48 * 64 // 8), dtype=np.uint8)
    unpack_frames(packed, 48, 64)  # compile
    timings = {}
    for name, fn in {
        "numpy": lambda: unpack_spikes(packed, 48, 64, True),
        "spikesim": lambda: unpack_frames(packed, 48, 64).view(np.uint8),
    }.items():
        t0 = time.perf_counter()
        for _ in range(20):
            fn()
        timings[name] = (time.perf_counter() - t0) / 20
    print(f"unpack 250x48x64: numpy {timings['numpy'] * 1e3:.3f} ms, "
          f"spikesim {timings['spikesim'] * 1e3:.3f} ms")  # fmt: skip


def test_split_filter_and_one_line_errors(tmp_path):
    root = make_converted(tmp_path, per_class=3)
    train = SpikeClips(root, frames=4, split="train")
    test = SpikeClips(root, frames=4, split="test")
    assert len(train) == 4 and len(test) == 2
    assert {r.split for r in test.records} == {"test"}
    assert test.labels.tolist() == [0, 1]
    with pytest.raises(SpklipError, match="no clips in split 'dev'") as info:
        SpikeClips(root, frames=4, split="dev")
    assert "test, train" in str(info.value)
    # "val" is carved from train by group (one of each class's two train groups here)
    val = SpikeClips(root, frames=4, split="val")
    rest = SpikeClips(root, frames=4, split="train", holdout=val.holdout)
    assert len(val) == 2 and len(rest) == 2
    assert not {r.path for r in val.records} & {r.path for r in rest.records}
    with pytest.raises(SpklipError, match="no such dataset"):
        SpikeClips(tmp_path / "nowhere", frames=4)


def test_texts_follow_the_caption_mode(tmp_path):
    root = make_converted(tmp_path, per_class=3, frames=6)
    kw = {"frames": 4, "split": "train", "augment": True}
    prompt = SpikeClips(root, captions="prompt", **kw)
    caption = SpikeClips(root, captions="caption", **kw)
    mixed = SpikeClips(root, captions="mixed", **kw)
    own = caption.records[0].caption
    assert all(caption[(e, 0)]["text"] == own for e in range(5))
    prompts = {prompt[(e, 0)]["text"] for e in range(20)}
    assert prompts <= {t.format("move left") for t in TEMPLATES} and len(prompts) > 1
    both = {mixed[(e, 0)]["text"] for e in range(30)}
    assert own in both and len(both - {own}) >= 1
    # Each item says whether its text is the clip's own caption (the loss's hard negatives).
    items = [mixed[(e, 0)] for e in range(30)]
    assert all(it["caption"] == (it["text"] == own) for it in items)
    assert {it["caption"] for it in items} == {True, False}
    assert not any(prompt[(e, 0)]["caption"] for e in range(5))
    # "both": a class prompt as the text and the caption beside it, every time in training
    both_mode = SpikeClips(root, captions="both", **kw)
    pairs = [both_mode[(e, 0)] for e in range(10)]
    assert all(
        it["caption_text"] == own
        and it["text"] in prompts | {t.format("move left") for t in TEMPLATES}
        for it in pairs
    )
    assert SpikeClips(root, frames=4, split="train", captions="both").eval_text(0) == own
    assert "caption_text" not in SpikeClips(root, frames=4, split="train", captions="both")[0]
    # Evaluation is deterministic: the caption, else the class prompt.
    assert SpikeClips(root, frames=4, split="train").eval_text(0) == own
    bare = make_converted(tmp_path / "bare", per_class=3, frames=6, captions=False)
    plain = SpikeClips(bare, frames=4, split="train", captions="caption", augment=True)
    assert plain.eval_text(0) == class_prompt("MoveLeft")
    assert not plain.has_captions
    assert plain[(0, 0)]["text"].endswith("move left.")


def test_training_captions_draw_paraphrases_only_when_asked(tmp_path):
    root = make_converted(tmp_path, per_class=3, frames=6, paraphrases=2)
    kw = {"frames": 4, "split": "train", "augment": True}
    plain = SpikeClips(root, captions="both", **kw)
    wordy = SpikeClips(root, captions="both", paraphrases=True, **kw)
    rec = wordy.records[0]
    assert len(rec.paraphrases) == 2 and rec.paraphrases[0].startswith("thing number 0")
    assert {plain[(e, 0)]["caption_text"] for e in range(20)} == {rec.caption}
    drawn = [wordy[(e, 0)]["caption_text"] for e in range(60)]
    assert set(drawn) == {rec.caption, *rec.paraphrases}
    assert 10 <= drawn.count(rec.caption) <= 30  # about a third
    # captions "caption": the text itself; evaluation always the caption
    cap = SpikeClips(root, captions="caption", paraphrases=True, **kw)
    assert {cap[(e, 0)]["text"] for e in range(40)} == {rec.caption, *rec.paraphrases}
    assert all(cap[(e, 0)]["caption"] for e in range(5))
    assert SpikeClips(root, frames=4, split="train", paraphrases=True).eval_text(0) == rec.caption


def test_loader_batches_are_the_same_with_or_without_workers(tmp_path):
    root = make_converted(tmp_path, per_class=4, frames=30)
    ds = SpikeClips(root, frames=8, split=None, augment=True, seed=3)
    runs = []
    for workers in (0, 2):
        loader, sampler = make_loader(ds, batch_size=3, shuffle=True, workers=workers, seed=3)
        got = []
        for epoch in (1, 2):
            sampler.set_epoch(epoch)
            for batch in loader:
                assert batch["spikes"].dtype.is_floating_point is False
                got.append((batch["index"].tolist(), batch["spikes"].numpy().copy(), batch["text"]))
        runs.append(got)
    for (i0, s0, t0), (i1, s1, t1) in zip(*runs, strict=True):
        assert i0 == i1 and t0 == t1
        np.testing.assert_array_equal(s0, s1)
    # Two processes split an epoch between them without overlap.
    shares = []
    for rank in (0, 1):
        _, sampler = make_loader(ds, batch_size=2, shuffle=True, seed=3, rank=rank, world_size=2)
        sampler.set_epoch(1)
        shares.append({i for _, i in sampler})
    assert not shares[0] & shares[1] and shares[0] | shares[1] == set(range(len(ds)))


def test_a_packed_h5_reads_like_the_folder(tmp_path):
    h5 = pytest.importorskip("spikesim.converted.h5")
    root = make_converted(tmp_path / "conv", per_class=2, frames=12, size=(6, 12))
    packed = h5.pack_dataset(root, tmp_path / "data.h5")
    a = SpikeClips(root, frames=6, split=None)
    b = SpikeClips(packed, frames=6, split=None)
    assert a.classes == b.classes and len(a) == len(b)
    for i in range(len(a)):
        np.testing.assert_array_equal(a[i]["spikes"].numpy(), b[i]["spikes"].numpy())
        assert a[i]["text"] == b[i]["text"]


def test_class_runs_give_every_clip_once_in_runs_of_one_class():
    from spklip.data import ClassRunSampler

    labels = np.repeat(np.arange(5), [7, 8, 6, 9, 10])
    sampler = ClassRunSampler(labels, 4, seed=3)
    sampler.set_epoch(1)
    first = sampler.order()
    assert sorted(first) == list(range(len(labels))) and len(sampler) == len(labels)
    # Cut into runs at class changes: no run longer than 4, and the runs of a class hold
    # every clip of it (7 clips of class 0: runs 4 + 3).
    runs, current = [], [first[0]]
    for i in first[1:]:
        if labels[i] == labels[current[-1]] and len(current) < 4:
            current.append(i)
        else:
            runs.append(current)
            current = [i]
    runs.append(current)
    assert all(len(r) <= 4 for r in runs)
    assert sum(len(r) == 4 for r in runs) >= 8  # 1 + 2 + 1 + 2 + 2 full runs at least
    # A batch of 16 holds at most 4 + ... classes, not 16 random ones.
    batches = [first[k : k + 16] for k in range(0, 32, 16)]
    assert all(len(set(labels[b])) <= 6 for b in batches)
    # Seeded by (seed, epoch): the same again, another epoch another order.
    assert sampler.order() == first
    sampler.set_epoch(2)
    assert sampler.order() != first
    assert [e for e, _ in sampler] == [2] * len(labels)
    with pytest.raises(SpklipError, match=">= 1"):
        ClassRunSampler(labels, 0)


def test_make_loader_uses_class_runs_for_one_process_only(tmp_path):
    from spklip.data import ClassRunSampler, EpochSampler

    root = make_converted(tmp_path, per_class=4)
    ds = SpikeClips(root, frames=8, split="train", captions="prompt")
    _, sampler = make_loader(ds, batch_size=4, shuffle=True, class_run=2)
    assert isinstance(sampler, ClassRunSampler)
    _, plain = make_loader(ds, batch_size=4, shuffle=False, class_run=2)  # evaluation order
    assert isinstance(plain, EpochSampler)
    with pytest.raises(SpklipError, match="one process"):
        make_loader(ds, batch_size=4, shuffle=True, class_run=2, world_size=2)
