"""MOTChallenge text lines: written by hand, read back, parsed like py-motmetrics' loader."""

import warnings

import pytest
import torch

from coursekit.tracking import from_mot_lines, mot_metrics, to_mot_lines

F64 = torch.float64


def test_to_mot_lines_by_hand():
    frames = [
        (torch.tensor([7, 3]), torch.tensor([[1.0, 2.0, 4.0, 6.0], [0.5, 0.25, 1.5, 1.25]])),
        (torch.tensor([], dtype=torch.long), torch.zeros(0, 4)),
        (torch.tensor([7]), torch.tensor([[2.0, 2.0, 5.0, 6.0]]), torch.tensor([0.875])),
    ]
    assert to_mot_lines(frames) == [
        "1,7,1.00,2.00,3.00,4.00,1,-1,-1,-1",  # x, y, w, h: the corner, then the size
        "1,3,0.50,0.25,1.00,1.00,1,-1,-1,-1",
        "3,7,2.00,2.00,3.00,4.00,0.88,-1,-1,-1",  # with a score: its confidence
    ]
    assert to_mot_lines(frames[:1], first_frame=0, decimals=None)[0] == \
        "0,7,1.0,2.0,3.0,4.0,1,-1,-1,-1"


def test_from_mot_lines_by_hand():
    text = "1,7,1,2,3,4,0.9,-1,-1,-1\n\n3,2,10,20,5,5,1,-1,-1,-1\n3,4,0,0,1,1\n"
    frames = from_mot_lines(text, with_scores=True)
    assert len(frames) == 3
    ids, boxes, scores = frames[0]
    assert ids.tolist() == [7] and boxes.tolist() == [[1.0, 2.0, 4.0, 6.0]]
    assert scores.tolist() == [pytest.approx(0.9)]
    assert frames[1][0].shape == (0,) and frames[1][1].shape == (0, 4)
    assert frames[2][0].tolist() == [2, 4]
    assert frames[2][2].tolist() == [1.0, 1.0]  # conf defaults to 1 when absent
    assert len(from_mot_lines(text, num_frames=5)) == 5
    assert len(from_mot_lines(text.splitlines())[0]) == 2  # (ids, boxes) by default


def random_frames(seed, n_frames=8, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_frames):
        k = int(torch.randint(0, 5, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g, dtype=dtype) * 100
        boxes = torch.cat([xy, xy + 1 + torch.rand(k, 2, generator=g, dtype=dtype) * 30], 1)
        ids = torch.randperm(20, generator=g)[:k] + 1
        out.append((ids, boxes, torch.rand(k, generator=g, dtype=dtype)))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_is_exact_in_full_precision(seed):
    frames = random_frames(seed)
    back = from_mot_lines(to_mot_lines(frames, decimals=None), num_frames=len(frames),
                          with_scores=True, dtype=F64)
    for (ids, boxes, scores), (ids2, boxes2, scores2) in zip(frames, back, strict=True):
        assert torch.equal(ids, ids2) and torch.equal(scores, scores2)
        # x2 - x1 then x1 + w: within one rounding of the corner
        assert torch.allclose(boxes, boxes2, rtol=0, atol=1e-12)


def test_metrics_survive_the_text_format():
    gt = [(i, b) for i, b, _ in random_frames(10)]
    pred = [(i, b + 0.3) for i, b in gt]
    text = "\n".join(to_mot_lines(pred, decimals=None))
    again = from_mot_lines(text, num_frames=len(pred), dtype=F64)
    assert mot_metrics(gt, again) == pytest.approx(mot_metrics(gt, pred), rel=1e-12, abs=1e-12)
    rounded = from_mot_lines(to_mot_lines(pred), num_frames=len(pred), dtype=F64)
    assert mot_metrics(gt, rounded)["tp"] == mot_metrics(gt, pred)["tp"]  # 2 decimals: IoU
    assert mot_metrics(gt, rounded)["motp"] == pytest.approx(mot_metrics(gt, pred)["motp"],
                                                             abs=1e-3)


def test_reads_like_motmetrics_loader(tmp_path):
    mm = pytest.importorskip("motmetrics")
    frames = random_frames(5)
    lines = to_mot_lines(frames, decimals=3)
    path = tmp_path / "result.txt"
    path.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():  # pandas 3 deprecates a tuple operation inside
        warnings.simplefilter("ignore")
        df = mm.io.loadtxt(str(path), fmt="mot15-2D")  # X, Y, Width, Height per (FrameId, Id)
    ours = from_mot_lines(lines, with_scores=True, dtype=F64)
    for f, (ids, boxes, scores) in enumerate(ours, start=1):
        rows = df.loc[f] if f in df.index.get_level_values(0) else None
        assert (0 if rows is None else len(rows)) == ids.numel()
        for i, b, s in zip(ids.tolist(), boxes.tolist(), scores.tolist(), strict=True):
            r = rows.loc[i]
            # MOTChallenge counts pixels from 1: the loader subtracts 1 from x and y (of
            # results and ground truth alike); we write and read the numbers as they are
            x, y = r.X + 1, r.Y + 1
            assert [x, y, x + r.Width, y + r.Height] == pytest.approx(b, abs=1e-9)
            assert r.Confidence == pytest.approx(s, abs=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match=r"line 2 must be 'frame,id,x,y,w,h"):
        from_mot_lines("1,1,0,0,1,1\n1,2,0,0\n")
    with pytest.raises(ValueError, match="line 1 must be"):
        from_mot_lines(["a,b,c,d,e,f"])
    with pytest.raises(ValueError, match="line 1 names frame 0, before first_frame = 1"):
        from_mot_lines(["0,1,0,0,1,1"])
    with pytest.raises(TypeError, match="lines must be str"):
        from_mot_lines([b"1,1,0,0,1,1"])
    with pytest.raises(ValueError, match=r"frames\[0\]: ids and boxes must have the same"):
        to_mot_lines([(torch.tensor([1, 2]), torch.zeros(1, 4))])
    with pytest.raises(ValueError, match=r"frames\[0\] scores must be Tensor\[K\] with K = 1"):
        to_mot_lines([(torch.tensor([1]), torch.zeros(1, 4), torch.zeros(2))])
    with pytest.raises(ValueError, match="decimals must be >= 0"):
        to_mot_lines([(torch.tensor([1]), torch.zeros(1, 4))], decimals=-1)
