"""Scoring a DensePose head (coursekit/densepose/evaluate.py) with a fake head whose maps are
known: the pasted and decoded maps by hand, the best-scored person winning overlaps, the
part confusion and U/V sums counted pixel by pixel, a missed detection counted as
background, the blind U/V baselines, and ``-1`` (no vertex) counted as a wrong
correspondence."""

import pytest
import torch
from torch import nn

from coursekit.data.shapesworld import render_batch
from coursekit.densepose.cse import body_template, chance_accuracy
from coursekit.densepose.evaluate import (
    _accuracy,
    _blind_uv_errors,
    densepose_image,
    evaluate_densepose,
    person_results,
)
from coursekit.densepose.parts import NUM_PARTS, annotate_scene, part_iou
from coursekit.densepose.train import HELD_OUT_START, PERSON_ID

M = 4  # the fake head's map side
SEEDS = [HELD_OUT_START + 19, HELD_OUT_START + 3]  # 96-pixel scenes with persons


def constant_maps(R, part, u, v, fg=True, embed=2):
    """The head's five maps for R RoIs: part ``part`` everywhere (or background), its chart
    at ``(u, v)``, every embedding 0."""
    coarse = torch.zeros(R, 2, M, M)
    coarse[:, 1 if fg else 0] = 1.0
    fine = torch.zeros(R, NUM_PARTS + 1, M, M)
    fine[:, part] = 1.0
    us = torch.full((R, NUM_PARTS + 1, M, M), 0.9)  # other charts: never read
    vs = torch.full((R, NUM_PARTS + 1, M, M), 0.9)
    us[:, part], vs[:, part] = u, v
    return {"coarse": coarse, "fine": fine, "u": us, "v": vs,
            "embedding": torch.zeros(R, embed, M, M)}


class FakeHead(nn.Module):
    """Predicts ``part`` with ``(u, v)`` in every box; the vertex ``vertex`` has embedding 0
    (the nearest one to every pixel), the others sit far away."""

    def __init__(self, part=2, u=0.5, v=0.5, vertex=0):
        super().__init__()
        self.template = body_template(0.03)
        self.part, self.u, self.v = part, u, v
        far = torch.full((len(self.template), 2), 10.0)
        far[vertex] = 0.0
        self.register_buffer("vertices", far)

    def vertex_embeddings(self):
        return self.vertices

    def roi_pool(self, features, boxes):
        return torch.zeros(sum(len(b) for b in boxes), 1)

    def forward(self, x):
        return constant_maps(len(x), self.part, self.u, self.v)


class FakeTrunk(nn.Module):
    """Features are the images; ``predict`` returns the given detections image by image."""

    def __init__(self, detections):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.detections = detections

    def transform(self, images):
        return images

    def backbone(self, images):
        return {"0": images}

    def predict(self, images, score_threshold=0.5):
        return self.detections


def test_densepose_image_pastes_and_decodes_known_maps():
    class TwoParts(FakeHead):
        def forward(self, x):  # box 0: part 3 on the left half, part 5 on the right
            maps = constant_maps(len(x), 3, 0.25, 0.125)
            maps["fine"][:, 5, :, 2:] = 2.0
            maps["u"][:, 5], maps["v"][:, 5] = 0.75, 0.625
            maps["coarse"][1:] = torch.tensor([1.0, 0.0])[:, None, None]  # other boxes: bg
            return maps

    boxes = [torch.tensor([[0.0, 0, 8, 8], [2, 2, 6, 6]]), torch.tensor([[1.0, 1, 5, 9]])]
    out = densepose_image(TwoParts(), None, boxes, (10, 10))
    assert [o["parts"].shape for o in out] == [(2, 10, 10), (1, 10, 10)]
    assert out[0]["maps"]["fine"].shape == (2, NUM_PARTS + 1, M, M)
    parts, uv, inside = out[0]["parts"][0], out[0]["uv"][0], out[0]["inside"][0]
    # pixel x reads grid column x / 2 - 0.25: columns 0, 1 (part 3) win for x < 4
    expected = torch.zeros(10, 10, dtype=torch.int64)
    expected[:8, :4], expected[:8, 4:8] = 3, 5
    assert torch.equal(parts, expected)
    assert torch.equal(inside, expected > 0)
    assert torch.equal(uv[0], torch.where(expected == 3, 0.25, torch.where(expected == 5, 0.75,
                                                                           0.0)))
    assert torch.equal(uv[1], torch.where(expected == 3, 0.125, torch.where(expected == 5, 0.625,
                                                                            0.0)))
    # box 1 says background: no part, U = V = 0, but its pixels are inside it
    assert (out[0]["parts"][1] == 0).all() and (out[0]["uv"][1] == 0).all()
    assert int(out[0]["inside"][1].sum()) == 16 and int(out[1]["inside"][0].sum()) == 32
    assert out[1]["embedding"].shape == (1, 2, 10, 10)


