"""EURoPE: the asymmetric position ids of ASTRA's image stream (paper section 3.2).

The stream is ``[latent | ref_1 ... ref_N | pose]`` on packed-token grids (one token = 16 x 16
pixels). Each token gets FLUX's 3-column id ``(index, row, col)``:

* latent token (i, j)        -> (0, i, j)
* pose token (i, j)          -> (0, s*i + (s-1)/2, s*j + (s-1)/2): native RoPE on the latent
  patch it overlays, so the skeleton binds to the canvas; ``s`` > 1 for a pose map encoded
  at 1/s resolution (OminiControl2's compact tokens land on the centre of the patch they cover).
* reference k token (i, j)   -> (0, i + h + sum_{m<k} h_m, j + w + sum_{m<k} w_m): UnoPE.
  References sit diagonally past the target grid, so they share no position with the canvas and
  carry identity without imposing a layout. (The paper writes (i + w, j + h); for non-square
  references we follow UNO's code, which offsets rows by heights and columns by widths.)

FLUX's RoPE is relative, so only these differences matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

GridHW = tuple[int, int]


@dataclass(frozen=True)
class StreamLayout:
    """Token grids of the image stream ``[latent | ref_1 ... ref_N | pose]``, in that order."""

    latent_hw: GridHW
    ref_hws: tuple[GridHW, ...] = ()
    pose_hw: GridHW | None = None
    pose_scale: int = 1

    @property
    def num_latent(self) -> int:
        return self.latent_hw[0] * self.latent_hw[1]

    @property
    def ref_slices(self) -> list[slice]:
        """Where each reference's tokens sit in the image stream."""
        slices, start = [], self.num_latent
        for h, w in self.ref_hws:
            slices.append(slice(start, start + h * w))
            start += h * w
        return slices

    @property
    def num_tokens(self) -> int:
        pose = self.pose_hw[0] * self.pose_hw[1] if self.pose_hw else 0
        return self.num_latent + sum(h * w for h, w in self.ref_hws) + pose

    def position_ids(self) -> torch.Tensor:
        return position_ids(self.latent_hw, self.ref_hws, self.pose_hw, self.pose_scale)


def position_ids(latent_hw: GridHW, ref_hws: Sequence[GridHW] = (), pose_hw: GridHW | None = None,
                 pose_scale: int = 1) -> torch.Tensor:
    """(L, 3) float32 ids for ``[latent, ref_1 ... ref_N, pose]``, as diffusers' ``img_ids``.

    Args:
        latent_hw: the latent's packed-token grid (H/16, W/16).
        ref_hws: each reference's packed-token grid, in stream order.
        pose_hw: the pose map's packed-token grid, or None without a pose.
        pose_scale: how many latent tokens one pose token spans per side (1 = full resolution).
    """
    h, w = latent_hw
    parts = [_grid_ids(h, w)]
    row0, col0 = h, w
    for rh, rw in ref_hws:
        parts.append(_grid_ids(rh, rw, row0=row0, col0=col0))
        row0, col0 = row0 + rh, col0 + rw
    if pose_hw is not None:
        centre = (pose_scale - 1) / 2
        parts.append(_grid_ids(*pose_hw, row0=centre, col0=centre, step=pose_scale))
    return torch.cat(parts)


def _grid_ids(h: int, w: int, row0: float = 0.0, col0: float = 0.0, step: float = 1.0) -> torch.Tensor:
    """Row-major (h*w, 3) ids ``(0, row0 + step*i, col0 + step*j)``."""
    rows = row0 + step * torch.arange(h, dtype=torch.float32)
    cols = col0 + step * torch.arange(w, dtype=torch.float32)
    ids = torch.zeros(h, w, 3)
    ids[..., 1] = rows[:, None]
    ids[..., 2] = cols[None, :]
    return ids.reshape(h * w, 3)
