"""scripts.demo_events --validation weights: the grid trains what its rows say, the table and
the choice follow the scores (run_experiment replaced by a scorer, so this runs in a second)."""

from __future__ import annotations

import json

import pytest

from scripts import demo_events as demo
from spklip.training.distill import FULL, NO_TRAINING


def test_weight_grid_rows_train_what_they_say() -> None:
    grid = dict(demo._weight_grid())
    assert len(grid) == 3 + len(demo.KL_WEIGHTS) + len(demo.ALPHAS) * (len(demo.KL_WEIGHTS) + 2)
    full = grid["full, α 2, λ 0.5"]
    assert full.ablations == (FULL,) and (full.alpha, full.kl_weight) == (2.0, 0.5)
    assert full.student.zs_prompts == "all" and full.validation and not full.spikes
    seen = grid["full, α 0.5, λ 1, L_zs on seen prompts"]
    assert seen.student.zs_prompts == "seen" and (seen.alpha, seen.kl_weight) == (0.5, 1.0)
    assert grid["L_ct + λ·L_kl, λ 2"].weights("L_ct + λ·L_kl").kl == 2.0
    assert grid["L_ct + α·L_zs, α 1"].weights("L_ct + α·L_zs").zs == 1.0
    assert grid[NO_TRAINING].ablations == (NO_TRAINING,)


def test_validate_weights_tabulates_and_picks_the_best_full_loss(tmp_path, monkeypatch) -> None:
    def scorer(config, *, seed, **_):
        name = config.ablations[0]
        score = 0.5 + 0.01 * seed
        if name == FULL and config.alpha == 0.5 and config.kl_weight == 2.0:
            score += 0.03 if config.student.zs_prompts == "all" else 0.0
        return {"events": {name: {"unseen_top1": score}}}

    monkeypatch.setattr(demo, "run_experiment", scorer)
    demo.validate_weights([0, 1, 2], tmp_path, lambda s: None)
    out = json.loads((tmp_path / "validation-weights.json").read_text())
    assert out["best_full"] == "full, α 0.5, λ 2" and out["best_full_beats_its_ablations"]
    assert out["protocol"]["seeds"] == [0, 1, 2]
    diff = out["minus_L_ct_paired"]["full, α 0.5, λ 2"]
    assert diff["mean"] == pytest.approx(0.03) and diff["sd"] == pytest.approx(0.0, abs=1e-12)
    assert out["pseudo_unseen_top1"]["L_ct"]["mean"] == pytest.approx(0.51)
    md = (tmp_path / "validation-weights.md").read_text()
    assert "| full, α 0.5, λ 2 | 54.0 ± 1.0 | +3.0 ± 0.0 |" in md


def test_an_existing_sweep_is_not_overwritten(tmp_path) -> None:
    (tmp_path / "validation-weights.json").write_text("{}")
    with pytest.raises(SystemExit, match="overwrite"):
        demo.main(["--validation", "weights", "--out", str(tmp_path)])


def test_recipe_sweep_keeps_the_weights_it_was_run_with(tmp_path, monkeypatch) -> None:
    seen = []

    def scorer(config, *, seed, **_):
        seen.append((config.alpha, config.kl_weight, config.student.zs_prompts))
        return {
            "events": {n: {"unseen_top1": 0.5 + 0.01 * seed} for n in config.ablations},
            "seen_classes": ["a"],
            "unseen_classes": ["b"],
        }

    monkeypatch.setattr(demo, "run_experiment", scorer)
    monkeypatch.setattr(demo, "summarize", _summarize_top1)
    demo.validate([0, 1], tmp_path, lambda s: None)
    assert set(seen) == {(0.1, 1.0, "seen")} and len(seen) == 2 * len(demo.RECIPES)
    assert json.loads((tmp_path / "validation.json").read_text())["best"] in demo.RECIPES


def _summarize_top1(results):
    names = results[0]["events"]
    return {
        f"events/{n}/unseen_top1": {
            "mean": sum(r["events"][n]["unseen_top1"] for r in results),
            "sd": 0.0,
        }
        for n in names
    }


def _args(**given):
    names = [*demo.LOSS_SETTINGS]
    return demo.argparse.Namespace(validation="losses", **{n: given.get(n) for n in names})


def test_loss_settings_make_a_grid_of_configs() -> None:
    configs = demo._tuned_configs(_args(teacher_logit_scale="learned,40", alpha="0.1,2", lr="1e-3"))
    assert len(configs) == 4
    got = {(c.teacher.logit_scale, c.alpha, c.student.lr) for c in configs}
    assert got == {(None, 0.1, 1e-3), (None, 2.0, 1e-3), (40.0, 0.1, 1e-3), (40.0, 2.0, 1e-3)}
    assert configs[0].student.epochs == demo.ExperimentConfig().student.epochs
    assert demo._tuned_configs(_args()) == [demo.ExperimentConfig()]
    configs = demo._tuned_configs(_args(class_run="1,8", kl_temperature="0.05", batch_size="32"))
    assert [(c.student.class_run, c.student.batch_size, c.kl_temperature) for c in configs] == [
        (1, 32, 0.05),
        (8, 32, 0.05),
    ]
    # the label names the session-7 settings only when they are not the default
    assert "class runs of 8" in demo._setting_label(configs[1])
    assert "L_kl temperature 0.05" in demo._setting_label(configs[0])
    plain = demo._setting_label(demo.ExperimentConfig())
    assert "class runs" not in plain and "L_kl temperature" not in plain


