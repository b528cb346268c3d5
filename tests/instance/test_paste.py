"""paste_masks_in_image against torchvision (aligned=False) and Detectron2 (aligned=True)."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste

import coursekit.instance.paste as paste_module
from coursekit.instance import paste_masks_in_image, paste_masks_in_image_loop


def random_case(N, M, H, W, dtype=torch.float64):
    """Masks and boxes that overlap the image (torchvision's slicing fails on boxes outside)."""
    masks = torch.rand(N, 1, M, M, dtype=dtype)
    xy = torch.rand(N, 2, dtype=dtype) * (torch.tensor([W, H], dtype=dtype) - 1) - 3
    boxes = torch.cat([xy, xy + torch.rand(N, 2, dtype=dtype) * 25 + 4], 1)
    return masks, boxes


def detectron2_paste(masks, boxes, H, W):
    """Detectron2's ``_do_paste_mask`` on the whole image (as on CPU): grid_sample at centres."""
    x0, y0, x1, y1 = boxes[:, 0:1], boxes[:, 1:2], boxes[:, 2:3], boxes[:, 3:4]  # (N, 1) each
    img_y = torch.arange(H, dtype=masks.dtype, device=masks.device) + 0.5
    img_x = torch.arange(W, dtype=masks.dtype, device=masks.device) + 0.5
    gy = ((img_y - y0) / (y1 - y0) * 2 - 1)[:, :, None].expand(-1, H, W)  # (N, H, W)
    gx = ((img_x - x0) / (x1 - x0) * 2 - 1)[:, None, :].expand(-1, H, W)
    grid = torch.stack([gx, gy], dim=3)  # (N, H, W, 2)
    return torch.nn.functional.grid_sample(masks, grid, align_corners=False)  # (N, 1, H, W)


# ---- aligned=True (the default): Detectron2's paste ------------------------------------------


def test_default_is_aligned():
    masks, boxes = random_case(3, 7, 12, 10)
    assert_close(paste_masks_in_image(masks, boxes, (12, 10)),
                 paste_masks_in_image(masks, boxes, (12, 10), aligned=True))


def test_aligned_hand_computed_box_comes_back_exactly():
    # a mask of ones covering the box (2, 1, 6, 4) exactly: the pixels whose centres lie inside
    # the box (columns 2..5, rows 1..3) get 1, every other pixel 0 -- no half-pixel shift
    out = paste_masks_in_image(torch.ones(1, 1, 4, 4, dtype=torch.float64),
                               torch.tensor([[2.0, 1.0, 6.0, 4.0]], dtype=torch.float64), (6, 8))
    expected = torch.zeros(6, 8, dtype=torch.float64)
    expected[1:4, 2:6] = 1
    assert_close(out[0, 0], expected)


def test_aligned_hand_computed_half_cell_fade():
    # 1 x 1 mask of ones on box (1, 1, 3, 3): pixel 1 (centre 1.5) reads src = 0.5 * 1/2 - 0.5
    # = -0.25 -> 0.75 (a quarter of the weight falls on the zero outside); pixel 0 reads -0.75
    # -> 0.25
    out = paste_masks_in_image(torch.ones(1, 1, 1, 1, dtype=torch.float64),
                               torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=torch.float64), (4, 4))
    profile = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=torch.float64)
    assert_close(out[0, 0], profile[:, None] * profile[None, :])


@pytest.mark.parametrize("N, M, H, W", [(1, 28, 16, 16), (5, 14, 30, 41), (9, 3, 64, 64)])
def test_aligned_matches_detectron2_grid_sample(N, M, H, W):
    torch.manual_seed(N)
    masks, boxes = random_case(N, M, H, W)
    assert_close(paste_masks_in_image(masks, boxes, (H, W)), detectron2_paste(masks, boxes, H, W))


def test_aligned_round_trip_with_aligned_targets():
    from coursekit.instance import project_masks_on_boxes

    gt = torch.zeros(1, 20, 24, dtype=torch.bool)
    gt[0, 3:11, 5:19] = True  # an axis-aligned rectangle; its box is its pixel extent
    box = torch.tensor([[5.0, 3.0, 19.0, 11.0]], dtype=torch.float64)
    target = project_masks_on_boxes(gt, box, torch.tensor([0]), 28)  # (1, 28, 28), aligned
    inner = target[0, 2:-2, 2:-2]
    assert_close(inner, torch.ones_like(inner))  # cells within half a pixel of the edge blur
    assert float(target.min()) > 0.25
    assert_close(target.flip(1).flip(2), target)  # symmetric: no half-pixel shift
    back = paste_masks_in_image(target[:, None], box, (20, 24))[0, 0] >= 0.5
    assert torch.equal(back, gt[0])
    tv_target = project_masks_on_boxes(gt, box, torch.tensor([0]), 28, aligned=False)
    shifted = paste_masks_in_image(tv_target[:, None], box, (20, 24), aligned=False)
    assert not torch.equal(shifted[0, 0] >= 0.5, gt[0])  # torchvision's pair moves it


