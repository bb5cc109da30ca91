"""Class names as words, prompt templates, and the template ensemble used for zero-shot.

UCF101 names are CamelCase (``ApplyEyeMakeup``), HMDB51 names are snake_case
(``brush_hair``); both become lower-case words ("apply eye makeup", "brush hair") that
are put into sentence templates to make a text for each class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# A lower-case letter or digit followed by an upper-case one ("yE" in "ApplyEyeMakeup"),
# or an upper-case run followed by a capitalised word ("UCFTest" -> "UCF Test").
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\-\s.]+")

TEMPLATES: tuple[str, ...] = (
    "a spike camera video of {}.",
    "a spike camera video of a person doing {}.",
    "a spike stream showing {}.",
    "spike camera footage of {}.",
    "a video of {}.",
    "a clip of someone doing {}.",
    "an example of {}.",
    "a recording of the action: {}.",
)
"""Sentence templates with one ``{}`` for the class words. The first is the one used
when a single prompt is needed; zero-shot evaluation averages over all of them."""


def class_to_words(name: str) -> str:
    """``"ApplyEyeMakeup"`` -> ``"apply eye makeup"``; ``"brush_hair"`` -> ``"brush hair"``.

    Splits CamelCase boundaries, underscores, hyphens and dots, lower-cases, and joins the
    pieces with single spaces. An already spaced name only gets lower-cased.
    """
    spaced = _SEPARATORS.sub(" ", name)
    spaced = _CAMEL_BOUNDARY.sub(" ", spaced)
    return " ".join(spaced.lower().split())


def class_prompt(name: str, template: str = TEMPLATES[0]) -> str:
    """One prompt for a class: ``template`` filled with the class words."""
    return template.format(class_to_words(name))


def ensemble_prompts(
    classes: Sequence[str], templates: Sequence[str] = TEMPLATES
) -> list[list[str]]:
    """For each class, its prompts under every template: ``len(classes)`` lists of
    ``len(templates)`` strings. Zero-shot classification encodes them all, averages the
    L2-normalised text features of each class, and normalises again."""
    return [[t.format(class_to_words(c)) for t in templates] for c in classes]


def random_prompt(name: str, rng: np.random.Generator, templates: Sequence[str] = TEMPLATES) -> str:
    """A prompt for one training clip, the template drawn with ``rng``."""
    return templates[int(rng.integers(len(templates)))].format(class_to_words(name))


def all_prompt_texts(classes: Sequence[str], templates: Sequence[str] = TEMPLATES) -> list[str]:
    """Every prompt of every class, flat: text the tokenizer is trained on."""
    return [p for group in ensemble_prompts(classes, templates) for p in group]
