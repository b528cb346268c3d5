"""ShapesWorld's hard setting: same contract, every field consistent, really harder."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from coursekit.data import category_id, render_batch, render_scene
from coursekit.data import layout as lay
from coursekit.data.draw import paint_things

DENSE = ["image", "semantic", "instance_ids", "parts", "uv", "depth", "next_image", "flow",
         "flow_valid"]
LISTS = ["boxes", "labels", "masks", "iscrowd", "keypoints", "person_index"]


@pytest.fixture(scope="module")
def hard():
    """24 hard scenes with many persons and crowds."""
    return render_batch(range(24), 64, p_person=0.5, p_crowd=0.5, difficulty="hard")


@pytest.fixture
def clean(monkeypatch):
    """The hard setting without sensor noise and with a flat, unit light."""
    monkeypatch.setattr(lay, "HARD_NOISE_SIGMA", 0.0)
    monkeypatch.setattr(lay, "HARD_GAIN", (1.0, 1.0))
    monkeypatch.setattr(lay, "HARD_GRADIENT", 0.0)


def _warp_error(batch):
    """|frame 2 sampled at p + flow[p] - frame 1|, (B, 3, H, W) (torch's grid_sample)."""
    B, _, H, W = batch.image.shape
    device = batch.image.device
    ys, xs = torch.meshgrid(torch.arange(H, device=device) + 0.5,
                            torch.arange(W, device=device) + 0.5, indexing="ij")
    grid = torch.stack([(xs + batch.flow[:, 0]) / W * 2 - 1,
                        (ys + batch.flow[:, 1]) / H * 2 - 1], -1)
    warped = F.grid_sample(batch.next_image, grid, align_corners=False)
    return (warped - batch.image).abs()


# ---------------------------------------------------------------- determinism
# (the contract, shapes and dtypes of every field, is tests/data/test_shapesworld.py's, run on
# hard scenes too)


def test_determinism_and_batch_independence():
    a = render_batch([5, 9, 11], 64, difficulty="hard")
    b = render_batch([11, 2, 5], 64, difficulty="hard")
    for name in DENSE + LISTS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, list):
            assert all(torch.equal(p, q) for p, q in zip(x[0::2], [y[2], y[0]], strict=True))
        else:
            assert torch.equal(x[0], y[2]) and torch.equal(x[2], y[0]), name
    one = render_scene(9, difficulty="hard")
    for name in DENSE + LISTS:
        assert torch.equal(getattr(one, name), getattr(a.scene(1), name)), name
    u1, n1 = lay.hard_uniforms([4, 7], 32)
    u2, n2 = lay.hard_uniforms([7], 32)
    assert torch.equal(u1[1], u2[0]) and torch.equal(n1[1], n2[0])
    assert u1.shape == (2, lay.N_HARD) and n1.shape == (2, 2, 3, 32, 32)


def test_easy_is_the_default_and_unchanged():
    # The frozen fingerprints of the easy scenes are checked in test_shapesworld.py::test_device;
    # here: "easy" is the default, and it is not the hard scene.
    seeds = [0, 1, 2, 3]
    default = render_batch(seeds, 64, p_person=0.6, p_crowd=0.5)
    easy = render_batch(seeds, 64, p_person=0.6, p_crowd=0.5, difficulty="easy",
                        num_things=(2, 5))
    hard = render_batch(seeds, 64, p_person=0.6, p_crowd=0.5, difficulty="hard")
    for name in DENSE + LISTS:
        x, y = getattr(default, name), getattr(easy, name)
        same = all(map(torch.equal, x, y)) if isinstance(x, list) else torch.equal(x, y)
        assert same, name
    assert not torch.equal(default.image, hard.image)
    # A seed's stuff (horizon, wall, pond) is the same in both settings.
    bare_easy = render_batch(seeds, 64, num_things=0, p_crowd=0.0)
    bare_hard = render_batch(seeds, 64, num_things=0, p_crowd=0.0, difficulty="hard")
    assert torch.equal(bare_easy.semantic, bare_hard.semantic)
    assert torch.equal(bare_easy.depth, bare_hard.depth)