def test_aligned_gradcheck():
    masks, boxes = random_case(2, 4, 9, 9)
    masks.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: paste_masks_in_image(m, boxes, (9, 9)), (masks,))


def test_aligned_half_precision_and_boxes_outside():
    torch.manual_seed(5)
    masks = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    boxes = torch.tensor([[590.0, 600.0, 700.0, 790.0], [-50.0, -40.0, -10.0, -5.0],
                          [10.0, 10.0, 10.0, 30.0]], dtype=torch.float64)
    # far from the origin; fully outside; zero width
    ref = paste_masks_in_image(masks, boxes, (800, 800))
    assert_close(ref[:2], detectron2_paste(masks[:2], boxes[:2], 800, 800))
    assert float(ref[1].abs().max()) == 0.0 and bool(torch.isfinite(ref[2]).all())
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
        out = paste_masks_in_image(masks.to(dtype), boxes.float(), (800, 800))
        assert out.dtype == dtype
        assert float((out.double() - ref).abs().max()) <= tol, dtype  # pixel centres kept exact


# ---- aligned=False: torchvision's paste -------------------------------------------------------


def test_hand_computed_no_padding():
    # padding 0: the 2 x 2 mask of ones, box (1, 1, 2, 2) -> rows and columns 1..2 inclusive
    out = paste_masks_in_image(torch.ones(1, 1, 2, 2), torch.tensor([[1.0, 1, 2, 2]]), (4, 5),
                               padding=0, aligned=False)
    expected = torch.zeros(4, 5)
    expected[1:3, 1:3] = 1
    assert_close(out[0, 0], expected)


def test_hand_computed_with_padding():
    # padding 1: the mask becomes [0 1 1 0] per axis (4 x 4), the box (1.5, 1.5, 2.5, 2.5) grows
    # by 4/2 about its centre to (1, 1, 3, 3): 3 pixels. Resize 4 -> 3: sources
    # (d + 0.5) * 4/3 - 0.5 = 1/6, 3/2, 17/6 -> values 1/6, 1, 1/6 per axis; the 2-D mask is
    # their outer product.
    out = paste_masks_in_image(torch.ones(1, 1, 2, 2, dtype=torch.float64),
                               torch.tensor([[1.5, 1.5, 2.5, 2.5]], dtype=torch.float64), (5, 5),
                               aligned=False)
    profile = torch.tensor([1 / 6, 1.0, 1 / 6], dtype=torch.float64)
    expected = torch.zeros(5, 5, dtype=torch.float64)
    expected[1:4, 1:4] = profile[:, None] * profile[None, :]
    assert_close(out[0, 0], expected)


def test_hand_computed_clipped_at_the_border():
    # box (-2, 0, 1, 1) -> 4 x 2 pixels of which columns -2, -1 fall outside: columns 0, 1 remain
    out = paste_masks_in_image(torch.ones(1, 1, 3, 3), torch.tensor([[-2.0, 0, 1, 1]]), (3, 3),
                               padding=0, aligned=False)
    expected = torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert_close(out[0, 0], expected)


@pytest.mark.parametrize("N, M, H, W", [(1, 28, 64, 64), (5, 28, 40, 50), (7, 14, 30, 20),
                                        (12, 5, 17, 23)])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_matches_torchvision(N, M, H, W, padding):
    masks, boxes = random_case(N, M, H, W)
    expected = tv_paste(masks, boxes, (H, W), padding)
    assert_close(paste_masks_in_image(masks, boxes, (H, W), padding, aligned=False), expected)
    assert_close(paste_masks_in_image_loop(masks, boxes, (H, W), padding), expected)


def test_float32_matches_torchvision():
    masks, boxes = random_case(9, 28, 64, 64, torch.float32)
    assert_close(paste_masks_in_image(masks, boxes, (64, 64), aligned=False),
                 tv_paste(masks, boxes, (64, 64)))


