"""The embedded default dataset: short RGB videos of textured objects doing labelled actions.

``synthesize(out)`` writes, in UCF101 layout::

    OUT/<Class>/v_<Class>_gXX_cYY.avi    MJPG, RGB, `frames` frames of `size` at `fps`
    OUT/captions.jsonl                   {"path": "<Class>/<file>.avi", "caption": "..."}
    OUT/ucfTrainTestlist/classInd.txt    "1 Grow"
    OUT/ucfTrainTestlist/trainlist01.txt "Grow/v_Grow_g01_c01.avi 1"
    OUT/ucfTrainTestlist/testlist01.txt  "Grow/v_Grow_g02_c01.avi"
    OUT/README.txt

Several classes differ only by the direction of time (a ``Shrink`` clip played backwards is a
valid ``Grow`` clip: both come from one motion generator, one of them reversed) or only by
speed, so a model that ignores temporal order cannot solve the dataset. Appearance carries
no label: group ``gXX`` has the same object and background in every class, and groups, not
clips, are split between train and test. See ``docs/synth.md``.
"""

from __future__ import annotations

from .classes import (
    CLASS_SPECS,
    CLIPS_PER_GROUP,
    STYLES,
    ClassSpec,
    SynthClip,
    class_names,
    clip_name,
    is_test_group,
)
from .render import render_clip
from .write import synthesize

__all__ = [
    "CLASS_SPECS",
    "CLIPS_PER_GROUP",
    "STYLES",
    "ClassSpec",
    "SynthClip",
    "class_names",
    "clip_name",
    "is_test_group",
    "render_clip",
    "synthesize",
]