def test_person_results_keeps_persons_and_the_best_score_wins():
    dets = {"boxes": torch.tensor([[0.0, 0, 8, 8], [4, 4, 12, 12], [0, 0, 12, 12]]),
            "labels": torch.tensor([PERSON_ID, PERSON_ID, 4]),
            "scores": torch.tensor([0.9, 0.8, 0.7])}
    first, second = constant_maps(1, 2, 0.25, 0.5), constant_maps(1, 6, 0.75, 0.125)
    third = constant_maps(1, 9, 0.5, 0.5)  # a circle's maps: dropped
    for k in first:
        dets[f"densepose_{k}"] = torch.cat([first[k], second[k], third[k]])
    res = person_results(dets, (12, 12))
    assert torch.equal(res["boxes"], dets["boxes"][:2]) and res["parts"].shape == (2, 12, 12)
    expected = torch.zeros(12, 12, dtype=torch.int64)
    expected[4:, 4:] = 6
    expected[:8, :8] = 2  # the overlap [4, 8)² goes to the better-scored person
    assert torch.equal(res["image_parts"], expected)
    assert torch.equal(res["image_uv"][0], torch.where(expected == 2, 0.25, torch.where(
        expected == 6, 0.75, 0.0)))
    assert torch.equal(res["image_uv"][1], torch.where(expected == 2, 0.5, torch.where(
        expected == 6, 0.125, 0.0)))
    assert res["embedding"].shape == (2, 2, 12, 12)


def test_accuracy_counts_no_vertex_as_wrong():
    distances = torch.tensor([[0.0, 0.05, 0.2], [0.05, 0.0, 0.1], [0.2, 0.1, 0.0]],
                             dtype=torch.float64)
    pred = torch.tensor([1, -1, 2, 1])
    truth = torch.tensor([0, 0, 2, 2])
    # valid: 0 -> 1 (0.05, a hit), 2 -> 2 (a hit), 1 -> 2 (0.1, a miss); the -1 is a miss
    assert _accuracy(pred, truth, distances, 0.06) == pytest.approx(2 / 4)
    assert _accuracy(torch.full((3,), -1), truth[:3], distances, 0.06) == 0.0


def test_blind_uv_errors_by_hand():
    parts = torch.tensor([1, 1, 2])
    uv = torch.tensor([[0.1, 0.3, 0.9], [0.5, 0.5, 0.0]], dtype=torch.float64)
    blind = _blind_uv_errors(parts, uv)
    # constant 0.5: U off by 0.4, 0.2, 0.4; V by 0, 0, 0.5
    torch.testing.assert_close(blind["constant"], torch.tensor([1.0 / 3, 0.5 / 3],
                                                               dtype=torch.float64))
    # part means: part 1 (0.2, 0.5), part 2 (0.9, 0.0) -> U off by 0.1, 0.1, 0; V exact
    torch.testing.assert_close(blind["part_mean"], torch.tensor([0.2 / 3, 0.0],
                                                                dtype=torch.float64))
    empty = _blind_uv_errors(parts[:0], uv[:, :0])
    assert empty["constant"].tolist() == [0.0, 0.0] and empty["part_mean"].tolist() == [0.0, 0.0]


