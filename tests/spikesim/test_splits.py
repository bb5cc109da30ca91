"""The one group rule and the validation split carved from train by group."""

from __future__ import annotations

import random

import pytest

from spikesim import ClipRecord, ValHoldout, carve_val, clip_group, splits_record
from spikesim.errors import DatasetError
from spikesim.sources import _generated_splits


def rec(cls: str, source: str, split: str = "train") -> ClipRecord:
    path = f"{cls}/{source.rsplit('/', 1)[-1].rsplit('.', 1)[0]}.dat"
    return ClipRecord(path, cls, 0, split, None, 10, 4, 8, source, 1)


def test_groups_follow_ucf101_hmdb51_or_the_clip_itself():
    assert clip_group("Grow/v_Grow_g07_c03.avi", "Grow") == "g07"
    assert clip_group("v_Grow_g7_c3", "Grow") == "g07"
    hmdb = "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi"
    assert clip_group(hmdb, "brush_hair") == "April_09"
    assert clip_group("dogs/holiday.mp4", "dogs") == "holiday"
    # a known layout is not second-guessed
    assert clip_group("v_Grow_g07_c03.avi", "Grow", "folders") == "v_Grow_g07_c03"
    with pytest.raises(DatasetError, match="layout"):
        clip_group("x.avi", "x", "kinetics")


def ucf_clips(classes=("A", "B", "C"), groups=10, per_group=3) -> list[ClipRecord]:
    return [
        rec(c, f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi", "test" if g == 3 else "train")
        for c in classes
        for g in range(1, groups + 1)
        for k in range(1, per_group + 1)
    ]


def val_groups_of(side: dict[str, str], cls: str, which: str = "val") -> set[str]:
    return {clip_group(p, cls) for p, s in side.items() if s == which and p.startswith(cls + "/")}


def test_val_holds_out_the_same_group_names_in_every_class_seeded():
    clips = ucf_clips()
    side = carve_val(clips, ValHoldout(0.2, seed=5))
    assert set(side) == {c.path for c in clips if c.split == "train"}  # test is not touched
    chosen = val_groups_of(side, "A")
    assert len(chosen) == 2  # round(0.2 * 9 train groups)
    for cls in "ABC":
        # a group (a scene of spikesim synth, UCF101's gXX) is validation in every class or
        # in none, so no validation scene was trained on under another class
        assert val_groups_of(side, cls) == chosen
        assert not chosen & val_groups_of(side, cls, "train")
    # same clips in any order, same seed -> same carving; another seed -> another one
    shuffled = clips[:]
    random.Random(1).shuffle(shuffled)
    assert carve_val(shuffled, ValHoldout(0.2, seed=5)) == side
    assert carve_val(clips, ValHoldout(0.2, seed=6)) != side


def test_per_class_rule_and_classes_the_shared_draw_misses():
    clips = ucf_clips()
    per_class = carve_val(clips, ValHoldout(0.2, seed=5, groups="per-class"))
    for cls in "ABC":
        assert len(val_groups_of(per_class, cls)) == 2
    # per class, a class's carving does not depend on the other classes
    only_a = carve_val(
        [c for c in clips if c.cls == "A"], ValHoldout(0.2, seed=5, groups="per-class")
    )
    assert only_a == {p: s for p, s in per_class.items() if p.startswith("A/")}
    # a class whose groups the shared draw does not hit gets a draw of its own
    odd = [rec("D", f"D/v_D_g{g:02d}_c01.avi") for g in range(50, 54)]
    side = carve_val(clips + odd, ValHoldout(0.2, seed=5))
    assert val_groups_of(side, "D") and val_groups_of(side, "D", "train")
    with pytest.raises(DatasetError, match="groups"):
        ValHoldout(0.2, groups="global")


def test_records_without_a_group_rule_are_read_as_per_class():
    assert ValHoldout.from_record({"fraction": 0.2, "seed": 1}).groups == "per-class"
    assert ValHoldout.from_record(ValHoldout(0.2, 1).to_dict()).groups == "shared"


def test_a_recorded_carving_is_reused_exactly_and_checked_against_the_data():
    clips = ucf_clips()
    record = splits_record(clips, ValHoldout(0.3, seed=2))
    assert record["fraction"] == 0.3 and record["seed"] == 2
    assert not set(record["val"]) & set(record["train"])
    again = ValHoldout.from_record(record)
    side = carve_val(clips, again)
    assert sorted(p for p, s in side.items() if s == "val") == record["val"]
    with pytest.raises(DatasetError, match="not in"):
        carve_val([c for c in clips if c.cls != "A"], again)


def test_a_class_with_one_group_keeps_it_in_train_and_bad_settings_fail():
    clips = [rec("A", f"A/v_A_g01_c{k:02d}.avi") for k in range(1, 4)]
    assert set(carve_val(clips).values()) == {"train"}
    for bad in (0.0, 1.0, -0.1, "0.2"):
        with pytest.raises(DatasetError, match="fraction"):
            ValHoldout(bad)
    with pytest.raises(DatasetError, match="seed"):
        ValHoldout(0.2, seed=-1)


def test_the_source_scanner_uses_the_same_group_rule():
    groups = {("A", f"v_A_g{g:02d}_c01.avi"): clip_group(f"v_A_g{g:02d}_c01.avi", "A", "ucf101")
              for g in range(1, 6)}  # fmt: skip
    splits = _generated_splits(groups, 0.2)
    assert sorted(set(splits.values())) == ["test", "train"]
