"""The glyph set: deterministic, and (image, events, spikes) are exact pairs of one scene."""

from __future__ import annotations

import numpy as np
import pytest

from spikesim import (
    GLYPH_CLASSES,
    GlyphSpec,
    SpikesimError,
    dvs,
    encode,
    event_grey_frame,
    glyph_prompts,
    make_glyph_set,
    render_glyph,
    spike_rate_frame,
)


def test_render_is_deterministic_and_pairs_are_exact() -> None:
    spec = GlyphSpec(saccade_frames=8, spike_steps=2)
    a = render_glyph(7, seed=3, index=5, spec=spec)
    b = render_glyph(7, seed=3, index=5, spec=spec)
    for name in ("image", "frames", "events", "spikes"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert np.array_equal(a.image, a.frames[0])
    assert len(a.events) > 50  # saccades over an edge make events
    assert a.spikes.shape == (16, 32, 32)
    # Events and spikes are the sensors' outputs for exactly these frames.
    ev = dvs(a.frames, fps=spec.fps, preset="clean", seed=a.sensor_seed)
    assert ev.tobytes() == a.events.tobytes()
    sp = encode(np.repeat(a.frames, 2, axis=0), threshold=spec.spike_threshold, seed=a.sensor_seed)
    assert sp.tobytes() == a.spikes.tobytes()


def test_other_seed_or_index_gives_another_scene() -> None:
    a = render_glyph(2, seed=0, index=0).image
    assert not np.array_equal(a, render_glyph(2, seed=1, index=0).image)
    assert not np.array_equal(a, render_glyph(2, seed=0, index=1).image)


def test_set_matches_single_samples_whatever_the_order() -> None:
    spec = GlyphSpec(saccade_frames=6, spike_steps=2)
    g = make_glyph_set([4, 1], 3, seed=2, first_index=1, spec=spec)
    assert g.images.shape == g.events.shape == g.spikes.shape == (6, 32, 32)
    assert g.labels.tolist() == [4, 4, 4, 1, 1, 1] and g.index.tolist() == [1, 2, 3] * 2
    s = render_glyph(1, seed=2, index=2, spec=spec)
    assert np.array_equal(g.images[4], s.image)
    assert np.array_equal(g.events[4], event_grey_frame(s.events, 32, 32))
    assert np.array_equal(g.spikes[4], spike_rate_frame(s.spikes, spec.spike_threshold))
    other = make_glyph_set([1], 2, seed=2, first_index=2, spec=spec)
    assert np.array_equal(other.events[0], g.events[4])
    assert g.events.max() < 1 and g.events.min() >= 0


def test_prompts_and_bad_input() -> None:
    assert len(GLYPH_CLASSES) == 26
    p = glyph_prompts([7, 10])
    assert p[0][0] == "a photo of the digit seven." and "the letter a" in p[1][1]
    with pytest.raises(SpikesimError, match="glyph class"):
        render_glyph(26)
    with pytest.raises(SpikesimError, match="multiple of 8"):
        GlyphSpec(size=(17, 17))
    with pytest.raises(SpikesimError, match="dvs preset"):
        GlyphSpec(dvs_preset="nope")
