"""The evaluation protocol (coursekit/sam/evaluate.py), with a stand-in predictor."""

import pytest
import torch

from coursekit.sam import SamPredictor, build_sam_tiny
from coursekit.sam.evaluate import box_ious, count_pieces, evaluate_sam, interactive_ious


class Oracle(SamPredictor):
    """Answers every prompt with fixed masks (the truth, a half and nothing), so the
    metrics are known by hand."""

    def __init__(self, model, gt, half_for_one=False):
        super().__init__(model)
        self.gt, self.half_for_one = gt, half_for_one

    def predict_batch(self, point_coords, point_labels, boxes=None, mask_input=None,
                      multimask_output=True, *, return_logits=False):
        G = len(self.gt)
        half = self.gt.clone()
        half[:, :, : self.gt.shape[-1] // 2] = False
        empty = torch.zeros_like(self.gt)
        self.boxes = boxes
        if multimask_output:
            masks = torch.stack([half, self.gt, empty], dim=1)  # (G, 3, H, W)
            scores = torch.tensor([[0.9, 0.5, 0.1]]).expand(G, 3)  # picks the half
        else:
            masks, scores = (half if self.half_for_one else self.gt)[:, None], torch.ones(G, 1)
        return masks, scores, torch.zeros(G, masks.shape[1], 4, 4)


def test_interactive_ious_hand_computed():
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[0, 2:6, 2:6] = True
    gt[1, 0:4, 0:8] = True
    model = build_sam_tiny(img_size=32, encoder_embed_dim=16, encoder_depth=1,
                           encoder_num_heads=2, encoder_global_attn_indexes=(0,))
    out = interactive_ious(Oracle(model, gt), gt, clicks=3)
    assert out["three"].tolist() == [[0.5, 1.0, 0.0], [0.5, 1.0, 0.0]]
    assert out["clicks"].tolist() == [[0.5, 1.0, 1.0], [0.5, 1.0, 1.0]]  # click 1: the pick
    assert out["predicted"][0].tolist() == pytest.approx([0.9, 0.5, 0.1])


def test_evaluate_sam_keys_and_bounds():
    torch.manual_seed(0)
    model = build_sam_tiny(img_size=64, encoder_embed_dim=32, encoder_depth=1,
                           encoder_global_attn_indexes=(0,)).eval()
    m = evaluate_sam(model, [3_000_000, 3_000_001], size=64, clicks=3)
    assert {"miou_best_of_3", "pick_rate", "miou_click1", "miou_click3", "objects", "miou_box",
            "miou_one_piece", "miou_in_pieces", "in_pieces"} <= set(m)
    assert 0 <= m["miou_box"] <= 1 and 0 <= m["in_pieces"] <= m["objects"]
    assert any(k.startswith("box_") for k in m)
    assert 0 <= m["miou_click1"] <= m["miou_best_of_3"] <= 1 and 0 <= m["pick_rate"] <= 1
    assert any(k.startswith("best_of_3_") for k in m)
    with pytest.raises(TypeError, match="model must be a coursekit.sam.Sam"):
        evaluate_sam(object(), [0])
    with pytest.raises(TypeError, match="predictor must be a SamPredictor"):
        interactive_ious(object(), torch.zeros(1, 4, 4, dtype=torch.bool))


def _tiny():
    return build_sam_tiny(img_size=32, encoder_embed_dim=16, encoder_depth=1,
                          encoder_num_heads=2, encoder_global_attn_indexes=(0,))


def test_box_ious_hand_computed():
    """The box of each object, in pixel edges, goes in; the one mask's IoU comes out."""
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[0, 2:6, 2:6] = True  # the oracle's box answer is its right half: IoU 0.5
    gt[1, 1, 7] = True  # one pixel in the right half: the answer is the object, IoU 1
    oracle = Oracle(_tiny(), gt, half_for_one=True)
    assert box_ious(oracle, gt).tolist() == [0.5, 1.0]
    assert oracle.boxes.tolist() == [[2.0, 2.0, 6.0, 6.0], [7.0, 1.0, 8.0, 2.0]]


def test_box_ious_random_boxes_against_nonzero():
    """The boxes it sends, against each mask's pixel coordinates' min and max + 1."""
    g = torch.Generator().manual_seed(2)
    gt = torch.rand(6, 9, 11, generator=g) < 0.15
    gt[:, 4, 5] = True  # none empty
    oracle = Oracle(_tiny(), gt)
    ious = box_ious(oracle, gt)
    for m, box in zip(gt, oracle.boxes, strict=True):
        ys, xs = m.nonzero(as_tuple=True)
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert ious.tolist() == [1.0] * 6  # the oracle answers a box with the truth


def test_box_ious_bad_input():
    gt = torch.zeros(1, 8, 8, dtype=torch.bool)
    with pytest.raises(TypeError, match="predictor must be a SamPredictor"):
        box_ious(object(), gt)
    with pytest.raises(TypeError, match=r"gt_masks must be a bool Tensor\[G, H, W\]"):
        box_ious(Oracle(_tiny(), gt), gt.float())
    with pytest.raises(ValueError, match="gt_masks must"):
        box_ious(Oracle(_tiny(), gt), gt[0])
    with pytest.raises(ValueError, match="gt_masks must not hold an empty mask"):
        box_ious(Oracle(_tiny(), gt), gt)


def test_count_pieces_hand_computed():
    m = torch.zeros(5, 5, dtype=torch.bool)
    assert count_pieces(m) == 0
    m[0, 0] = m[1, 1] = True  # touching at a corner: one piece
    assert count_pieces(m) == 1
    m[3:5, 3:5] = True
    assert count_pieces(m) == 2
    m[2, 2] = True  # a diagonal bridge
    assert count_pieces(m) == 1


def _flood_fill_pieces(mask):
    """The reference: label 8-connected pieces by a breadth-first search, pixel by pixel."""
    H, W = len(mask), len(mask[0])
    seen, pieces = set(), 0
    for y in range(H):
        for x in range(W):
            if not mask[y][x] or (y, x) in seen:
                continue
            pieces += 1
            queue = [(y, x)]
            seen.add((y, x))
            while queue:
                cy, cx = queue.pop()
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = cy + dy, cx + dx
                        if (0 <= ny < H and 0 <= nx < W and mask[ny][nx]
                                and (ny, nx) not in seen):
                            seen.add((ny, nx))
                            queue.append((ny, nx))
    return pieces


@pytest.mark.parametrize("p", [0.2, 0.4, 0.6])
def test_count_pieces_random_against_flood_fill(p):
    g = torch.Generator().manual_seed(int(p * 10))
    for _ in range(5):
        m = torch.rand(12, 9, generator=g) < p
        assert count_pieces(m) == _flood_fill_pieces(m.tolist())


def test_count_pieces_bad_input():
    with pytest.raises(TypeError, match="mask must be a bool"):
        count_pieces(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mask must"):
        count_pieces(torch.zeros(2, 3, 3, dtype=torch.bool))
