import pytest
import torch

from drivesim.nn.embeddings import (
    BoxEmbedding,
    LabelEmbedding,
    TimestepEmbedding,
    fourier_features,
    sinusoidal_embedding,
)


def test_sinusoidal_embedding():
    e = sinusoidal_embedding(torch.tensor([0, 1, 999]), 16)
    assert e.shape == (3, 16)
    torch.testing.assert_close(e[0], torch.cat([torch.ones(8), torch.zeros(8)]))
    assert not torch.allclose(e[1], e[2])
    torch.testing.assert_close(e.norm(dim=1), torch.full((3,), 8**0.5))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(torch.tensor([0]), 7)
    assert TimestepEmbedding(16, 32)(torch.arange(4)).shape == (4, 32)


def test_label_embedding_null_row_and_range():
    emb = LabelEmbedding("crowdedness", 3, 8)
    out = emb(torch.tensor([-1, 0, 1, 2, -1]))
    assert out.shape == (5, 8)
    torch.testing.assert_close(out[0], emb.table.weight[3])
    torch.testing.assert_close(out[0], out[4])
    assert len({tuple(r.tolist()) for r in out[:4]}) == 4
    with pytest.raises(ValueError, match=r"crowdedness has values in \[0, 3\]"):
        emb(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="crowdedness"):
        emb(torch.tensor([-2]))


def test_fourier_features_shape():
    assert fourier_features(torch.rand(2, 5, 4), 3).shape == (2, 5, 4 * 7)


def _boxes():
    boxes = torch.tensor([[[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.9, 0.8], [0.0, 0.0, 0.0, 0.0]]])
    classes = torch.tensor([[0, 1, -1]])
    mask = torch.tensor([[True, True, False]])
    return boxes, classes, mask


def test_box_tokens_shapes_anchor_and_padding():
    torch.manual_seed(0)
    emb = BoxEmbedding(num_classes=2, dim=16, num_frequencies=4)
    boxes, classes, mask = _boxes()
    out = emb(boxes, classes, mask, torch.tensor([True]))
    assert out.tokens.shape == (1, 4, 16) and out.mask.tolist() == [[True, True, True, False]]
    torch.testing.assert_close(out.tokens[0, 0], emb.anchor.weight[1])
    # real tokens do not depend on what the padding holds
    junk = boxes.clone()
    junk[0, 2] = torch.tensor([0.3, 0.3, 0.6, 0.9])
    out2 = emb(junk, torch.tensor([[0, 1, 1]]), mask, torch.tensor([True]))
    torch.testing.assert_close(out2.tokens[:, :3], out.tokens[:, :3])
    # boxes unknown: null anchor, every box masked out
    null = emb(boxes, classes, mask, torch.tensor([False]))
    assert null.mask.tolist() == [[True, False, False, False]]
    torch.testing.assert_close(null.tokens[0, 0], emb.anchor.weight[0])
    # class changes the token
    out3 = emb(boxes, torch.tensor([[1, 1, -1]]), mask, torch.tensor([True]))
    assert not torch.allclose(out3.tokens[0, 1], out.tokens[0, 1])


def test_box_embedding_bad_inputs():
    emb = BoxEmbedding(num_classes=2, dim=8)
    boxes, _, mask = _boxes()
    with pytest.raises(ValueError, match="box_classes"):
        emb(boxes, torch.tensor([[0, 2, 0]]), mask, torch.tensor([True]))
    with pytest.raises(ValueError, match="shapes"):
        emb(boxes[:, :2], torch.tensor([[0, 1, 0]]), mask, torch.tensor([True]))