def test_bfloat16_coordinates_in_float32():
    # half precision masks: the source coordinates are still computed in float32 (near 0.01)
    masks, boxes = random_case(6, 28, 300, 400)
    boxes = boxes + torch.tensor([250.0, 200.0, 250.0, 200.0], dtype=torch.float64)
    out = paste_masks_in_image(masks.bfloat16(), boxes.float(), (300, 400), aligned=False)
    assert out.dtype == torch.bfloat16
    assert float((out.double() - tv_paste(masks, boxes, (300, 400))).abs().max()) <= 1e-2


def test_degenerate_boxes_match_torchvision():
    # zero-width / zero-height boxes: torchvision pastes a 1-pixel-wide mask (w = max(w, 1))
    masks = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    boxes = torch.tensor([[3.0, 2, 3, 9], [1, 4, 8, 4], [5, 5, 5, 5]], dtype=torch.float64)
    assert_close(paste_masks_in_image(masks, boxes, (12, 12), padding=0, aligned=False),
                 tv_paste(masks, boxes, (12, 12), 0))


def test_gradcheck():
    masks, boxes = random_case(2, 4, 9, 8)
    masks.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda m: paste_masks_in_image(m, boxes, (9, 8), aligned=False), (masks,))


# ---- both: threshold, chunks, empty, bad input, devices, memory -------------------------------


@pytest.mark.parametrize("aligned", [True, False])
def test_threshold_gives_the_bool_masks(aligned):
    masks, boxes = random_case(5, 14, 30, 41)
    probs = paste_masks_in_image(masks, boxes, (30, 41), aligned=aligned)
    for t in (0.5, 0.2):
        out = paste_masks_in_image(masks, boxes, (30, 41), aligned=aligned, threshold=t)
        assert out.dtype == torch.bool and out.shape == (5, 1, 30, 41)
        assert torch.equal(out, probs >= t)


@pytest.mark.parametrize("aligned", [True, False])
def test_chunks_give_the_same_result_and_gradient(monkeypatch, aligned):
    masks, boxes = random_case(7, 5, 11, 13)
    whole = paste_masks_in_image(masks, boxes, (11, 13), aligned=aligned)
    monkeypatch.setattr(paste_module, "BUDGET", 1)  # one mask per chunk
    assert_close(paste_masks_in_image(masks, boxes, (11, 13), aligned=aligned), whole)
    assert torch.equal(paste_masks_in_image(masks, boxes, (11, 13), aligned=aligned,
                                            threshold=0.5), whole >= 0.5)
    small, small_boxes = random_case(3, 3, 7, 6)
    small.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda m: paste_masks_in_image(m, small_boxes, (7, 6), aligned=aligned), (small,))


def test_empty():
    out = paste_masks_in_image(torch.zeros(0, 1, 28, 28), torch.zeros(0, 4), (10, 12))
    assert out.shape == (0, 1, 10, 12)
    out = paste_masks_in_image(torch.zeros(0, 1, 28, 28), torch.zeros(0, 4), (10, 12),
                               threshold=0.5)
    assert out.shape == (0, 1, 10, 12) and out.dtype == torch.bool


M28, B4 = torch.rand(2, 1, 28, 28), torch.zeros(2, 4)


@pytest.mark.parametrize("masks, boxes, img_shape, padding, error, match", [
    (torch.rand(2, 28, 28), B4, (8, 8), 1, ValueError,
     r"masks must be Tensor\[N, 1, M, M\].*Tensor\[2, 28, 28\]"),
    (torch.rand(2, 1, 28, 14), B4, (8, 8), 1, ValueError, r"Tensor\[2, 1, 28, 14\]"),
    (M28, torch.zeros(2, 5), (8, 8), 1, ValueError, r"boxes must be Tensor\[N, 4\].*\[2, 5\]"),
    (M28, torch.zeros(3, 4), (8, 8), 1, ValueError, r"masks and boxes must have the same count N"),
    (M28, B4, (8,), 1, ValueError, r"img_shape must be \(height, width\)"),
    (M28, B4, 8, 1, TypeError, r"img_shape must be \(height, width\)"),
    (M28, B4, (0, 8), 1, ValueError, r"img_shape must be positive, got \(0, 8\)"),
    (M28, B4, (8.0, 8), 1, TypeError, "img_shape must be an int or a pair of ints"),
    (M28, B4, (8, 8), -1, ValueError, "padding must be >= 0, got -1"),
    (M28, B4, (8, 8), 1.0, TypeError, "padding must be an int"),
    (torch.ones(2, 1, 28, 28, dtype=torch.bool), B4, (8, 8), 1, TypeError,
     r"masks must be a floating-point Tensor\[N, 1, M, M\].*got Tensor\[2, 1, 28, 28\] bool"),
    (M28, B4.long(), (8, 8), 1, TypeError, "boxes must be a floating-point Tensor"),
])
def test_bad_input(masks, boxes, img_shape, padding, error, match):
    with pytest.raises(error, match=match):
        paste_masks_in_image(masks, boxes, img_shape, padding)


