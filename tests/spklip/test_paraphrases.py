"""The zero-shot paraphrases of scripts.demo (issue 11): the demo's test paraphrases and the
validation paraphrases used for choosing recipes are different wordings, and both pass the
check that no phrase was trained on (a tiny `spikesim synth` folder, a few seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scripts import demo
from spikesim.synth.classes import class_names
from spikesim.synth.write import synthesize
from spklip.errors import SpklipError
from spklip.prompts import load_prompts


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "synth"
    return synthesize(out, clips_per_class=10, size=(32, 32), frames=8, workers=1)


def test_val_and_demo_paraphrases_cover_the_classes_with_other_wordings() -> None:
    classes = class_names(12)
    assert set(demo.VAL_PARAPHRASES) == set(demo.DEMO_PARAPHRASES) == set(classes)
    val = [p.lower() for c in classes for p in demo.VAL_PARAPHRASES[c]]
    test = [p.lower() for c in classes for p in demo.DEMO_PARAPHRASES[c]]
    assert all(len(demo.VAL_PARAPHRASES[c]) == 3 for c in classes)
    assert len(set(val)) == len(val)
    for v in val:
        for t in test:
            assert v not in t and t not in v, (v, t)


def test_write_val_paraphrases_writes_checked_prompts(synth_dir, tmp_path) -> None:
    path = tmp_path / "val_paraphrases.json"
    prompts = demo.write_val_paraphrases(path, synth_dir)
    assert load_prompts(path) == prompts
    assert list(prompts) == class_names(12)
    assert prompts["RotateClockwise"][0] == "an object that whirls round to the right"
    with pytest.raises(SpklipError, match="exists"):
        demo.write_val_paraphrases(path, synth_dir)
    with pytest.raises(SpklipError, match=r"no captions\.jsonl"):
        demo.write_val_paraphrases(tmp_path / "other.json", tmp_path)


def test_check_refuses_a_phrase_of_the_training_captions(synth_dir) -> None:
    classes = class_names(12)
    assert demo.check_paraphrases(synth_dir, classes) == demo.check_paraphrases(
        synth_dir, classes, demo.DEMO_PARAPHRASES
    )
    row = json.loads((synth_dir / "captions.jsonl").read_text().splitlines()[0])
    trained = " ".join(row["caption"].split()[1:4])  # e.g. "large speckled bright"
    leaky = {**demo.VAL_PARAPHRASES, "Grow": ("puffs up", trained)}
    with pytest.raises(SpklipError, match="occurs in training text"):
        demo.check_paraphrases(synth_dir, classes, leaky)
    with pytest.raises(SpklipError, match="no demo paraphrases for class Shrink"):
        demo.check_paraphrases(
            synth_dir, classes, {k: v for k, v in demo.VAL_PARAPHRASES.items() if k != "Shrink"}
        )


def test_cli_writes_the_file_without_running_the_demo(synth_dir, tmp_path, monkeypatch) -> None:
    path = tmp_path / "para.json"
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: pytest.fail("the demo ran"))
    argv = ["demo", "--val-paraphrases", str(path), "--synth", str(synth_dir)]
    monkeypatch.setattr(sys, "argv", argv)
    demo.main()
    assert load_prompts(path)["MoveRightSlow"][0] == "an object that ambles to the right"
    with pytest.raises(SystemExit, match="exists"):
        demo.main()
