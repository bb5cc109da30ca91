"""Source datasets: layouts, labels, official and generated splits, captions, bad trees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from spikesim.errors import DatasetError
from spikesim.sources import clip_seed, parse_hmdb51_split, read_class_index, scan_source


def make_tree(root: Path, files: list[str]) -> Path:
    """Empty files standing for clips: scanning never decodes a video."""
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


UCF_FILES = [
    f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.avi"
    for cls in ("ApplyEyeMakeup", "Archery", "Basketball")
    for g in range(1, 6)
    for c in (1, 2)
]


# ---------------------------------------------------------------------------- real clips


def test_real_ucf101_clips_are_found_with_layout_labels_and_groups(clips_dir: Path) -> None:
    ds = scan_source(clips_dir / "ucf101-mini")
    assert ds.layout == "ucf101"
    assert ds.classes == ("Basketball", "SoccerJuggling")
    assert [c.path for c in ds.clips] == [
        "Basketball/v_Basketball_g01_c01.avi",
        "SoccerJuggling/v_SoccerJuggling_g23_c01.avi",
    ]
    assert [c.label for c in ds.clips] == [0, 1]
    assert [c.group for c in ds.clips] == ["g01", "g23"]
    assert all(c.caption is None for c in ds.clips)
    assert ds.clips[0].out_path == "Basketball/v_Basketball_g01_c01.dat"
    assert ds.source_path(ds.clips[0]).is_file()


def test_real_hmdb51_clips_are_grouped_by_source_movie(clips_dir: Path) -> None:
    ds = scan_source(clips_dir / "hmdb51-mini")
    assert ds.layout == "hmdb51"
    assert ds.classes == ("cartwheel", "wave")
    groups = {c.path: c.group for c in ds.clips}
    assert groups["wave/RATRACE_wave_f_nm_np1_fr_goo_37.avi"] == "RATRACE"
    assert groups["cartwheel/Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi"] == (
        "Turnk_r_Pippi_Michel"
    )
    # two source movies of "wave": one each side of the generated split
    assert sorted(c.split for c in ds.clips if c.cls == "wave") == ["test", "train"]


# ---------------------------------------------------------------------------- UCF101 splits


def write_ucf_splits(folder: Path, k: int, train: list[str], test: list[str], classes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    (folder / f"trainlist0{k}.txt").write_text("".join(f"{p} 1\n" for p in train))
    (folder / f"testlist0{k}.txt").write_text("".join(f"{p}\n" for p in test))


def test_ucf101_official_split_files_decide_split_and_class_index_decides_labels(
    tmp_path: Path,
) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES)
    test = [p for p in UCF_FILES if "_g01_" in p or "_g02_" in p]
    train = [p for p in UCF_FILES if p not in test]
    classes = ["Basketball", "ApplyEyeMakeup", "Archery"]  # not alphabetical on purpose
    write_ucf_splits(src / "ucfTrainTestlist", 1, train, test, classes)
    ds = scan_source(src)
    assert ds.layout == "ucf101"
    assert "official UCF101 split 1" in ds.split_source
    assert ds.classes == tuple(classes)
    by_path = {c.path: c for c in ds.clips}
    assert {p for p, c in by_path.items() if c.split == "test"} == set(test)
    assert {p for p, c in by_path.items() if c.split == "train"} == set(train)
    assert by_path["Basketball/v_Basketball_g03_c01.avi"].label == 0
    assert by_path["Archery/v_Archery_g03_c01.avi"].label == 2


def test_ucf101_split_index_and_splits_dir_outside_src(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES)
    lists = tmp_path / "lists"
    write_ucf_splits(
        lists, 1, UCF_FILES[1:], UCF_FILES[:1], ["ApplyEyeMakeup", "Archery", "Basketball"]
    )
    write_ucf_splits(
        lists, 2, UCF_FILES[:-1], UCF_FILES[-1:], ["ApplyEyeMakeup", "Archery", "Basketball"]
    )
    one = scan_source(src, splits_dir=lists)
    two = scan_source(src, splits_dir=lists, split_index=2)
    assert [c.path for c in one.clips if c.split == "test"] == UCF_FILES[:1]
    assert [c.path for c in two.clips if c.split == "test"] == UCF_FILES[-1:]
    # without --splits the lists outside SRC are not seen: generated split
    assert scan_source(src).split_source.startswith("generated")


def test_ucf101_split_lists_match_paths_case_insensitively(tmp_path: Path) -> None:
    # the real UCF101 folder is HandstandPushups but its files are v_HandStandPushups_...
    files = [
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi",
    ]
    src = make_tree(tmp_path / "ucf", files)
    write_ucf_splits(
        src / "lists", 1, ["handstandpushups/v_HandStandPushups_g08_c01.avi"],
        ["HandstandPushups/v_HandstandPushups_g01_c01.avi"], ["HandstandPushups"],
    )  # fmt: skip
    ds = scan_source(src)
    assert [c.split for c in ds.clips] == ["test", "train"]
    assert ds.classes == ("HandstandPushups",)


def test_ucf101_train_list_without_test_list_is_an_error(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES)
    (src / "trainlist01.txt").write_text(f"{UCF_FILES[0]} 1\n")
    with pytest.raises(DatasetError, match="testlist01"):
        scan_source(src)


def test_class_index_with_gaps_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "classInd.txt"
    path.write_text("1 A\n3 B\n")
    with pytest.raises(DatasetError, match="without gaps"):
        read_class_index(path)


# ---------------------------------------------------------------------------- HMDB51 splits


HMDB_FILES = [
    "brush_hair/Aaa_brush_hair_u_nm_np1_fr_goo_0.avi",
    "brush_hair/Bbb_brush_hair_h_cm_np1_le_med_1.avi",
    "brush_hair/Ccc_brush_hair_f_nm_np2_ba_bad_2.avi",
    "wave/Ddd_wave_f_nm_np1_fr_goo_0.avi",
    "wave/Eee_wave_u_cm_np1_ri_med_3.avi",
]


def test_hmdb51_split_files_give_train_test_and_unused(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "hmdb", HMDB_FILES)
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text(
        "Aaa_brush_hair_u_nm_np1_fr_goo_0.avi 1 \nBbb_brush_hair_h_cm_np1_le_med_1.avi 2 \n"
        "Ccc_brush_hair_f_nm_np2_ba_bad_2.avi 0 \n"
    )
    (splits / "wave_test_split1.txt").write_text(
        "Ddd_wave_f_nm_np1_fr_goo_0.avi 2\nEee_wave_u_cm_np1_ri_med_3.avi 1\n"
    )
    (splits / "wave_test_split2.txt").write_text(
        "Ddd_wave_f_nm_np1_fr_goo_0.avi 1\nEee_wave_u_cm_np1_ri_med_3.avi 2\n"
    )
    ds = scan_source(src, splits_dir=splits)
    assert ds.layout == "hmdb51"
    assert ds.classes == ("brush_hair", "wave")
    assert [c.split for c in ds.clips] == ["train", "test", "unused", "test", "train"]
    assert ds.split_counts() == {"train": 2, "test": 2, "unused": 1}
    two = scan_source(src, splits_dir=splits, split_index=2)
    # split 2 lists only "wave": the brush_hair clips are in no list of split 2
    assert [c.split for c in two.clips] == ["unused"] * 3 + ["train", "test"]


def test_hmdb51_split_line_with_unknown_code_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "wave_test_split1.txt"
    path.write_text("a.avi 3\n")
    with pytest.raises(DatasetError, match=r"wave_test_split1.txt:1"):
        parse_hmdb51_split(path)


# ---------------------------------------------------------------------------- generated splits


def test_generated_split_keeps_groups_together_and_tests_every_class(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES)
    ds = scan_source(src)
    assert ds.split_source.startswith("generated")
    side: dict[tuple[str, str], set[str]] = {}
    for clip in ds.clips:
        side.setdefault((clip.cls, clip.group), set()).add(clip.split)
    assert all(len(s) == 1 for s in side.values()), "a group was split across train and test"
    held = []
    for cls in ds.classes:
        groups = {g: s.pop() for (c, g), s in side.items() if c == cls}
        assert list(groups.values()).count("test") == 2  # round(5 * 0.3) of 5 groups
        held.append({g for g, s in groups.items() if s == "test"})
    assert held[0] == held[1] == held[2]  # the same group numbers in every class
    assert scan_source(src) == ds  # deterministic


# ---------------------------------------------------------------------------- captions, roots


def test_captions_come_from_captions_jsonl(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES[:2])
    rows = [{"path": UCF_FILES[0], "caption": "a person applies eye makeup"}]
    (src / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = scan_source(src)
    assert [c.caption for c in ds.clips] == ["a person applies eye makeup", None]


def test_bad_captions_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES[:2])
    (src / "captions.jsonl").write_text('{"path": "x", "caption": "y"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"captions.jsonl:2"):
        scan_source(src)
    (src / "captions.jsonl").write_text('{"path": "x", "caption": "y", "paraphrases": "z"}\n')
    with pytest.raises(DatasetError, match=r"captions.jsonl:1.*paraphrases"):
        scan_source(src)


def test_paraphrases_come_from_captions_jsonl(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES[:2])
    rows = [{"path": UCF_FILES[0], "caption": "a person", "paraphrases": ["someone", " a human "]}]
    (src / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = scan_source(src)
    assert [c.paraphrases for c in ds.clips] == [("someone", "a human"), ()]


def test_a_wrapper_folder_is_descended_and_sources_stay_relative_to_src(tmp_path: Path) -> None:
    src = tmp_path / "UCF101"
    make_tree(src / "UCF-101", UCF_FILES[:2])
    ds = scan_source(src)
    assert ds.root == src / "UCF-101"
    assert ds.clips[0].path == UCF_FILES[0]
    assert ds.clips[0].source == f"UCF-101/{UCF_FILES[0]}"


def test_empty_source_says_which_layout_is_expected(tmp_path: Path) -> None:
    (tmp_path / "empty" / "SomeClass").mkdir(parents=True)
    (tmp_path / "empty" / "SomeClass" / "notes.txt").write_text("no videos here")
    with pytest.raises(DatasetError, match=r"SRC/<class>/<clip>.*UCF101 / HMDB51"):
        scan_source(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not a folder"):
        scan_source(tmp_path / "missing")


def test_symlink_leaving_the_root_is_an_error(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "elsewhere", ["Secret/v_Secret_g01_c01.avi"])
    src = make_tree(tmp_path / "ucf", UCF_FILES[:2])
    os.symlink(outside / "Secret", src / "Secret")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        scan_source(src)
    os.unlink(src / "Secret")
    os.symlink(outside / "Secret" / "v_Secret_g01_c01.avi", src / "ApplyEyeMakeup" / "v_x.avi")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        scan_source(src)


def test_split_list_entry_with_dotdot_is_an_error(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", UCF_FILES)
    write_ucf_splits(
        src / "lists",
        1,
        ["../../etc/passwd.avi"],
        UCF_FILES[:1],
        ["ApplyEyeMakeup", "Archery", "Basketball"],
    )
    with pytest.raises(DatasetError, match="outside the dataset root"):
        scan_source(src)


def test_two_clips_converting_to_the_same_dat_are_an_error(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ucf", ["A/v_A_g01_c01.avi", "A/v_A_g01_c01.mp4"])
    with pytest.raises(DatasetError, match="both be converted"):
        scan_source(src)


def test_clip_seed_depends_only_on_run_seed_and_path() -> None:
    a = clip_seed(0, "A/v_A_g01_c01.avi")
    assert a == clip_seed(0, "A/v_A_g01_c01.avi")
    assert a != clip_seed(1, "A/v_A_g01_c01.avi")
    assert a != clip_seed(0, "A/v_A_g01_c02.avi")
    assert 0 <= a < 2**32