def test_bad_flags():
    masks, boxes = random_case(3, 7, 12, 10)
    with pytest.raises(TypeError, match="aligned must be a bool, got 1"):
        paste_masks_in_image(masks, boxes, (12, 10), aligned=1)
    with pytest.raises(TypeError, match="threshold must be a number or None, got '0.5'"):
        paste_masks_in_image(masks, boxes, (12, 10), threshold="0.5")


def test_device(device):
    # the references run on CPU copies; ours on the device
    masks, boxes = random_case(6, 28, 32, 48)
    out = paste_masks_in_image(masks.to(device), boxes.to(device), (32, 48), aligned=False)
    assert out.device.type == device.type
    assert_close(out.cpu(), tv_paste(masks, boxes, (32, 48)))
    out = paste_masks_in_image(masks.to(device), boxes.to(device), (32, 48))
    assert out.device.type == device.type and out.dtype == masks.dtype
    assert_close(out.cpu(), detectron2_paste(masks, boxes, 32, 48))
    out = paste_masks_in_image(masks.to(device), boxes.to(device), (32, 48), threshold=0.5)
    assert torch.equal(out.cpu(), detectron2_paste(masks, boxes, 32, 48) >= 0.5)


# Peak memory of pasting 40 masks into 800 x 1333: the output is 40 x 800 x 1333 values
# (43 MB as bools, 171 MB in float32); the former all-at-once bilinear read held ~86 bytes
# per output value (~3.7 GB here), and one float temporary of the output's size (171 MB)
# would already break the 96 MiB budget. torch's allocations are invisible to tracemalloc,
# so ours runs in a fresh interpreter that reports its peak resident memory (ru_maxrss) after
# the bool paste, then after the float paste; a second interpreter, run after it, imports the
# same modules and only allocates the same outputs, in the same order.
PEAK_SCRIPT = textwrap.dedent("""
    import resource, sys, time
    import torch
    from coursekit.instance.paste import paste_masks_in_image
    torch.set_num_threads(1)
    N, H, W = 40, 800, 1333
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(N, 1, 28, 28, generator=g)
    xy = torch.rand(N, 2, generator=g) * torch.tensor([W * 0.8, H * 0.8])
    boxes = torch.cat([xy, xy + torch.rand(N, 2, generator=g) * 200 + 10], 1)
    for threshold, dtype in ((0.5, torch.bool), (None, torch.float32)):
        start = time.perf_counter()
        if sys.argv[1] == "baseline":
            out = torch.zeros(N, 1, H, W, dtype=dtype)
        else:
            out = paste_masks_in_image(masks, boxes, (H, W), threshold=threshold)
        seconds = time.perf_counter() - start
        assert out.shape == (N, 1, H, W) and out.dtype == dtype
        del out
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, seconds)
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_memory_is_the_output_plus_a_fixed_budget():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    peaks, seconds = {}, {}
    for which in ("baseline", "paste"):  # one after the other: the suite's memory budget
        run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, which], env=env,
                             capture_output=True, text=True, timeout=120)
        out, err = run.stdout, run.stderr
        assert run.returncode == 0, err
        rows = [line.split() for line in out.splitlines()]
        peaks[which] = [int(peak) for peak, _ in rows]  # after the bool paste, after the float
        seconds[which] = [float(s) for _, s in rows]
    pixels = 40 * 800 * 1333
    for k, (kind, output) in enumerate((("bool", pixels), ("float", pixels * 4))):
        extra = peaks["paste"][k] - peaks["baseline"][k]
        # BUDGET is 16 MiB of values; the allocator and BLAS get their working space on top
        assert extra <= 96 * 2**20, (
            f"{kind}: pasting took {extra / 2**20:.0f} MiB beyond the {output / 2**20:.0f} MiB "
            f"output")
        assert seconds["paste"][k] < 10, (kind, seconds)
