"""Class names as words, prompt templates, and the template ensemble used for zero-shot.

UCF101 names are CamelCase (``ApplyEyeMakeup``), HMDB51 names are snake_case
(``brush_hair``); both become lower-case words ("apply eye makeup", "brush hair") that
are put into sentence templates to make a text for each class.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import SpklipError

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


def load_prompts(path: str | os.PathLike) -> dict[str, list[str]]:
    """Class texts from a JSON file ``{"<class folder>": ["text", ...], ...}`` (for zero-shot
    with wordings of one's own instead of :data:`TEMPLATES`). One-line SpklipError for a file
    that is not such a mapping."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpklipError(f"{path}: no such prompts file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpklipError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict) or not data:
        raise SpklipError(f'{path}: expected {{"<class>": ["text", ...], ...}}, a JSON object')
    for cls, texts in data.items():
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t.strip() for t in texts)
        ):
            raise SpklipError(f"{path}: class {cls!r} needs a non-empty list of texts")
    return {str(k): [str(t) for t in v] for k, v in data.items()}


def class_text_groups(
    classes: Sequence[str],
    templates: Sequence[str] = TEMPLATES,
    class_texts: Mapping[str, Sequence[str]] | None = None,
) -> list[list[str]]:
    """The texts of each class: its own (``class_texts``, which must name every class), or
    the class words in every template."""
    if class_texts is None:
        return ensemble_prompts(classes, templates)
    missing = [c for c in classes if c not in class_texts]
    if missing:
        raise SpklipError(
            f"the prompts name no texts for {len(missing)} classes (first: {missing[0]!r}); "
            "give every class folder of the dataset"
        )
    return [list(class_texts[c]) for c in classes]
