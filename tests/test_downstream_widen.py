"""Channel widening preserves the function: on the checkpoint's channels the widened model predicts what the
source model predicts, whatever the new channel holds (its weights start silent)."""

from __future__ import annotations

import torch

from dpot.models import DPOT
from dpot.training.config import AdaptConfig, FinetuneConfig
from dpot.training.finetune import TaskShape, adapt_model


def test_widened_model_equals_source_on_the_old_channels():
    torch.manual_seed(0)
    src = DPOT.from_preset(
        "demo",
        img_size=16,
        patch_size=4,
        embed_dim=32,
        depth=2,
        n_blocks=4,
        mlp_ratio=1,
        out_layer_dim=8,
        modes=4,
        in_channels=2,
        out_channels=2,
        in_timesteps=3,
        out_timesteps=2,
    ).eval()
    task = TaskShape(name="t", ndim=2, grid=(16, 16), channels=3, t_in=3, steady=False)
    model, _ = adapt_model(src, task, FinetuneConfig(finetune=AdaptConfig(channels="widen")))
    model.eval()
    assert model.config.in_channels == 3 and model.config.out_channels == 3
    x = torch.randn(2, 16, 16, 3, 2)
    with torch.no_grad():
        want = src(x)
        for extra in (torch.zeros(2, 16, 16, 3, 1), 5 * torch.randn(2, 16, 16, 3, 1)):
            got = model(torch.cat([x, extra], dim=-1))
            assert got.shape == (2, 16, 16, 2, 3)
            torch.testing.assert_close(got[..., :2], want, rtol=1e-5, atol=1e-6)
