"""The image operations the way Deforum (sd-webui-deforum) computes them, as baselines.

Re-implemented step for step so a benchmark pays what a Deforum frame pays:

- 2D warp: a float32 translation matrix and ``cv2.getRotationMatrix2D`` about
  the transform centre, both made 3×3 and multiplied, then
  ``cv2.warpPerspective`` with the edge replicated.
- 3D warp: two pytorch3d-style ``FoVPerspectiveCameras`` (the old one at rest,
  the new one rotated and moved), each a 4×4 row-vector world→NDC transform
  applied to every (x, y, z) point in homogeneous coordinates and divided by w;
  the difference of the two projections is subtracted from an identity
  ``affine_grid`` and the float32 image is sampled with ``grid_sample``, then
  clamped and truncated to bytes.  Depth goes in as given: the depth
  preparation before the warp is not part of the operation on either side.
- Colour coherence: OpenCV's 8-bit RGB→LAB/HSV conversion, scikit-image's
  ``match_histograms(…, channel_axis=-1)``, and back.

scikit-image is a benchmark-only dependency (``benchmarks/requirements.txt``).
"""

from __future__ import annotations

import math

import numpy as np

TRANSLATION_SCALE = 1.0 / 200.0  # Deforum's schedule units → NDC depth units
NEAR, FAR = 200.0, 10000.0  # Deforum's default near/far schedules (they do not move pixels)


def warp_2d(image: np.ndarray, *, angle: float, zoom: float, translation_x: float,
            translation_y: float, center: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    """One 2D step: matrix built per frame, OpenCV perspective warp, edge replicated."""
    import cv2

    height, width = image.shape[:2]
    rotate = cv2.getRotationMatrix2D((width * center[0], height * center[1]), angle, zoom)
    shift = np.float32([[1, 0, translation_x], [0, 1, translation_y]])
    matrix = np.matmul(np.vstack([rotate, [0, 0, 1]]), np.vstack([shift, [0, 0, 1]]))
    return cv2.warpPerspective(image, matrix, (width, height),
                               borderMode=cv2.BORDER_REPLICATE)


def _euler_xyz(radians: list[float]):
    """Rx·Ry·Rz from a tensor of three angles (pytorch3d's "XYZ" convention)."""
    import torch

    angles = torch.tensor(radians)
    cos, sin = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones(()), torch.zeros(())
    rot_x = torch.stack([one, zero, zero, zero, cos[0], -sin[0], zero, sin[0], cos[0]])
    rot_y = torch.stack([cos[1], zero, sin[1], zero, one, zero, -sin[1], zero, cos[1]])
    rot_z = torch.stack([cos[2], -sin[2], zero, sin[2], cos[2], zero, zero, zero, one])
    return rot_x.reshape(3, 3) @ rot_y.reshape(3, 3) @ rot_z.reshape(3, 3)


def _camera(fov: float, aspect: float, rotation=None, translation=None):
    """4×4 row-vector transform world → NDC of a field-of-view perspective camera.

    World → view is ``p·R + T``; the projection keeps x/z and y/z scaled by the
    focal lengths and puts view z in w (pytorch3d's right-handed NDC).
    """
    import torch

    view = torch.eye(4)
    if rotation is not None:
        view[:3, :3] = rotation
        view[3, :3] = torch.tensor(translation)
    top = math.tan(math.radians(fov) / 2.0) * NEAR
    right = top * aspect
    projection = torch.zeros(4, 4)
    projection[0, 0] = NEAR / right
    projection[1, 1] = NEAR / top
    projection[2, 2] = FAR / (FAR - NEAR)
    projection[2, 3] = -(FAR * NEAR) / (FAR - NEAR)
    projection[3, 2] = 1.0
    return view @ projection.T


def _project(transform, points):
    """Homogeneous transform of N×3 row points, divided by w (xyz, as pytorch3d returns)."""
    import torch

    batch = points.clone()[None]
    batch = torch.cat([batch, torch.ones(1, batch.shape[1], 1)], dim=2)
    out = torch.bmm(batch, transform[None])
    return (out[..., :3] / out[..., 3:])[0]


def warp_3d(image: np.ndarray, depth: np.ndarray | None, *, translation: tuple, rotation: tuple,
            fov: float, sampling_mode: str = "bicubic",
            padding_mode: str = "border") -> np.ndarray:
    """One 3D step with Deforum's formula: two cameras, a grid, ``grid_sample``."""
    import torch
    import torch.nn.functional as F

    height, width = image.shape[:2]
    move = [-translation[0] * TRANSLATION_SCALE, translation[1] * TRANSLATION_SCALE,
            -translation[2] * TRANSLATION_SCALE]
    turn = _euler_xyz([math.radians(v) for v in rotation])
    old = _camera(fov, width / height)
    new = _camera(fov, width / height, turn, move)
    y, x = torch.meshgrid(torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width),
                          indexing="ij")
    z = torch.ones_like(x) if depth is None else torch.as_tensor(depth, dtype=torch.float32)
    points = torch.stack((x.flatten(), y.flatten(), z.flatten()), dim=1)
    offset = _project(new, points)[:, 0:2] - _project(old, points)[:, 0:2]
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).unsqueeze(0)
    coords = F.affine_grid(identity, [1, 1, height, width], align_corners=False)
    grid = coords - torch.reshape(offset, (height, width, 2)).unsqueeze(0)
    source = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)
    sampled = F.grid_sample(source.unsqueeze(0), grid, mode=sampling_mode,
                            padding_mode=padding_mode, align_corners=False)
    return sampled.squeeze().clamp(0, 255).permute(1, 2, 0).numpy().astype(image.dtype)


def match_colors(image: np.ndarray, reference: np.ndarray, mode: str) -> np.ndarray:
    """Colour coherence: convert (LAB, HSV; RGB as is), match histograms, convert back."""
    import cv2
    from skimage.exposure import match_histograms

    if mode == "RGB":
        return match_histograms(image, reference, channel_axis=-1)
    forward, back = {"HSV": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)}.get(
        mode, (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB))
    matched = match_histograms(cv2.cvtColor(image, forward), cv2.cvtColor(reference, forward),
                               channel_axis=-1)
    return cv2.cvtColor(matched, back)