def _expected(seeds, head, detected_rows):
    """The metrics of a ``FakeHead`` (part ``head.part``, U = ``head.u``, V = ``head.v`` in
    each box, vertex 0 everywhere) counted pixel by pixel; ``detected_rows[i]``: the
    persons of image i that are detected (exactly on their box), the rest are missed."""
    scenes = render_batch(seeds, size=96, p_crowd=0.0, p_person=0.6)
    template = head.template
    distances = template.distances()
    conf = torch.zeros(NUM_PARTS + 1, NUM_PARTS + 1, dtype=torch.int64)
    uv_sum, uv_n, hits, total = torch.zeros(2, dtype=torch.float64), 0, 0, 0
    truths = []
    cy = torch.arange(96)[:, None] + 0.5
    cx = torch.arange(96)[None, :] + 0.5
    for i in range(len(seeds)):
        ann = annotate_scene(scenes.scene(i), 100, 0)
        for p in range(len(ann["parts"])):
            truth = ann["parts"][p]
            x1, y1, x2, y2 = ann["boxes"][p].tolist()
            found = p in detected_rows[i]
            inside = ((cy >= y1) & (cy < y2) & (cx >= x1) & (cx < x2)) if found else \
                torch.zeros(96, 96, dtype=torch.bool)
            pred = torch.where(inside, head.part, 0)
            region = inside | (truth > 0)
            for t, q in zip(truth[region].tolist(), pred[region].tolist(), strict=True):
                conf[t, q] += 1
            right = inside & (truth == head.part)
            uv = scenes.uv[i][:, right].double()
            uv_sum += (uv - torch.tensor([[head.u], [head.v]], dtype=torch.float64)).abs().sum(1)
            uv_n += int(right.sum())
            pts = ann["points"][p]
            pts = pts[pts[:, 2] > 0]
            truth_v = template.nearest_vertex(pts[:, 2].long(), pts[:, 3:].double())
            truths.append(truth_v)
            total += len(pts)
            if found:  # the predicted vertex is 0 everywhere
                hits += int((distances[truth_v, 0] <= 0.06).sum())
    return {"conf": conf, "uv": uv_sum / max(uv_n, 1), "cse": hits / total,
            "truth": torch.cat(truths), "scenes": scenes}


@pytest.fixture(scope="module")
def case():
    """Two scenes; the trunk detects the first person of each exactly and misses the rest."""
    head = FakeHead(part=2, u=0.5, v=0.5, vertex=0)
    scenes = render_batch(SEEDS, size=96, p_crowd=0.0, p_person=0.6)
    dets = []
    for i in range(len(SEEDS)):
        rows = scenes.person_index[i]
        assert len(rows) >= 2
        dets.append({"boxes": scenes.boxes[i][rows[:1]].float(),
                     "labels": torch.tensor([PERSON_ID])})
    trunk = FakeTrunk(dets)
    metrics = evaluate_densepose(head, trunk, SEEDS, size=96, p_person=0.6)
    return head, metrics


def test_evaluate_on_ground_truth_boxes_by_hand(case):
    head, m = case
    ref = _expected(SEEDS, head, [range(99), range(99)])
    ious, miou = part_iou(ref["conf"])
    assert m["miou"] == pytest.approx(miou) and miou > 0
    assert m["iou_torso"] == pytest.approx(float(ious[1]))
    assert m["iou_head"] == 0.0  # never predicted
    u, v = ref["uv"].tolist()
    assert m["u_error"] == pytest.approx(u) and m["v_error"] == pytest.approx(v)
    # the head IS the constant-0.5 baseline, on the same pixels
    assert m["u_chance"] == pytest.approx(m["u_error"])
    assert m["v_chance"] == pytest.approx(m["v_error"])
    assert m["u_part_mean"] <= m["u_chance"] + 1e-12  # one part: its mean beats 0.5
    assert m["cse_accuracy"] == pytest.approx(ref["cse"])
    distances = head.template.distances()
    assert m["chance"] == pytest.approx(chance_accuracy(ref["truth"], distances, 0.06))
    # the charts' vertex: the template vertex of (torso, 0.5, 0.5) at every point
    k = head.template.nearest_vertex(torch.tensor([2]), torch.tensor([[0.5, 0.5]],
                                                                     dtype=torch.float64))
    assert m["iuv_accuracy"] == pytest.approx(float((distances[ref["truth"], k] <= 0.06)
                                                    .double().mean()))
    persons = sum(len(r) for r in ref["scenes"].person_index)
    assert m["persons"] == persons


