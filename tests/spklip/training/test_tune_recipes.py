"""The pieces of benchmarks.tune_recipes' text sweep and attribute probe."""

from __future__ import annotations

import numpy as np

from benchmarks.tune_recipes import (
    _linear_probe,
    caption_attributes,
    run_dir,
    text_plan,
    val_summary,
)


def test_caption_attributes_reads_what_a_synth_caption_names():
    cap = "a medium-sized speckled bright cross in the middle right gets bigger"
    assert caption_attributes(cap) == {
        "size": "medium-sized",
        "texture": "speckled",
        "brightness": "bright",
        "shape": "cross",
        "position": "middle right",
    }
    # "smaller" / "larger" in the action are not sizes; "in the centre" is a position.
    cap = "a large checkered dark triangle in the centre grows larger against a light background"
    found = caption_attributes(cap)
    assert (found["size"], found["brightness"], found["position"]) == ("large", "dark", "centre")
    assert caption_attributes("a person waving") == dict.fromkeys(found)


def test_text_plan_runs_both_with_each_caption_weight_and_the_model_given():
    plan = text_plan("prompt,both", "1,4", "spklip-tiny-minilm")
    assert [name for name, _ in plan] == [
        "prompt",
        "both, caption_weight 1",
        "both, caption_weight 4",
    ]
    assert plan[2][1]["variant"] == {
        "model": "spklip-tiny-minilm",
        "captions": "both",
        "caption_weight": 4.0,
    }
    assert text_plan("both") == [("both", {"variant": {"captions": "both"}})]
    runs = text_plan("both", "2", class_run=4)
    assert runs == [
        (
            "both, caption_weight 2, class runs of 4",
            {"variant": {"class_run": 4, "captions": "both", "caption_weight": 2.0}},
        )
    ]


def test_the_linear_probe_finds_a_linear_signal_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 10))
    y = ["a" if v > 0 else "b" for v in x[:, 3] - x[:, 7]]
    assert _linear_probe(x[:200], y[:200], x[200:], y[200:]) > 0.9
    shuffled = list(rng.permutation(y[:200]))
    assert _linear_probe(x[:200], shuffled, x[200:], y[200:]) < 0.7


def test_run_folders_have_no_spaces_or_commas():
    assert run_dir("both, caption_weight 4", 0) == "both_caption_weight_4_s0"
    assert run_dir("prompt", 2) == "prompt_s2"


def test_text_plan_carries_model_overrides_into_name_and_variant():
    ((name, kw),) = text_plan("both", overrides={"star.pool_grid": [3, 4]})
    assert name == "both, star.pool_grid=[3, 4]"
    assert kw["variant"] == {"model_overrides": {"star.pool_grid": [3, 4]}, "captions": "both"}


def test_val_summary_reports_the_lowest_class_and_retrieval_at_each_pool_size():
    evaluation = {
        "zero_shot": {"top1": 0.8, "per_class": {"Grow": 0.9, "Shrink": 0.4, "Blink": 1.0}},
        "retrieval": {
            "t2v_R@1": 0.3,
            "t2v_R@10": 0.8,
            "by_groups": {
                "4": {"clips": 96, "t2v_R@1": 0.31, "t2v_R@10": 0.81},
                "1": {"clips": 24, "t2v_R@1": 0.5, "t2v_R@10": 1.0},
                "2": {"clips": 48, "t2v_R@1": 0.4, "t2v_R@10": 0.9},
            },
        },
    }
    out = val_summary(evaluation)
    assert out["val_min_class"] == 0.4
    assert out["val_min_class_name"] == "Shrink"
    assert (out["val_t2v_r1"], out["val_t2v_r10"]) == (0.3, 0.8)
    assert [k for k in out if k.startswith("val_k")] == [
        "val_k1_r1",
        "val_k1_r10",
        "val_k2_r1",
        "val_k2_r10",
        "val_k4_r1",
        "val_k4_r10",
    ]
    assert (out["val_k1_r1"], out["val_k4_r10"]) == (0.5, 0.81)
    # Without captions in several groups there is no by_groups: the pool figures only.
    del evaluation["retrieval"]["by_groups"]
    assert not [k for k in val_summary(evaluation) if k.startswith("val_k")]
