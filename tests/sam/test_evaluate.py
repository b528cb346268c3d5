"""The evaluation protocol (coursekit/sam/evaluate.py), with a stand-in predictor."""

import pytest
import torch

from coursekit.sam import SamPredictor, build_sam_tiny
from coursekit.sam.evaluate import evaluate_sam, interactive_ious


class Oracle(SamPredictor):
    """Answers every prompt with fixed masks (the truth, a half and nothing), so the
    metrics are known by hand."""

    def __init__(self, model, gt):
        super().__init__(model)
        self.gt = gt

    def predict_batch(self, point_coords, point_labels, boxes=None, mask_input=None,
                      multimask_output=True, *, return_logits=False):
        G = len(self.gt)
        half = self.gt.clone()
        half[:, :, : self.gt.shape[-1] // 2] = False
        empty = torch.zeros_like(self.gt)
        if multimask_output:
            masks = torch.stack([half, self.gt, empty], dim=1)  # (G, 3, H, W)
            scores = torch.tensor([[0.9, 0.5, 0.1]]).expand(G, 3)  # picks the half
        else:
            masks, scores = self.gt[:, None], torch.ones(G, 1)
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
    assert {"miou_best_of_3", "pick_rate", "miou_click1", "miou_click3", "objects"} <= set(m)
    assert 0 <= m["miou_click1"] <= m["miou_best_of_3"] <= 1 and 0 <= m["pick_rate"] <= 1
    assert any(k.startswith("best_of_3_") for k in m)
    with pytest.raises(TypeError, match="model must be a coursekit.sam.Sam"):
        evaluate_sam(object(), [0])
    with pytest.raises(TypeError, match="predictor must be a SamPredictor"):
        interactive_ious(object(), torch.zeros(1, 4, 4, dtype=torch.bool))