# ------------------ consistency between fields (masks, boxes: test_shapesworld.py, both settings)


def test_keypoints_parts_uv(hard):
    for i in range(len(hard)):
        s = hard.scene(i)
        assert (s.labels[s.person_index] == category_id("person")).all()
        for row, kp in zip(s.person_index.tolist(), s.keypoints, strict=True):
            x, y, v = kp.unbind(-1)
            on = v > 0
            assert (x[~on] == 0).all() and (y[~on] == 0).all()
            seen = s.instance_ids[y[on].long(), x[on].long()]
            # v = 1 exactly where a thing drawn later (nearer) covers the keypoint
            assert torch.equal(v[on] == 1, seen > row + 1)
    v = torch.cat([k[..., 2].flatten() for k in hard.keypoints])
    assert (v == 1).float().mean() > 0.05  # occluded keypoints are common here
    person = hard.semantic == category_id("person")
    assert torch.equal(hard.parts > 0, person)
    assert hard.uv.min() >= 0 and hard.uv.max() <= 1
    assert (hard.uv.permute(1, 0, 2, 3)[:, ~person] == 0).all()


def test_depth_occlusion(hard):
    for i in range(0, len(hard), 3):
        s = hard.scene(i)
        stuff = render_scene(s.seed, 64, num_things=0, p_crowd=0.0, difficulty="hard")
        thing = s.instance_ids > 0
        assert torch.equal(stuff.semantic[~thing], s.semantic[~thing])
        assert (s.depth[thing] < stuff.depth[thing]).all()
        assert torch.equal(s.depth[~thing], stuff.depth[~thing])


def _occlusion(L):
    """Check the painter's order on a layout; return (covered fraction of the things' full
    pixels, number of things more than 10% hidden)."""
    slot = (paint_things(L, torch.device("cpu"))[0] >> 4).flatten(1)  # (B, HW): on top, + 1
    depths = torch.cat([torch.zeros(len(L.depth), 1, dtype=torch.float64), L.depth], 1)
    winner_depth = depths.gather(1, slot.long())
    covered_px = full_px = hidden = 0
    for r in range(L.kind.shape[1]):
        alone = dataclasses.replace(L, active=L.active & (torch.arange(L.kind.shape[1]) == r))
        full = ((paint_things(alone, torch.device("cpu"))[0] >> 4) > 0).flatten(1)
        covered = full & (slot != r + 1)
        own = L.depth[:, r, None].expand_as(winner_depth)
        assert (winner_depth[covered] <= own[covered]).all()  # the visible one is nearest
        assert (slot[full] >= r + 1).all()  # covered only by slots drawn later
        covered_px, full_px = covered_px + int(covered.sum()), full_px + int(full.sum())
        hidden += int((covered.sum(1) > 0.1 * full.sum(1)).sum())
    return covered_px / full_px, hidden


def test_overlapping_things_show_the_nearest():
    """Draw each thing alone; where several overlap, the visible one is the nearest. The hard
    setting hides far more: things stand next to each other (not only more of them)."""
    seeds = list(range(16))
    easy = _occlusion(lay.sample_layout(seeds, 64, 2, 5, 0.35, 0.15))  # the defaults
    hard = _occlusion(lay.sample_layout(seeds, 64, 6, 12, 0.35, 0.15, hard=True))
    crowded = _occlusion(lay.sample_layout(seeds, 64, 6, 12, 0.35, 0.15))  # easy, as many
    assert hard[0] > 2 * easy[0] and hard[1] > 3 * easy[1] > 0
    assert hard[0] > 1.2 * crowded[0]  # clustered, though smaller


def test_flow_and_frame2(hard, clean):
    # Without noise and lighting the warp is exact, textures included: they move with things.
    exact = render_batch(range(24), 64, p_person=0.5, p_crowd=0.5, difficulty="hard")
    assert _warp_error(exact).amax(1)[exact.flow_valid].max() < 1e-5
    for name in ("flow", "flow_valid", "semantic", "instance_ids", "depth"):
        assert torch.equal(getattr(exact, name), getattr(hard, name)), name
    thing = hard.instance_ids > 0
    flow = hard.flow.permute(1, 0, 2, 3)
    assert (flow[:, ~thing] == 0).all() and torch.equal(flow, flow.round())
    assert (flow.abs() <= lay.max_speed(64)).all() and hard.flow_valid.float().mean() > 0.7


