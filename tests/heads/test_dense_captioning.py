"""The caption head: shapes, teacher forcing is causal, the loss against a hand-written
cross-entropy, greedy decoding, accuracies and the majority baseline by hand, an overfit
batch, plugged into Mask R-CNN as an extra head, bad input."""

import pytest
import torch
from torch.testing import assert_close

from coursekit.heads.captions import BOS, EOS, MAX_LEN, PAD, VOCAB, encode
from coursekit.heads.dense_captioning import (
    CaptionHead,
    ContextRoIAlign,
    caption_accuracy,
    caption_loss,
    majority_caption,
    position_accuracy,
)
from coursekit.instance.mask_rcnn import build_mask_rcnn
from coursekit.instance.pooler import MultiScaleRoIAlign

F64 = torch.float64
SENTENCES = ["small red circle alone", "big blue person left of a square",
             "small gold triangle right of a person"]


def head(**kwargs):
    pool = ContextRoIAlign(MultiScaleRoIAlign((2, 4, 8), 7))
    return CaptionHead(pool, 12, 7, code=16, embed=8, hidden=16, **kwargs)


def test_context_pool_shapes_and_window():
    pool = ContextRoIAlign(MultiScaleRoIAlign((2, 4, 8), 7), image_size=128)
    boxes = torch.tensor([[10.0, 20, 30, 40]])
    assert pool.context_boxes(boxes).tolist() == [[-28.0, -2.0, 68.0, 62.0]]  # ±48, ±32
    feats = {str(i): torch.randn(1, 6, 64 // 2**i, 64 // 2**i) for i in range(3)}
    assert pool(feats, [boxes]).shape == (1, 12, 7, 7)


def test_forward_logits_and_causality():
    h = head().double()
    codes = h(torch.randn(3, 12, 7, 7, dtype=F64))
    assert codes.shape == (3, 16)
    tokens = encode(SENTENCES)
    logits = h.logits(codes, tokens)
    assert logits.shape == (3, MAX_LEN + 1, len(VOCAB))
    changed = tokens.clone()
    changed[:, 4] = VOCAB.index("alone")
    other = h.logits(codes, changed)
    # teacher forcing: step t reads words 0..t, so steps before 4 do not change
    assert_close(other[:, :4], logits[:, :4])
    assert not torch.allclose(other[:, 4:], logits[:, 4:])


def test_loss_equals_hand_written_cross_entropy():
    logits = torch.randn(2, 3, 5, dtype=F64, requires_grad=True)
    tokens = torch.tensor([[BOS, 3, EOS, PAD], [BOS, 4, 3, EOS]])
    # the targets are tokens[:, 1:]; <pad> is skipped: 2 + 3 = 5 words
    logp = logits.log_softmax(-1)
    hand = -(logp[0, 0, 3] + logp[0, 1, EOS] + logp[1, 0, 4] + logp[1, 1, 3]
             + logp[1, 2, EOS]) / 5
    assert_close(caption_loss(logits, tokens), hand)
    assert torch.autograd.gradcheck(lambda x: caption_loss(x, tokens), (logits,))
    empty = torch.full((1, 4), PAD)
    empty[0, 0] = BOS
    zero = caption_loss(torch.randn(1, 3, 5, requires_grad=True), empty)
    assert zero.item() == 0.0 and zero.requires_grad


def test_greedy_decoding_stops_at_eos():
    h = head()
    with torch.no_grad():  # make the output layer say "alone" first, then <eos>
        h.out.weight.zero_()
        h.out.bias.zero_()
        h.out.bias[VOCAB.index("alone")] = 1.0
    tokens = h.generate(torch.randn(2, 16))
    assert tokens.shape == (2, MAX_LEN + 2)
    assert tokens[:, 0].tolist() == [BOS, BOS]
    assert bool((tokens[:, 1:] == VOCAB.index("alone")).all())  # never <eos>: all max_len
    with torch.no_grad():
        h.out.bias[EOS] = 2.0
    tokens = h.generate(torch.randn(2, 16))
    assert tokens[0].tolist() == [BOS, EOS] + [PAD] * MAX_LEN


def test_accuracy_and_majority_by_hand():
    ref = encode(["small red circle alone", "big red circle alone"])
    pred = encode(["small red square alone", "big red circle alone"])
    acc = caption_accuracy(pred, ref)
    assert acc == {"word": 7 / 8, "exact": 0.5, "n": 2.0}
    short = encode(["small red circle"])
    assert caption_accuracy(short, ref[:1])["word"] == 3 / 4  # a missing word is wrong
    assert caption_accuracy(short, ref[:1])["exact"] == 0.0
    # per position: 4 words each, position 3 wrong once
    assert position_accuracy(pred, ref) == [(1, 1.0, 2), (2, 1.0, 2), (3, 0.5, 2), (4, 1.0, 2)]
    assert position_accuracy(short, ref[:1])[3] == (4, 0.0, 1)
    three = encode(["small red circle alone", "small blue person alone",
                    "big red square left of a circle"])
    major = majority_caption(three)
    assert major.shape == (1, MAX_LEN + 2)
    # position by position: small, red, circle|person|square (tie -> smallest id), alone
    assert major[0, :6].tolist() == [BOS, VOCAB.index("small"), VOCAB.index("red"),
                                     VOCAB.index("circle"), VOCAB.index("alone"), EOS]


def test_majority_caption_of_empty_rows_regression():
    # rows without a column: no position to fill (writing <bos> at position 0 raised)
    assert majority_caption(torch.zeros(2, 0, dtype=torch.long)).shape == (1, 0)
    assert majority_caption(torch.full((2, 1), EOS)).tolist() == [[BOS]]


def test_majority_caption_tie_goes_to_the_smallest_token_id():
    a, b = sorted([VOCAB.index("circle"), VOCAB.index("square")])
    reference = torch.tensor([[BOS, b, EOS], [BOS, a, EOS]])  # one vote each at position 1
    assert majority_caption(reference).tolist() == [[BOS, a, EOS]]
    assert majority_caption(reference.int()).dtype == torch.int32  # the input's dtype


def test_overfit_one_batch():
    torch.manual_seed(0)
    h = head()
    x = torch.randn(3, 12, 7, 7)
    tokens = encode(SENTENCES)
    opt = torch.optim.Adam(h.parameters(), 1e-2)
    for _ in range(150):
        loss = h.loss(h(x), [], [{"captions": tokens}])["loss_caption"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    h.eval()
    assert caption_accuracy(h.predict(h(x), [], [])["captions"], tokens)["exact"] == 1.0


def test_plugs_into_mask_rcnn_as_an_extra_head():
    model = build_mask_rcnn(extra_heads={"captions": CaptionHead(
        ContextRoIAlign(MultiScaleRoIAlign((2, 4, 8), 7)), 128, 7, code=16, embed=8,
        hidden=16)})
    images = torch.rand(1, 3, 64, 64)
    target = {"boxes": torch.tensor([[10.0, 10, 30, 30], [35, 30, 50, 55]]),
              "labels": torch.tensor([1, 4]),
              "masks": torch.zeros(2, 64, 64, dtype=torch.bool),
              "captions": encode(SENTENCES[:2])}
    target["masks"][0, 10:30, 10:30] = True
    target["masks"][1, 30:55, 35:50] = True
    model.train()
    losses = model(images, [target])
    assert "loss_caption" in losses and losses["loss_caption"].requires_grad
    model.eval()
    out = model(images)[0]
    assert out["captions"].shape == (len(out["boxes"]), MAX_LEN + 2)


def test_bad_input():
    h = head()
    with pytest.raises(ValueError, match=r"x must be Tensor\[R, 12, 7, 7\].*Tensor\[2, 6, 7, 7\]"):
        h(torch.zeros(2, 6, 7, 7))
    with pytest.raises(ValueError, match="tokens must be Tensor\\[R, L\\] for logits"):
        caption_loss(torch.zeros(2, 3, 5), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="tokens must be an int64"):
        caption_loss(torch.zeros(2, 3, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="one row per caption"):
        caption_accuracy(encode(SENTENCES), encode(SENTENCES[:1]))
    with pytest.raises(ValueError, match="labels must be foreground class indices"):
        head(labels=[0])


def test_position_accuracy_and_majority_caption_bad_input():
    ref = encode(SENTENCES)
    with pytest.raises(ValueError, match=r"predicted must be VOCAB indices in \[0, 23\), got "
                                         r"values from 0 to 99"):
        position_accuracy(ref.masked_fill(ref == EOS, 99), ref)
    with pytest.raises(ValueError, match="predicted and reference must have one row per caption"):
        position_accuracy(ref[:2], ref)
    with pytest.raises(TypeError, match=r"reference must be an int64 Tensor\[K, L\]"):
        position_accuracy(ref, ref.float())
    with pytest.raises(ValueError, match=r"reference must be an int64 Tensor\[K, L\]"):
        majority_caption(ref[0])
    with pytest.raises(ValueError, match=r"reference must hold at least one caption"):
        majority_caption(ref[:0])
    with pytest.raises(ValueError, match=r"reference must be VOCAB indices"):
        majority_caption(ref - 1)
    with pytest.raises(TypeError, match=r"reference must be an int64"):
        majority_caption(ref.float())