def test_a_missed_detection_counts_as_background(case):
    head, m = case
    ref = _expected(SEEDS, head, [range(1), range(1)])
    _, miou = part_iou(ref["conf"])
    assert m["det_miou"] == pytest.approx(miou) and m["det_miou"] < m["miou"]
    assert m["det_recall"] == pytest.approx(2 / m["persons"])
    u, v = ref["uv"].tolist()
    assert m["det_u_error"] == pytest.approx(u) and m["det_v_error"] == pytest.approx(v)
    assert m["det_cse_accuracy"] == pytest.approx(ref["cse"])  # missed points: wrong
    assert m["det_cse_accuracy"] < m["cse_accuracy"]


def test_nothing_detected_is_all_background():
    head = FakeHead()
    trunk = FakeTrunk([{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}])
    m = evaluate_densepose(head, trunk, SEEDS[:1], size=96, p_person=0.6)
    assert m["det_miou"] == 0.0 and m["det_recall"] == 0.0
    assert m["det_cse_accuracy"] == 0.0 and m["det_u_error"] == 0.0
    assert m["miou"] > 0  # the ground-truth boxes still see the persons


def test_densepose_image_with_the_mirror_image_averages_the_carried_back_maps():
    class Recording(FakeHead):
        def __init__(self):
            super().__init__(part=2, u=0.25, v=0.125)
            self.seen = []

        def roi_pool(self, features, boxes):
            self.seen.append((features, [b.clone() for b in boxes]))
            return torch.zeros(sum(len(b) for b in boxes), 1)

    head = Recording()
    boxes = [torch.tensor([[1.0, 2, 5, 9]]), torch.tensor([[0.0, 0, 10, 4], [6, 1, 9, 3]])]
    out = densepose_image(head, "plain", boxes, (10, 10), flipped_features="mirror")
    assert [f for f, _ in head.seen] == ["plain", "mirror"]
    assert torch.equal(head.seen[1][1][0], torch.tensor([[5.0, 2, 9, 9]]))  # x -> 10 - x
    assert torch.equal(head.seen[1][1][1], torch.tensor([[0.0, 0, 10, 4], [1, 1, 4, 3]]))
    # the torso keeps its channel; V = (0.125 + (1 - 0.125)) / 2, U unchanged
    uv = out[0]["uv"][0]
    on = out[0]["parts"][0] == 2
    assert int(on.sum()) == 28
    assert torch.allclose(uv[0][on], torch.tensor(0.25)) and torch.allclose(uv[1][on],
                                                                             torch.tensor(0.5))


def test_evaluate_with_flip_equals_the_averaged_head():
    """A head saying V = 0.125 on the torso, averaged with its mirror (1 - 0.125), is the
    head saying 0.5: the flipped evaluation of the one equals the plain one of the other."""
    scenes = render_batch(SEEDS, size=96, p_crowd=0.0, p_person=0.6)
    dets = [{"boxes": scenes.boxes[i][scenes.person_index[i][:1]].float(),
             "labels": torch.tensor([PERSON_ID])} for i in range(len(SEEDS))]
    flipped = evaluate_densepose(FakeHead(part=2, u=0.5, v=0.125), FakeTrunk(dets), SEEDS,
                                 size=96, p_person=0.6, flip=True)
    plain = evaluate_densepose(FakeHead(part=2, u=0.5, v=0.5), FakeTrunk(dets), SEEDS,
                               size=96, p_person=0.6)
    assert flipped.keys() == plain.keys()
    for k in plain:
        assert flipped[k] == pytest.approx(plain[k], abs=1e-6), k
