"""SamPredictor: the full path on a 256 x 256 image against segment-anything's SamPredictor."""

import copy

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from coursekit.sam import SamPredictor
from coursekit.sam.transforms import resize_longest_side

PROMPTS = {
    "one click": dict(point_coords=[[100.0, 50.0]], point_labels=[1]),
    "clicks fg+bg": dict(point_coords=[[100.0, 50.0], [30.0, 200.0], [255.0, 0.0]],
                         point_labels=[1, 0, 1]),
    "box": dict(box=[20.0, 30.0, 180.0, 140.0]),
    "box+click": dict(point_coords=[[100.0, 50.0]], point_labels=[0],
                      box=[20.0, 30.0, 180.0, 140.0]),
}


@pytest.fixture(scope="module")
def image():
    g = torch.Generator().manual_seed(5)
    return torch.randint(0, 256, (3, 256, 256), generator=g, dtype=torch.uint8)


def _predictors(sam_pair, image, device="cpu"):
    ref, ours = (copy.deepcopy(m).to(device) for m in sam_pair)
    ref_pred = pytest.importorskip("segment_anything").SamPredictor(ref)
    ref_pred.set_image(image.permute(1, 2, 0).numpy())  # segment-anything: HWC uint8 numpy
    pred = SamPredictor(ours)
    pred.set_image(image.to(device))  # ours: CHW uint8 (or float in [0, 1]) tensor
    return ref_pred, pred


def _numpy(kwargs):
    return {k: np.array(v) for k, v in kwargs.items()}


@pytest.mark.parametrize("prompt", list(PROMPTS))
@pytest.mark.parametrize("multimask", [True, False])
def test_full_path_matches_reference(sam_pair, image, prompt, multimask, device):
    ref_pred, pred = _predictors(sam_pair, image, device)
    assert_close(pred.get_image_embedding(), ref_pred.get_image_embedding(), rtol=0, atol=1e-5)
    kwargs = PROMPTS[prompt]
    logits, iou, low = pred.predict(**kwargs, multimask_output=multimask, return_logits=True)
    logits_ref, iou_ref, low_ref = ref_pred.predict(**_numpy(kwargs), multimask_output=multimask,
                                                    return_logits=True)
    C = 3 if multimask else 1
    assert logits.shape == (C, 256, 256) and iou.shape == (C,) and low.shape == (C, 64, 64)
    assert_close(logits.cpu(), torch.from_numpy(logits_ref), rtol=0, atol=1e-5)
    assert_close(iou.cpu(), torch.from_numpy(iou_ref), rtol=0, atol=1e-5)
    assert_close(low.cpu(), torch.from_numpy(low_ref), rtol=0, atol=1e-5)
    masks, _, _ = pred.predict(**kwargs, multimask_output=multimask)
    masks_ref, _, _ = ref_pred.predict(**_numpy(kwargs), multimask_output=multimask)
    assert masks.dtype == torch.bool
    sure = torch.from_numpy(np.abs(logits_ref) > 1e-4)  # away from the threshold
    assert (masks.cpu() == torch.from_numpy(masks_ref))[sure].all()


def test_mask_input_refinement_matches_reference(sam_pair, image):
    """Feed the best low-res logits back with a second click (the interactive loop)."""
    ref_pred, pred = _predictors(sam_pair, image)
    _, iou, low = pred.predict(point_coords=[[100.0, 50.0]], point_labels=[1])
    best = low[iou.argmax()][None]  # (1, 64, 64)
    kwargs = dict(point_coords=[[100.0, 50.0], [120.0, 60.0]], point_labels=[1, 1])
    out = pred.predict(**kwargs, mask_input=best, multimask_output=False, return_logits=True)
    out_ref = ref_pred.predict(**_numpy(kwargs), mask_input=best.numpy(),
                               multimask_output=False, return_logits=True)
    for a, b in zip(out, out_ref, strict=True):
        assert_close(a, torch.from_numpy(b), rtol=0, atol=1e-5)


def test_float64_and_float_image(sam_pair, image):
    """Our predictor in float64 with a [0, 1] float image, against the float32 reference."""
    ref_pred, _ = _predictors(sam_pair, image)
    pred = SamPredictor(copy.deepcopy(sam_pair[1]).double())
    pred.set_image(image.double() / 255)
    logits, iou, low = pred.predict(**PROMPTS["clicks fg+bg"], return_logits=True)
    assert logits.dtype == iou.dtype == low.dtype == torch.float64
    logits_ref, iou_ref, _ = ref_pred.predict(**_numpy(PROMPTS["clicks fg+bg"]),
                                              return_logits=True)
    assert_close(logits, torch.from_numpy(logits_ref).double(), rtol=0, atol=1e-5)
    assert_close(iou, torch.from_numpy(iou_ref).double(), rtol=0, atol=1e-5)


def test_resized_non_square_image_matches_reference_downstream(sam_pair):
    """A 100 x 150 image: resized by our bilinear, then the same path as the reference."""
    ref, ours = sam_pair
    image = torch.rand(3, 100, 150)
    pred = SamPredictor(ours)
    pred.set_image(image)
    assert pred.input_size == (171, 256) and pred.original_size == (100, 150)
    ref_pred = pytest.importorskip("segment_anything").SamPredictor(ref)
    resized = resize_longest_side(image[None], 256) * 255  # reference units: 0..255
    ref_pred.set_torch_image(resized, (100, 150))
    kwargs = dict(point_coords=[[75.0, 40.0], [10.0, 90.0]], point_labels=[1, 0],
                  box=[5.0, 5.0, 140.0, 95.0])
    out = pred.predict(**kwargs, return_logits=True)
    out_ref = ref_pred.predict(**_numpy(kwargs), return_logits=True)
    assert out[0].shape == (3, 100, 150) and out[2].shape == (3, 64, 64)
    for a, b in zip(out, out_ref, strict=True):
        assert_close(a, torch.from_numpy(b), rtol=0, atol=1e-5)


