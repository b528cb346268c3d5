"""ShapesWorld captions: a short sentence per thing, built from its attributes.

Lecture: *Dense captioning* (DenseCap) predicts a text description for each detected
region. Our regions are ShapesWorld's things and each sentence is made from what the
scene knows about the thing::

    <size> <colour> <category> left of a <category>     "small red circle left of a person"
    <size> <colour> <category> right of a <category>    "big blue person right of a square"
    <size> <colour> <category> alone                    (no other thing near it)

* size: ``small`` / ``big`` — the box's ``sqrt(w h)`` below / above ``SIZE_THRESHOLD`` of
  its category (about the median at 64 pixels), scaled by ``sqrt(H W) / 64``;
* colour: a shape's fill (``red`` circles, ``purple`` squares, ``gold`` triangles), a
  person's shirt (the colour of the visible torso pixels, the nearest of ``SHIRT_COLOURS``);
* relation: the nearest other thing (centre to centre) whose centre lies within
  ``CONTEXT`` pixels (± 24 across, ± 16 up and down at 64 pixels, scaled by ``W / 64``
  across and ``H / 64`` up and down) of this thing's centre, ``left of`` when this thing's
  centre is left of it; ``alone`` when there is none.

Crowd groups get no caption and are nobody's neighbour; nor is a person with no visible
pixel (its shirt colour is unknown). ``VOCAB`` holds every word plus
``<pad>`` (0), ``<bos>``, ``<eos>``; ``encode`` / ``decode`` map sentences to token rows
``[<bos>, w1, ..., <eos>, <pad>...]`` of length ``MAX_LEN + 2`` and back. Tested in
tests/heads/test_captions.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.data.layout import SHIRT_RGB
from coursekit.heads._checks import check_scene
from coursekit.validators import (
    describe,
    require_dim,
    require_integer,
)

__all__ = ["CONTEXT", "MAX_LEN", "SHAPE_COLOURS", "SHIRT_COLOURS", "SIZE_THRESHOLD", "VOCAB",
           "caption_things", "decode", "encode"]

CATEGORY_WORDS = {4: "circle", 5: "square", 6: "triangle", 7: "person"}
SHAPE_COLOURS = {4: "red", 5: "purple", 6: "gold"}  # ShapesWorld's fills (layout.SHAPE_RGB)
SHIRT_COLOURS = ["white", "blue", "pink", "teal", "orange", "yellow"]  # layout.SHIRT_RGB order
SIZE_THRESHOLD = {4: 13.0, 5: 13.0, 6: 13.0, 7: 24.0}  # sqrt(box area) at 64 pixels
CONTEXT = (24.0, 16.0)  # half width, half height of the neighbourhood at 64 pixels
TORSO_PARTS = (2, 3, 4)  # torso and upper arms: the shirt (coursekit.data.PART_NAMES)
WORDS = ["small", "big", "red", "purple", "gold", *SHIRT_COLOURS, "circle", "square",
         "triangle", "person", "left", "right", "of", "a", "alone"]
VOCAB = ["<pad>", "<bos>", "<eos>", *WORDS]
PAD, BOS, EOS = 0, 1, 2
MAX_LEN = 7  # words in the longest sentence


def _shirt_colour(image: Tensor, pixels: Tensor) -> str:
    """Nearest named shirt colour to the median colour of ``pixels`` (bool [H, W])."""
    rgb = image[:, pixels].median(dim=1).values.cpu().double()  # (3,)
    table = torch.tensor(SHIRT_RGB, dtype=torch.float64)
    return SHIRT_COLOURS[int(((table - rgb) ** 2).sum(1).argmin())]


def caption_things(scene) -> tuple[Tensor, list[str]]:
    """The caption of each non-crowd thing of a ``Scene``: ``(rows, sentences)``.

    ``rows``: int64 Tensor[K] on the scene's device, the rows of ``scene.boxes`` / ``labels``
    / ``masks`` that get a caption (crowds and persons with an empty mask are skipped);
    ``sentences``: K strings (module docstring).
    """
    check_scene(scene, masks=True, parts=True)
    boxes, labels = scene.boxes.float().cpu(), scene.labels.cpu()
    H, W = scene.image.shape[-2:]
    scale_x, scale_y, scale = W / 64.0, H / 64.0, (H * W) ** 0.5 / 64.0
    visible = scene.masks.flatten(1).any(1).cpu()
    keep = ~scene.iscrowd.cpu().bool() & ((labels != 7) | visible)
    rows = torch.where(keep)[0]
    unknown = [int(labels[r]) for r in rows.tolist() if int(labels[r]) not in CATEGORY_WORDS]
    if unknown:
        raise ValueError(f"scene.labels must be thing categories {sorted(CATEGORY_WORDS)} "
                         f"(circle, square, triangle, person) on non-crowd rows, got {unknown}")
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (N, 2)
    side = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt()
    sentences = []
    for r in rows.tolist():
        cat = int(labels[r])
        size = "small" if float(side[r]) < SIZE_THRESHOLD[cat] * scale else "big"
        if cat == 7:
            torso = scene.masks[r] & torch.isin(scene.parts, torch.tensor(
                TORSO_PARTS, device=scene.parts.device))
            colour = _shirt_colour(scene.image, torso if bool(torso.any()) else scene.masks[r])
        else:
            colour = SHAPE_COLOURS[cat]
        words = [size, colour, CATEGORY_WORDS[cat]]
        others = [o for o in rows.tolist() if o != r]
        best, best_d = None, float("inf")
        for o in others:
            dx, dy = (centre[o] - centre[r]).tolist()
            if abs(dx) <= CONTEXT[0] * scale_x and abs(dy) <= CONTEXT[1] * scale_y:
                d = dx * dx + dy * dy
                if d < best_d:
                    best, best_d = o, d
        if best is None:
            words.append("alone")
        else:
            side_word = "left" if float(centre[r, 0]) < float(centre[best, 0]) else "right"
            words += [side_word, "of", "a", CATEGORY_WORDS[int(labels[best])]]
        sentences.append(" ".join(words))
    return rows.to(scene.boxes.device), sentences


def encode(sentences: list[str], device: torch.device | str | None = None) -> Tensor:
    """int64 Tensor[K, MAX_LEN + 2]: ``[<bos>, words..., <eos>, <pad>...]`` per sentence."""
    if isinstance(sentences, str) or not isinstance(sentences, (list, tuple)):
        raise TypeError(f"sentences must be a list of str, got {describe(sentences)}")
    out = torch.full((len(sentences), MAX_LEN + 2), PAD, dtype=torch.long)
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"sentences[{i}] must be a str, got {describe(s)}")
        words = s.split()
        unknown = [w for w in words if w not in WORDS]
        if unknown or len(words) > MAX_LEN:
            raise ValueError(f"sentences[{i}] must be at most {MAX_LEN} words of VOCAB, got "
                             f"{s!r} (unknown: {unknown})")
        out[i, : len(words) + 2] = torch.tensor([BOS] + [VOCAB.index(w) for w in words] + [EOS])
    return out.to(device)


def decode(tokens: Tensor) -> list[str]:
    """Sentences of token rows int64 Tensor[K, L]: the words up to the first ``<eos>``.

    A leading ``<bos>`` and any ``<pad>`` are skipped.
    """
    require_integer(tokens, "tokens", "an int64 Tensor[K, L] of VOCAB indices")
    require_dim(tokens, "tokens", 2, "an int64 Tensor[K, L] of VOCAB indices")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= len(VOCAB)):
        raise ValueError(f"tokens must be VOCAB indices in [0, {len(VOCAB)}), got values in "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")
    out = []
    for row in tokens.tolist():
        words = []
        for t in row:
            if t == EOS:
                break
            if t not in (PAD, BOS):
                words.append(VOCAB[t])
        out.append(" ".join(words))
    return out
