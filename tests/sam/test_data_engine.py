"""The data engine's simulation (coursekit/sam/data_engine.py)."""

import pytest
import torch

from coursekit.data.shapesworld import render_batch
from coursekit.sam import build_sam_tiny
from coursekit.sam.data import crowd_circle_ids, scene_segments
from coursekit.sam.data_engine import (
    SA1B_PUBLISHED,
    STAGES,
    all_segments,
    best_match_iou,
    simulate_data_engine,
)


def test_best_match_iou_hand_computed():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    a[0, :2] = True  # rows 0-1
    a[1, :, :1] = True  # column 0
    seg = torch.zeros(2, 4, 4, dtype=torch.bool)
    seg[0, :1] = True  # row 0: IoU 4/8 with a[0]
    seg[1] = True  # everything: IoU 4/16 with a[1], 8/16 with a[0]
    assert best_match_iou(a, seg).tolist() == [0.5, 0.25]
    assert best_match_iou(a[:0], seg).shape == (0,)


def test_all_segments_kinds():
    seeds = [3]
    scenes = render_batch(seeds, size=64)
    seg = scene_segments(scenes, crowd_circle_ids(seeds, 64))[0]
    masks, kind = all_segments(seg)
    assert (kind == 0).sum() == len(scenes.masks[0])
    assert torch.equal(masks[kind == 0], scenes.masks[0])
    parts = masks[kind == 2]
    assert len(parts) >= 4 and all((p & ~scenes.masks[0].any(0)).sum() == 0 for p in parts)
    with pytest.raises(TypeError, match="seg must be a coursekit.sam.data.Segments"):
        all_segments(scenes)


def test_simulate_data_engine_rows():
    torch.manual_seed(0)
    model = build_sam_tiny(img_size=64, encoder_embed_dim=32, encoder_depth=1,
                           encoder_global_attn_indexes=(0,)).eval()
    rows = simulate_data_engine(model, [3_000_000], size=64, max_clicks=2, points_per_side=4)
    assert [r["stage"] for r in rows] == list(STAGES) and set(SA1B_PUBLISHED) == set(STAGES)
    manual = rows[0]
    scene = render_batch([3_000_000], size=64)
    assert manual["masks"] == len(scene.masks[0])  # every thing, annotated
    assert 1 <= manual["clicks_per_mask"] <= 2
    assert rows[2]["clicks_per_mask"] == 0
    for r in rows:
        assert 0 <= r["mean_iou"] <= 1 and 0 <= r["share_iou_90"] <= 1
    with pytest.raises(TypeError, match="model must be a coursekit.sam.Sam"):
        simulate_data_engine(object(), [0])