def test_encoder_runs_once_decoder_per_prompt(sam_pair, image):
    ours = copy.deepcopy(sam_pair[1])
    calls = {"encoder": 0, "decoder": 0}
    ours.image_encoder.register_forward_hook(lambda *a: calls.update(encoder=calls["encoder"] + 1))
    ours.mask_decoder.register_forward_hook(lambda *a: calls.update(decoder=calls["decoder"] + 1))
    pred = SamPredictor(ours)
    pred.set_image(image)
    for x in (10.0, 100.0, 200.0):
        pred.predict(point_coords=[[x, x]], point_labels=[1])
    pred.predict(box=[0, 0, 50, 50])
    assert calls == {"encoder": 1, "decoder": 4}


def test_predict_batch_equals_single_predicts(sam_pair, image):
    _, pred = _predictors(sam_pair, image)
    coords = torch.tensor([[[10.0, 20.0]], [[200.0, 100.0]]])
    labels = torch.ones(2, 1, dtype=torch.long)
    masks, iou, low = pred.predict_batch(coords, labels, return_logits=True)
    for b in range(2):
        m, i, lo = pred.predict(point_coords=coords[b], point_labels=labels[b],
                                return_logits=True)
        assert_close(masks[b], m, rtol=0, atol=1e-5)
        assert_close(iou[b], i, rtol=0, atol=1e-5)
        assert_close(low[b], lo, rtol=0, atol=1e-5)


def test_outputs_are_ordinary_tensors_to_edit_and_feed_back(sam_pair, image):
    """The decoder runs in inference mode, but what comes out is cloned out of it."""
    _, pred = _predictors(sam_pair, image)
    masks, iou, low = pred.predict(point_coords=[[10.0, 20.0]], point_labels=[1])
    embedding = pred.get_image_embedding()
    for t in (masks, iou, low, embedding):
        assert not t.is_inference()
    masks[0, :4] = False  # in place: allowed
    low[0] += 1.0
    again, _, _ = pred.predict(point_coords=[[10.0, 20.0]], point_labels=[1],
                               mask_input=low[:1], multimask_output=False)
    assert again.shape[0] == 1 and not again.is_inference()
    before, _, _ = pred.predict(point_coords=[[10.0, 20.0]], point_labels=[1], return_logits=True)
    embedding.zero_()  # a copy: the cached embedding, and the next answer, stay as they were
    after, _, _ = pred.predict(point_coords=[[10.0, 20.0]], point_labels=[1], return_logits=True)
    assert torch.equal(before, after)


def test_bad_inputs(sam_pair, image):
    pred = SamPredictor(sam_pair[1])
    with pytest.raises(RuntimeError, match=r"predict\(\) needs an image: call set_image\(image\)"):
        pred.predict(point_coords=[[1.0, 1.0]], point_labels=[1])
    with pytest.raises(TypeError, match=r"image must be a Tensor\[3, H, W\].*got ndarray"):
        pred.set_image(image.numpy())
    with pytest.raises(ValueError, match=r"image must be Tensor\[3, H, W\].*Tensor\[256, 256\]"):
        pred.set_image(image[0])
    with pytest.raises(TypeError, match="image must be .*got Tensor\\[3, 4, 4\\] int64"):
        pred.set_image(torch.zeros(3, 4, 4, dtype=torch.long))
    pred.set_image(image)
    with pytest.raises(ValueError, match=r"point_coords must lie inside the image \(0 <= x <= 256"):
        pred.predict(point_coords=[[10.0, 10.0], [300.0, 5.0]], point_labels=[1, 1])
    with pytest.raises(ValueError, match=r"point_coords must lie inside.*-1\.0"):
        pred.predict(point_coords=[[-1.0, 5.0]], point_labels=[1])
    with pytest.raises(ValueError, match=r"one label per point: Tensor\[2\], got Tensor\[3\]"):
        pred.predict(point_coords=[[1.0, 1.0], [2.0, 2.0]], point_labels=[1, 0, 1])
    with pytest.raises(ValueError, match="point_labels must be given with point_coords"):
        pred.predict(point_coords=[[1.0, 1.0]])
    with pytest.raises(ValueError, match="point_labels was given without point_coords"):
        pred.predict(point_labels=[1])
    with pytest.raises(ValueError, match=r"point_labels must be 1 \(foreground\) or 0"):
        pred.predict(point_coords=[[1.0, 1.0]], point_labels=[2])
    with pytest.raises(ValueError, match=r"point_coords must be Tensor\[N, 2\]"):
        pred.predict(point_coords=[1.0, 1.0], point_labels=[1])
    with pytest.raises(ValueError, match=r"box must be 4 numbers \(x1, y1, x2, y2\), got Tensor"):
        pred.predict(box=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="box must be 4 numbers"):
        pred.predict(box="1 2 3 4")
    with pytest.raises(ValueError, match="box must have x2 >= x1"):
        pred.predict(box=[10, 10, 5, 20])
    with pytest.raises(ValueError, match=r"mask_input must be Tensor\[1, 64, 64\]"):
        pred.predict(box=[1, 1, 5, 5], mask_input=torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="give point_coords and point_labels together"):
        pred.predict_batch(torch.zeros(1, 1, 2), None)
    with pytest.raises(TypeError, match="sam_model must be a coursekit.sam.Sam"):
        SamPredictor(sam_pair[0])