def test_validate_losses_pairs_by_seed_and_applies_its_rule(tmp_path, monkeypatch) -> None:
    calls = []

    def scorer(config, *, seed, **_):
        (name,) = config.ablations
        calls.append((config.alpha, name, config.validation, config.spikes))
        score = 0.5 + 0.05 * seed  # a large seed effect that pairing removes
        if name == FULL:
            score += 0.01 if seed == 1 else 0.02
        return {"events": {name: {"unseen_top1": score}}}

    monkeypatch.setattr(demo, "run_experiment", scorer)
    grid = _args(teacher_logit_scale="40", alpha="0.5,2", zs_prompts="seen,all")
    configs = demo._tuned_configs(grid)
    out = demo.validate_losses([0, 1, 2], tmp_path, configs, lambda s: None)
    # the losses without L_zs are trained once per seed, not once per α or prompt set
    assert calls.count((0.5, "L_ct", True, False)) == 3 and (2.0, "L_ct", True, False) not in calls
    assert calls.count((2.0, FULL, True, False)) == 6  # seen and all prompts
    assert sum(c[1] == NO_TRAINING for c in calls) == 3
    first = out["settings"][0]
    assert first["full_separates_from_every_ablation"]
    d = first["full_minus_ablation_paired"]["L_ct"]
    assert d["mean"] == pytest.approx(0.05 / 3) and d["se"] == pytest.approx(d["sd"] / 3**0.5)
    md = (tmp_path / "validation-losses.md").read_text()
    assert "| L_ct | 55.0 ± 5.0 | +1.7 ± 0.6 |" in md and "logit scale fixed 40" in md

    def noisy(config, *, seed, **_):
        (name,) = config.ablations
        score = 0.5 + (0.03 if seed else -0.02) * (name == FULL)
        return {"events": {name: {"unseen_top1": score}}}

    monkeypatch.setattr(demo, "run_experiment", noisy)
    out = demo.validate_losses([0, 1, 2], tmp_path, configs[:1], lambda s: None)
    assert not out["settings"][0]["full_separates_from_every_ablation"]

    def zs_helps(config, *, seed, **_):  # L_ct + α·L_zs is as good as the full loss
        (name,) = config.ablations
        score = 0.5 + 0.05 * seed + 0.02 * (name in (FULL, "L_ct + α·L_zs"))
        return {"events": {name: {"unseen_top1": score + 0.001 * seed * (name == FULL)}}}

    monkeypatch.setattr(demo, "run_experiment", zs_helps)
    out = demo.validate_losses([0, 1, 2], tmp_path, configs[:1], lambda s: None)
    first = out["settings"][0]
    assert first["full_separates_from_the_demos_ablations"]
    assert not first["full_separates_from_every_ablation"]


def test_loss_settings_need_validation_losses_and_are_checked(tmp_path) -> None:
    with pytest.raises(SystemExit, match=r"^error: --alpha needs --validation losses$"):
        demo.main(["--alpha", "0.5", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"^error: teacher logit_scale must be in \(0, 100\]"):
        demo.main(["--validation", "losses", "--teacher-logit-scale", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"^error: trainable 'deep'"):
        demo.main(["--validation", "losses", "--trainable", "deep", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"^error: class_run must be an integer >= 1"):
        demo.main(["--validation", "losses", "--class-run", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"^error: alpha, kl_weight and kl_temperature"):
        demo.main(["--validation", "losses", "--kl-temperature", "-1", "--out", str(tmp_path)])


def test_settings_summary_pairs_each_setting_with_the_first() -> None:
    def setting(label, full, ct, kl):
        top1 = {FULL: full, "L_ct": ct, "L_ct + λ·L_kl": kl}
        rows = {n: demo._mean_sd(v) for n, v in top1.items()}
        return {
            "label": label,
            "per_seed_top1": top1,
            "pseudo_unseen_top1": rows,
            "full_separates_from_the_demos_ablations": False,
        }

    report = {
        "settings": [
            setting("base", [0.70, 0.60, 0.50], [0.72, 0.62, 0.52], [0.72, 0.62, 0.52]),
            setting("base; runs 8", [0.71, 0.62, 0.53], [0.70, 0.60, 0.50], [0.71, 0.61, 0.51]),
        ]
    }
    lines = demo.settings_summary(report)
    assert lines[-2].startswith("| (first) base | 60.0 | 62.0 | +0.0 ± 0.0 | +0.0 ± 0.0 |")
    # full +1/+2/+3 over the first's, L_ct -2 each seed, L_kl adds +1 each seed
    assert lines[-1] == "| runs 8 | 62.0 | 60.0 | +2.0 ± 1.0 | -2.0 ± 0.0 | +1.0 ± 0.0 | False |"
