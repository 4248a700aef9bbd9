"""2D -> 3D transfer: trunk copied, embedding and head inflated so z-constant inputs reproduce the 2D model."""

from __future__ import annotations

import pytest
import torch

from dpot.models import DPOT, DPOTConfig
from dpot.models.transfer import inflate_2d_to_3d


def test_inflation_reproduces_2d_embedding_and_head_on_z_constant_fields():
    torch.manual_seed(0)
    m2 = DPOT(
        DPOTConfig(
            img_size=16,
            patch_size=4,
            in_channels=3,
            out_channels=3,
            in_timesteps=4,
            embed_dim=32,
            depth=2,
            n_blocks=4,
            out_layer_dim=8,
        )
    )
    torch.nn.init.normal_(m2.pos_embed)
    m3 = inflate_2d_to_3d(m2, img_size=(16, 16, 8))
    assert m3.config.ndim == 3 and m3.config.patch_hidden_dim == m2.config.patch_hidden_dim + 1
    for key, value in m2.state_dict().items():
        if key.startswith("blocks."):
            assert torch.equal(m3.state_dict()[key].reshape(value.shape), value)
    x = torch.randn(2, 16, 16, 4, 3)
    with torch.no_grad():
        z2 = m2.embed(x)
        z3 = m3.embed(x.unsqueeze(3).expand(-1, -1, -1, 8, -1, -1))
        assert torch.allclose(z3, z2.unsqueeze(3).expand_as(z3), atol=1e-5)
        y2 = m2.decode(z2)
        y3 = m3.decode(z2.unsqueeze(3).expand(-1, -1, -1, 2, -1))
        assert torch.allclose(y3, y2.unsqueeze(3).expand_as(y3), atol=1e-6)
        assert m3(torch.randn(1, 16, 16, 8, 4, 3)).shape == (1, 16, 16, 8, 1, 3)


def test_inflation_with_new_channels_and_trunk_guard():
    m2 = DPOT(
        DPOTConfig(
            img_size=16, patch_size=4, in_channels=4, out_channels=4, in_timesteps=4, embed_dim=32, depth=1, n_blocks=4
        )
    )
    m3 = inflate_2d_to_3d(m2, img_size=8, in_channels=5, out_channels=5)
    w2, w3 = m2.out_layer[4].weight, m3.out_layer[4].weight
    assert torch.equal(w3[:4, :, :, :, 0], w2) and w3.shape[0] == 5
    with pytest.raises(ValueError, match="embed_dim must stay 32"):
        inflate_2d_to_3d(m2, embed_dim=64)