def test_flow_with_noise_and_lighting(hard):
    # With them, frame 2 matches frame 1 only up to two draws of noise (each at most 3 sigma)
    # and the light ramp over the <= 3-pixel motion: gain * amplitude * 3 * sqrt(2) / 64.
    err = _warp_error(hard).permute(1, 0, 2, 3)[:, hard.flow_valid]  # (3, M)
    sigma = lay.HARD_NOISE_SIGMA
    ramp = lay.HARD_GAIN[1] * lay.HARD_GRADIENT * 3 * 2**0.5 / 64
    assert err.max() <= 2 * lay.HARD_NOISE_CLIP * sigma + ramp + 1e-5
    # two independent N(0, sigma^2) draws: E|n1 - n2| = 2 sigma / sqrt(pi) = 0.045 (less
    # where the image is clipped)
    assert 0.02 < float(err.mean()) < 0.06


# ---------------------------------------------------------------- harder, as documented


def test_more_smaller_textured_things(hard):
    easy = render_batch(range(24), 64, p_person=0.5, p_crowd=0.5)
    count = {k: sum(len(x) for x in b.labels) / len(b) for k, b in (("easy", easy),
                                                                   ("hard", hard))}
    assert count["hard"] > 2 * count["easy"]

    def areas(b):  # full (not occluded) pixel areas of single shapes
        return torch.tensor([float(m.sum()) for ms, lab, crowd in zip(
            b.masks, b.labels, b.iscrowd, strict=True) for m, c, cr in zip(
            ms, lab.tolist(), crowd.tolist(), strict=True) if c in (4, 5, 6) and not cr])

    assert areas(hard).median() < 0.7 * areas(easy).median()


def test_texture_lighting_noise_by_hand(clean, monkeypatch):
    seeds = [3, 8, 13, 21]
    most = lay.HARD_TEXTURE_CONTRAST[1]
    textured = render_batch(seeds, 64, difficulty="hard")
    monkeypatch.setattr(lay, "HARD_TEXTURE_CONTRAST", (0.0, 0.0))
    flat = render_batch(seeds, 64, difficulty="hard")
    thing = flat.instance_ids > 0
    # textures darken things only, each pixel by at most the largest contrast
    ratio = textured.image / flat.image.clamp(min=1e-6)  # (B, 3, H, W)
    ratio = ratio.permute(1, 0, 2, 3)
    assert torch.equal(textured.image.permute(1, 0, 2, 3)[:, ~thing],
                       flat.image.permute(1, 0, 2, 3)[:, ~thing])
    dark = (ratio[:, thing] < 1 - 1e-6).all(0)
    assert 0.2 < dark.float().mean() < 0.8  # dark bands on part of each thing
    assert ratio[:, thing].min() >= 1 - most - 1e-5 and ratio[:, thing].max() <= 1 + 1e-6
    # lighting: with unit light, no texture and no noise, the stuff is the easy stuff
    easy = render_batch(seeds, 64, num_things=0, p_crowd=0.0)
    bare = render_batch(seeds, 64, num_things=0, p_crowd=0.0, difficulty="hard")
    assert torch.equal(easy.image, bare.image)
    monkeypatch.undo()
    monkeypatch.setattr(lay, "HARD_NOISE_SIGMA", 0.0)
    lit = render_batch(seeds, 64, num_things=0, p_crowd=0.0, difficulty="hard")
    # image = clamp(gain * (1 + a * ramp) * easy): away from clipping, the ratio is a plane
    # in (x, y), the same plane for the three channels
    L = lay.sample_layout(seeds, 64, 0, 0, 0.0, 0.0, hard=True)
    c = (torch.arange(64, dtype=torch.float64) + 0.5) / 64 - 0.5
    for i in range(len(seeds)):
        gain, amp, angle = L.lighting[i].tolist()
        assert lay.HARD_GAIN[0] <= gain <= lay.HARD_GAIN[1] and 0 <= amp <= lay.HARD_GRADIENT
        plane = gain * (1 + amp * (torch.cos(torch.tensor(angle, dtype=torch.float64)) * c[None]
                                   + torch.sin(torch.tensor(angle, dtype=torch.float64))
                                   * c[:, None]))  # (H, W)
        expected = (plane * easy.image[i].double()).clamp(0, 1)
        torch.testing.assert_close(lit.image[i].double(), expected, rtol=0, atol=1e-6)
    # noise: sigma 0.04 per pixel, new in each frame
    monkeypatch.undo()
    noisy = render_batch(seeds, 64, num_things=0, p_crowd=0.0, difficulty="hard")
    for a, b in ((noisy.image, lit.image), (noisy.next_image, lit.next_image)):
        inside = (b > 0.15) & (b < 0.85)  # far from clipping
        d = (a - b)[inside]
        assert abs(float(d.std()) - lay.HARD_NOISE_SIGMA) < 0.004 and abs(float(d.mean())) < 0.003
    n1, n2 = noisy.image - lit.image, noisy.next_image - lit.next_image
    assert abs(float(torch.corrcoef(torch.stack([n1.flatten(), n2.flatten()]))[0, 1])) < 0.05


