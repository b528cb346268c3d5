"""ShapesWorld captions: hand-built scenes with known sentences, the rules on rendered
scenes, encode/decode round trip, bad input."""

from types import SimpleNamespace

import pytest
import torch

from coursekit.data.layout import SHIRT_RGB
from coursekit.data.shapesworld import render_scene
from coursekit.heads.captions import (
    MAX_LEN,
    SHIRT_COLOURS,
    VOCAB,
    caption_things,
    decode,
    encode,
)


def fake_scene(boxes, labels, crowd=None, shirt=None, size=64):
    """A scene with box-shaped masks; persons' torsos painted ``shirt`` (an RGB triple)."""
    n = len(boxes)
    boxes = torch.tensor(boxes, dtype=torch.float32)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    parts = torch.zeros(size, size, dtype=torch.long)
    image = torch.zeros(3, size, size)
    for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        masks[k, y1:y2, x1:x2] = True
        if labels[k] == 7:
            parts[y1:y2, x1:x2] = 2  # torso
            image[:, y1:y2, x1:x2] = torch.tensor(shirt).view(3, 1, 1)
    return SimpleNamespace(boxes=boxes, labels=torch.tensor(labels), masks=masks, parts=parts,
                           image=image,
                           iscrowd=torch.tensor(crowd or [False] * n))


def test_hand_built_scene():
    # a small circle at x 10..20 and a big person at x 30..60 (centres 15 and 45 apart by 30
    # > 24: too far), a small square at x 20..26 next to the circle
    scene = fake_scene([[10, 40, 20, 50], [30, 20, 60, 60], [21, 44, 27, 50]], [4, 7, 5],
                       shirt=SHIRT_RGB[1])
    rows, text = caption_things(scene)
    assert rows.tolist() == [0, 1, 2]
    assert text == ["small red circle left of a square",
                    "big blue person right of a square",  # the square's centre 24 < 45
                    "small purple square right of a circle"]


def test_alone_crowds_and_sizes():
    # circle side sqrt(14 * 14) = 14 >= 13: big; a crowd right next to it is ignored
    scene = fake_scene([[0, 0, 14, 14], [14, 0, 20, 6], [40, 40, 48, 48]], [4, 4, 6],
                       crowd=[False, True, False])
    rows, text = caption_things(scene)
    assert rows.tolist() == [0, 2]
    assert text == ["big red circle alone", "small gold triangle alone"]


@pytest.mark.parametrize("k", range(len(SHIRT_COLOURS)))
def test_shirt_colours(k):
    scene = fake_scene([[10, 10, 40, 60]], [7], shirt=SHIRT_RGB[k])
    assert caption_things(scene)[1] == [f"big {SHIRT_COLOURS[k]} person alone"]


def test_person_with_no_visible_pixel_gets_no_caption_regression():
    # it raised an IndexError (the median of no pixel); now it is skipped, and is nobody's
    # neighbour: the circle 10 pixels away is alone
    scene = fake_scene([[10, 40, 20, 50], [20, 40, 30, 50]], [4, 7], shirt=SHIRT_RGB[0])
    scene.masks[1] = False
    rows, text = caption_things(scene)
    assert rows.tolist() == [0]
    assert text == ["small red circle alone"]


def test_non_square_image_scales_each_axis_regression():
    # a 64-wide, 128-tall image: across the reach stays 24 pixels, up and down it is 32
    # (it was 16: the width's scale), and the size threshold is 13 * sqrt(2) = 18.4
    scene = fake_scene([[10, 10, 26, 26], [12, 38, 28, 54], [50, 10, 64, 24]], [4, 5, 6])
    tall = SimpleNamespace(**{**vars(scene),
                              "image": torch.zeros(3, 128, 64),
                              "masks": torch.cat([scene.masks, torch.zeros(3, 64, 64,
                                                                           dtype=torch.bool)], 1),
                              "parts": torch.zeros(128, 64, dtype=torch.long)})
    assert caption_things(scene)[1] == ["big red circle alone", "big purple square alone",
                                        "big gold triangle alone"]  # 28 > 16 apart; 40 > 24
    assert caption_things(tall)[1] == ["small red circle left of a square",  # 16 < 18.4
                                       "small purple square right of a circle",
                                       "small gold triangle alone"]


def test_rendered_scenes_follow_the_rules():
    for seed in range(5):
        scene = render_scene(seed)
        rows, text = caption_things(scene)
        assert len(rows) == int((~scene.iscrowd).sum())
        for r, sentence in zip(rows.tolist(), text, strict=True):
            words = sentence.split()
            cat = {4: "circle", 5: "square", 6: "triangle", 7: "person"}[int(scene.labels[r])]
            assert words[2] == cat
            assert words[3] in ("left", "right", "alone")
            assert len(words) in (4, 7)
        assert decode(encode(text)) == text


def test_encode_layout():
    tokens = encode(["small red circle alone"])
    words = ["<bos>", "small", "red", "circle", "alone", "<eos>"]
    assert tokens.shape == (1, MAX_LEN + 2)
    assert tokens[0, :6].tolist() == [VOCAB.index(w) for w in words]
    assert tokens[0, 6:].tolist() == [0] * (MAX_LEN + 2 - 6)  # <pad>


def test_bad_input():
    with pytest.raises(ValueError, match="at most 7 words of VOCAB.*unknown: \\['green'\\]"):
        encode(["small green circle alone"])
    with pytest.raises(TypeError, match="sentences must be a list of str"):
        encode("small red circle alone")
    with pytest.raises(ValueError, match="tokens must be VOCAB indices"):
        decode(torch.tensor([[1, 99]]))
    with pytest.raises(TypeError, match="tokens must be an int64"):
        decode(torch.zeros(1, 3))


def test_caption_things_bad_input():
    scene = fake_scene([[10, 40, 20, 50], [30, 20, 60, 60]], [4, 7], shirt=SHIRT_RGB[0])
    with pytest.raises(ValueError, match=r"scene.labels must be thing categories \[4, 5, 6, 7\] "
                                         r"\(circle, square, triangle, person\) on non-crowd "
                                         r"rows, got \[3\]"):
        caption_things(SimpleNamespace(**{**vars(scene), "labels": torch.tensor([4, 3])}))
    with pytest.raises(ValueError, match=r"scene.masks must be Tensor\[2, 64, 64\] \(scene.boxes "
                                         r"has 2 rows, scene.image is 64 x 64\), got "
                                         r"Tensor\[1, 64, 64\]"):
        caption_things(SimpleNamespace(**{**vars(scene), "masks": scene.masks[:1]}))
    with pytest.raises(ValueError, match=r"scene.boxes must be Tensor\[N, 4\]"):
        caption_things(SimpleNamespace(**{**vars(scene), "boxes": scene.boxes[:, :3]}))
    with pytest.raises(TypeError, match=r"scene.masks must be a bool"):
        caption_things(SimpleNamespace(**{**vars(scene), "masks": scene.masks.float()}))
    with pytest.raises(TypeError, match=r"scene must be a ShapesWorld Scene .* without parts"):
        caption_things(SimpleNamespace(**{k: v for k, v in vars(scene).items() if k != "parts"}))
    # a crowd row may carry any label: it gets no caption
    crowd = SimpleNamespace(**{**vars(scene), "labels": torch.tensor([4, 3]),
                               "iscrowd": torch.tensor([False, True])})
    assert caption_things(crowd)[1] == ["small red circle alone"]
