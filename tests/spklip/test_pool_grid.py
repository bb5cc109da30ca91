"""star.pool_grid: a zero-initialised linear map of the last STAR-Net map on a coarse grid,
added to the attention pooling (keeps where the object is)."""

from __future__ import annotations

import pytest
import torch

import spklip
from spklip.errors import SpklipError


def test_pool_grid_starts_as_the_model_without_it_and_then_sees_position():
    small = {"image_size": [24, 32]}
    grid = spklip.create_model("spklip-tiny", seed=0, **small, **{"star.pool_grid": [3, 4]})
    plain = spklip.create_model("spklip-tiny", seed=0, **small, **{"star.pool_grid": None})
    assert plain.visual.star.spatial.grid_proj is None
    a, b = grid.state_dict(), plain.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)  # the same weights, plus grid_proj (zeros)
    x = torch.zeros(2, 300, 24, 32, dtype=torch.uint8)
    x[0, :, 2:8, 2:8] = 1  # a blob upper left
    x[1, :, 16:22, 24:30] = 1  # the same blob lower right
    grid.eval(), plain.eval()
    with torch.no_grad():
        assert torch.allclose(grid.encode_video(x), plain.encode_video(x))
        # A grid map that reads the cells tells the two positions apart by itself.
        torch.nn.init.normal_(grid.visual.star.spatial.grid_proj.weight)
        spatial = grid.visual.star.spatial
        fmap = spatial.stages(spatial.stem(grid.visual.hsfe(grid.visual.bin(x)).flatten(0, 1)))
        cells = torch.nn.functional.adaptive_avg_pool2d(fmap, (3, 4)).flatten(1)
        assert not torch.allclose(spatial.grid_proj(cells)[0], spatial.grid_proj(cells)[1])
    with pytest.raises(SpklipError, match="pool_grid"):
        spklip.create_model("spklip-tiny", **{"star.pool_grid": [0, 4]})
    # spklip-tiny's recipe uses it (chosen on validation, docs/training.md).
    assert spklip.create_model("spklip-tiny").visual.star.spatial.pool_grid == (3, 4)