# ---------------------------------------------------------------- devices, bad input, the U-Net


def test_device(device):
    # reference: the CPU rendering (random numbers are drawn on the CPU); integer fields
    # equal, float fields to 1e-5
    cpu = render_batch(range(4), 64, p_person=0.6, p_crowd=0.5, difficulty="hard")
    out = render_batch(range(4), 64, p_person=0.6, p_crowd=0.5, difficulty="hard", device=device)
    assert out.image.device.type == device.type
    for name in DENSE + LISTS:
        x, y = getattr(cpu, name), getattr(out, name)
        for a, b in zip(x if isinstance(x, list) else [x], y if isinstance(y, list) else [y],
                        strict=True):
            if a.is_floating_point():
                torch.testing.assert_close(b.cpu(), a, rtol=0, atol=1e-5)
            else:
                assert torch.equal(b.cpu(), a), name
    assert _warp_error(out).amax() <= 1.0  # grid_sample on the device itself runs


@pytest.mark.parametrize("fn", [render_scene, render_batch])
def test_bad_difficulty(fn):
    first = 0 if fn is render_scene else [0]
    with pytest.raises(ValueError, match=r"difficulty must be one of \['easy', 'hard'\], "
                                         r"got 'medium'"):
        fn(first, difficulty="medium")
    with pytest.raises(TypeError, match=r"difficulty must be a str, one of \['easy', 'hard'\], "
                                        r"got int"):
        fn(first, difficulty=1)
    with pytest.raises(ValueError, match="num_things must be"):
        fn(first, difficulty="hard", num_things=(4, 13))


@pytest.mark.slow
def test_shipped_unet_fails_on_hard_scenes():
    """The shipped U-Net (mIoU 0.996 on easy scenes) on 64 held-out scenes of each setting."""
    from coursekit.segmentation.metrics import confusion_matrix, iou_from_confusion
    from coursekit.segmentation.train import (
        HELD_OUT_START,
        load_segmentation_model,
        predict,
    )

    model = load_segmentation_model("unet")
    seeds = range(HELD_OUT_START, HELD_OUT_START + 64)
    miou = {}
    for difficulty in ("easy", "hard"):
        scenes = render_batch(seeds, 64, difficulty=difficulty)
        matrix = confusion_matrix(predict(model, scenes.image), scenes.semantic, 8)
        miou[difficulty] = float(torch.nanmean(iou_from_confusion(matrix)))
    print(f"U-Net mIoU on 64 held-out scenes: easy {miou['easy']:.4f}, hard {miou['hard']:.4f}")
    assert miou["easy"] > 0.98
    assert miou["hard"] < miou["easy"] - 0.2
