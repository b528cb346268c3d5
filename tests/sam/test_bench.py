"""The bench's reference model: segment-anything's classes wired as our shipped config."""

import pytest
import torch
from torch.testing import assert_close

pytest.importorskip("segment_anything")

from coursekit.sam import SamPredictor, build_sam_tiny  # noqa: E402
from coursekit.sam.bench import reference_sam  # noqa: E402
from coursekit.sam.train import SAM_CONFIG  # noqa: E402


def test_reference_sam_loads_the_shipped_config_strictly_and_agrees():
    from segment_anything import SamPredictor as RefPredictor

    torch.manual_seed(0)
    ours = build_sam_tiny(**SAM_CONFIG).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # no zero-initialised parameter left
    ref = reference_sam(SAM_CONFIG, ours.state_dict())
    image = (torch.rand(3, ours.img_size, ours.img_size) * 255).to(torch.uint8)
    a, b = SamPredictor(ours), RefPredictor(ref)
    a.set_image(image)
    b.set_image(image.permute(1, 2, 0).numpy())
    _, iou_a, low_a = a.predict(point_coords=[[20.0, 30.0]], point_labels=[1])
    _, iou_b, low_b = b.predict(point_coords=torch.tensor([[20.0, 30.0]]).numpy(),
                                point_labels=torch.tensor([1]).numpy())
    assert_close(low_a, torch.from_numpy(low_b), rtol=0, atol=1e-4)
    assert_close(iou_a, torch.from_numpy(iou_b), rtol=0, atol=1e-5)
