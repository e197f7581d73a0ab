"""Deforum's 2D and 3D frame warps on uint8 images (H×W or H×W×C).

2D follows Deforum's matrix order through OpenCV.  3D builds a backward
sampling grid in normalised device coordinates (Deforum's formula, or a true
pinhole reprojection) and samples the previous frame with torch's
``grid_sample``: OpenCV's ``remap`` quantises positions to 1/32 pixel, which
misses Deforum's pictures by several grey levels on sharp edges.

The ``*_tensor`` warps take and return uint8 H×W×C torch tensors and work on
the tensor's device (the device-resident frame loop): the 3D grid is the same
code built there, and the 2D warp redoes ``warpPerspective``'s integer
arithmetic, so both give the arrays' pixels.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .units import TRANSLATION_SCALE

_UNITS_TO_DEPTH = 1.0 / TRANSLATION_SCALE  # translation schedule units → depth units
SAMPLING_MODES = ("bicubic", "bilinear", "nearest")
PADDING_MODES = ("border", "reflection", "zeros")
WARP_MODELS = ("deforum", "pinhole")
# Where samples without a source land: far outside [-1, 1] so they take the padding.
_OUTSIDE = 4.0
# Bound on |NDC| so pixel indices stay far inside int32 in the sampler.
_LIMIT = 1.0e5

Vec3 = tuple[float, float, float]
Shift = tuple[float, float]


def _validate_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError("image must be a uint8 array of shape H×W or H×W×C")


def _validate_modes(sampling_mode: str, padding_mode: str) -> None:
    for name, value, allowed in (("sampling_mode", sampling_mode, SAMPLING_MODES),
                                 ("padding_mode", padding_mode, PADDING_MODES)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _tensor(array: np.ndarray, dtype: type | None = None):
    """A torch view of ``array``, copying only when torch cannot share its memory."""
    import torch

    array = np.require(array, dtype, "W")  # torch refuses read-only arrays
    if any(stride < 0 for stride in array.strides):  # … and reversed views
        array = np.ascontiguousarray(array)
    return torch.from_numpy(array)


# --------------------------------------------------------------------------- 2D

def _flip_homography(width: int, height: int, theta: float, phi: float, gamma: float,
                     fv: float) -> np.ndarray:
    """Deforum's perspective-flip homography B (source → destination pixels).

    The image is placed as a plane in front of an OpenGL-style camera, rotated,
    projected, and the homography between its corners before and after is solved.
    """
    import cv2

    half_fov = math.radians(fv / 2.0)
    diagonal = math.hypot(width, height)
    side = diagonal / math.cos(half_fov)
    distance = diagonal / (2.0 * math.sin(half_fov))
    near, far = distance - diagonal / 2.0, distance + diagonal / 2.0

    rotation = np.eye(4)
    rotation[:3, :3] = _rotation_xyz(phi, gamma, theta)
    push = np.eye(4)
    push[2, 3] = -distance
    projection = np.zeros((4, 4))
    projection[0, 0] = projection[1, 1] = 1.0 / math.tan(half_fov)
    projection[2, 2] = -(far + near) / (far - near)
    projection[2, 3] = -2.0 * far * near / (far - near)
    projection[3, 2] = -1.0
    full = projection @ push @ rotation

    w2, h2 = width / 2.0, height / 2.0
    corners = np.array([[-w2, h2, 0.0], [w2, h2, 0.0], [w2, -h2, 0.0], [-w2, -h2, 0.0]])
    projected = np.c_[corners, np.ones(4)] @ full.T
    projected = projected[:, :2] / projected[:, 3:4]
    source = (corners[:, :2] + [w2, h2]).astype(np.float32)
    target = ((projected + 1.0) * (side / 2.0)).astype(np.float32)
    homography = cv2.getPerspectiveTransform(source, target)
    recentre = np.array([[1.0, 0.0, (width - side) / 2.0],
                         [0.0, 1.0, (height - side) / 2.0],
                         [0.0, 0.0, 1.0]])
    return homography @ recentre


def matrix_2d(width: int, height: int, *, angle: float, zoom: float, translation_x: float,
              translation_y: float,
              perspective_flip: tuple[float, float, float, float] | None = None,
              center: tuple[float, float] | None = None) -> np.ndarray:
    """3×3 source→destination matrix of a Deforum 2D step, shared by images and masks.

    Translate first, then rotate/zoom about ``(W//2, H//2)`` or, with ``center``
    (fractions of the size, the webui's transform centre), ``(W·cx, H·cy)``; with a flip
    ``(theta, phi, gamma, fv)`` the flip homography is applied last.  Deforum
    drops the translation when the flip is on; here it is kept.
    """
    import cv2

    pivot = (width // 2, height // 2) if center is None else \
        (width * center[0], height * center[1])
    rotate_zoom = np.vstack([cv2.getRotationMatrix2D(pivot, angle, zoom),
                             [0.0, 0.0, 1.0]])
    shift = np.array([[1.0, 0.0, translation_x], [0.0, 1.0, translation_y], [0.0, 0.0, 1.0]])
    matrix = rotate_zoom @ shift
    if perspective_flip is not None:
        theta, phi, gamma, fv = perspective_flip
        matrix = _flip_homography(width, height, theta, phi, gamma, fv) @ matrix
    return matrix


def warp_2d(image: np.ndarray, *, angle: float, zoom: float, translation_x: float,
            translation_y: float, border: str = "replicate",
            perspective_flip: tuple[float, float, float, float] | None = None,
            center: tuple[float, float] | None = None) -> np.ndarray:
    """Move ``image`` by one Deforum 2D step (+x right, +y down, +angle counter-clockwise).

    ``border == "wrap"`` tiles the picture; anything else replicates the edge,
    as Deforum does.
    """
    import cv2

    _validate_image(image)
    height, width = image.shape[:2]
    matrix = matrix_2d(width, height, angle=angle, zoom=zoom, translation_x=translation_x,
                       translation_y=translation_y, perspective_flip=perspective_flip,
                       center=center)
    mode = cv2.BORDER_WRAP if border == "wrap" else cv2.BORDER_REPLICATE
    out = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=mode)
    return out.reshape(image.shape)  # OpenCV drops a trailing single channel


# --------------------------------------------------------------------------- 3D

def _rotation_xyz(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rx·Ry·Rz from degrees (pytorch3d's ``euler_angles_to_matrix(…, "XYZ")``)."""
    (ca, sa), (cb, sb), (cc, sc) = ((math.cos(math.radians(v)), math.sin(math.radians(v)))
                                    for v in (rx, ry, rz))
    rot_x = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
    rot_y = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    rot_z = np.array([[cc, -sc, 0.0], [sc, cc, 0.0], [0.0, 0.0, 1.0]])
    return rot_x @ rot_y @ rot_z


def _focal(fov: float, aspect: float) -> tuple[float, float]:
    """(K00, K11) of a vertical-fov camera in NDC units."""
    k11 = 1.0 / math.tan(math.radians(fov) / 2.0)
    return k11 / aspect, k11


@lru_cache(maxsize=8)
def _axes(height: int, width: int, device: str = "cpu") -> tuple:
    """Per-axis float32 tensors on ``device`` shaped to broadcast to H×W.

    ``linspace`` points are where Deforum places its 3D points; the pixel
    centres are those of ``affine_grid(align_corners=False)``.  Built in
    float64 on the CPU (MPS has no float64), so every device gets the same values.
    """
    import torch

    lin_x = torch.linspace(-1.0, 1.0, width, dtype=torch.float64)
    lin_y = torch.linspace(-1.0, 1.0, height, dtype=torch.float64)
    centre_x = (2.0 * torch.arange(width, dtype=torch.float64) + 1.0) / width - 1.0
    centre_y = (2.0 * torch.arange(height, dtype=torch.float64) + 1.0) / height - 1.0
    return tuple(axis.float().to(device) for axis in
                 (lin_x[None, :], lin_y[:, None], centre_x[None, :], centre_y[:, None]))


def _affine(out, terms, constant: float):
    """``out ← constant + Σ coef·term`` in place, broadcasting each term (no temporaries)."""
    out.fill_(constant)
    for term, coef in terms:
        out.add_(term, alpha=coef)
    return out


def _deforum_grid(grid, z, rotation: np.ndarray, shift: np.ndarray, k_new: tuple[float, float],
                  k_old: tuple[float, float]) -> None:
    """Reference formula: sample at pixel centre − (projected new − projected old)."""
    import torch

    x, y, centre_x, centre_y = _axes(*grid.shape[1:], str(grid.device))
    r, t = rotation.tolist(), shift.tolist()
    new_z = torch.empty_like(grid[0])
    inv_z = z.reciprocal()
    # Row-vector convention p' = p·R + T, i.e. p'_k = Σ_m p_m R[m][k].
    _affine(new_z, [(x, r[0][2]), (y, r[1][2]), (z, r[2][2])], t[2]).reciprocal_()
    for k, (plane, axis, centre) in enumerate(((grid[0], x, centre_x), (grid[1], y, centre_y))):
        _affine(plane, [(x, r[0][k]), (y, r[1][k]), (z, r[2][k])], t[k])
        plane.mul_(new_z).mul_(k_new[k]).addcmul_(axis, inv_z, value=-k_old[k])
        plane.neg_().add_(centre)


def _pinhole_grid(grid, z, rotation: np.ndarray, displacement: np.ndarray,
                  k_new: tuple[float, float], k_old: tuple[float, float],
                  c_new: tuple[float, float], c_old: tuple[float, float]):
    """Unproject each output pixel at its depth, move it into the old camera, project.

    ``p_old = Q·(p_new + d')`` with Q's columns the new camera's axes in the
    old camera's frame and d' the camera's move in the new camera's axes
    (x right, y down, z forward); ``c`` is each camera's principal point in
    NDC (lens shift).  Points behind the old camera have no source and take
    the padding.  Returns 1 / (depth in the old camera), 0 behind it.
    """
    import torch

    _, _, centre_x, centre_y = _axes(*grid.shape[1:], str(grid.device))
    q, d = rotation.tolist(), displacement.tolist()
    point = (((centre_x - c_new[0]) / k_new[0] * z).add_(d[0]),
             ((centre_y - c_new[1]) / k_new[1] * z).add_(d[1]), z + d[2])
    old_z = _affine(torch.empty_like(grid[0]), zip(point, q[2]), 0.0)
    behind = old_z <= 0
    old_z.reciprocal_()
    for i in range(2):
        _affine(grid[i], zip(point, q[i]), 0.0).mul_(old_z).mul_(k_old[i]).add_(c_old[i])
        grid[i].masked_fill_(behind, _OUTSIDE)
    return old_z.masked_fill_(behind, 0.0)


def _principal_point(shift: Shift) -> tuple[float, float]:
    """NDC (x right, y down) of the optical axis for a lens shift given as fractions of
    the picture's width and height (+x: the view moves right, +y: up)."""
    return -2.0 * shift[0], 2.0 * shift[1]


def _depth_tensor(depth, height: int, width: int, name: str = "depth",
                  device: str = "cpu"):
    """``depth`` (NumPy or torch, None: flat z = 1) as a float32 tensor on ``device``."""
    import torch

    if depth is None:
        return torch.ones((1, 1), device=device)
    if tuple(depth.shape) != (height, width):
        raise ValueError(f"{name} has shape {tuple(depth.shape)}, expected {(height, width)}")
    if isinstance(depth, torch.Tensor):
        return depth.to(device=device, dtype=torch.float32)
    host = _tensor(depth, np.float32)
    if torch.device(device).type == "cuda":  # pinned: the upload does not wait for the GPU
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def _grid(height: int, width: int, depth, translation: Vec3,
          rotation: Vec3, fov: float, prev_fov: float | None, warp_model: str,
          aspect: float | None, shift: Shift = (0.0, 0.0), prev_shift: Shift | None = None,
          device: str = "cpu"):
    """(2×H×W grid tensor, inverse old-camera depth or None) of one 3D step, on ``device``."""
    import torch

    if warp_model not in WARP_MODELS:
        raise ValueError(f"warp_model must be one of {WARP_MODELS}, got {warp_model!r}")
    z = _depth_tensor(depth, height, width, device=device)
    aspect = width / height if aspect is None else aspect
    k_new = _focal(fov, aspect)
    k_old = _focal(fov if prev_fov is None else prev_fov, aspect)
    rot = _rotation_xyz(*rotation)
    tx, ty, tz = (v * _UNITS_TO_DEPTH for v in translation)
    grid = torch.empty((2, height, width), device=device)
    inverse_old_z = None
    if warp_model == "deforum":
        _deforum_grid(grid, z, rot, np.array([-tx, ty, -tz]), k_new, k_old)
    else:
        inverse_old_z = _pinhole_grid(grid, z, rot, np.array([tx, -ty, tz]), k_new, k_old,
                                      _principal_point(shift),
                                      _principal_point(shift if prev_shift is None
                                                       else prev_shift))
    # Points on a camera plane project to infinity: keep them finite and far
    # outside the frame so they take the padding.
    grid.nan_to_num_(nan=_OUTSIDE).clamp_(-_LIMIT, _LIMIT)
    return grid, inverse_old_z


def grid_3d(height: int, width: int, depth: np.ndarray | None, *, translation: Vec3,
            rotation: Vec3, fov: float, prev_fov: float | None = None,
            warp_model: str = "deforum", aspect: float | None = None,
            shift: Shift = (0.0, 0.0), prev_shift: Shift | None = None) -> np.ndarray:
    """H×W×2 float32 NDC positions in the previous frame that each output pixel samples.

    Exposed so an image, its mask and a cadence pair can share one grid.
    Computed with torch, in place into the two planes of the result: its
    multithreaded element-wise ops are several times faster than NumPy's, and
    fresh megabyte temporaries cost page faults on every frame.
    """
    grid, _ = _grid(height, width, depth, translation, rotation, fov, prev_fov, warp_model,
                    aspect, shift, prev_shift)
    # Planar x and y: the view grid_sample reads as N×H×W×2 without a copy.
    return grid.permute(1, 2, 0).numpy()


def disocclusion_mask(prev_depth: np.ndarray, depth: np.ndarray, *, translation: Vec3,
                      rotation: Vec3, fov: float, prev_fov: float | None = None,
                      aspect: float | None = None, shift: Shift = (0.0, 0.0),
                      prev_shift: Shift | None = None, tolerance: float = 0.01) -> np.ndarray:
    """H×W bool: output pixels whose scene point the previous frame did not see.

    With true (metric) depth of both frames, each output pixel's point is
    moved into the previous camera as the pinhole warp does; it was hidden
    there when it lands outside the picture, behind the camera, or farther
    than the previous frame's depth at that spot by more than ``tolerance``
    (relative).  Inverse depth is interpolated, which is exact along planes
    and, at silhouettes, counts pixels beside a nearer edge as hidden.
    """
    import torch
    import torch.nn.functional as F

    height, width = np.shape(depth)
    grid, inverse_old_z = _grid(height, width, depth, translation, rotation, fov, prev_fov,
                                "pinhole", aspect, shift, prev_shift)
    inverse_prev = _depth_tensor(prev_depth, height, width, "prev_depth").reciprocal()
    with torch.no_grad():
        seen = F.grid_sample(inverse_prev[None, None], grid.permute(1, 2, 0)[None],
                             mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    inside = (grid[0].abs() <= 1.0) & (grid[1].abs() <= 1.0)
    visible = inside & (inverse_old_z > 0) & (inverse_old_z * (1.0 + tolerance) >= seen)
    return (~visible).numpy()


def sample_grid(image: np.ndarray, grid: np.ndarray, *, sampling_mode: str = "bicubic",
                padding_mode: str = "border") -> np.ndarray:
    """Sample ``image`` at NDC ``grid`` like ``grid_sample(align_corners=False)``, rounded."""
    import cv2
    import torch
    import torch.nn.functional as F

    _validate_image(image)
    _validate_modes(sampling_mode, padding_mode)
    if np.shape(grid) != image.shape[:2] + (2,):
        raise ValueError(f"grid has shape {np.shape(grid)}, expected {image.shape[:2] + (2,)}")
    planes = image[..., None] if image.ndim == 2 else image
    height, width, channels = planes.shape
    bands = _bands(height)
    positions = _tensor(grid, np.float32).reshape(bands, height // bands, width, 2)
    # A contiguous NCHW float copy samples faster than a channels-last view.
    source = torch.empty((1, channels, height, width))
    source[0].copy_(_tensor(planes).permute(2, 0, 1))
    result = np.empty_like(planes)
    with torch.no_grad():
        out = F.grid_sample(source.expand(bands, -1, -1, -1), positions, mode=sampling_mode,
                            padding_mode=padding_mode, align_corners=False)
        sampled = out.clamp_(0.0, 255.0).round_().to(torch.uint8).numpy()
    # OpenCV interleaves byte planes into pixels several times faster than a strided copy.
    for band, rows in zip(sampled, result.reshape(bands, height // bands, width, channels)):
        cv2.merge(list(band), dst=rows)
    return result[..., 0] if image.ndim == 2 else result


def _bands(height: int) -> int:
    """Horizontal bands to sample a picture in, one per torch thread where they divide it.

    On the CPU ``grid_sample`` spreads a batch over the threads, never one picture: the
    picture goes in as a batch of bands, each band's positions its rows of the grid.
    Every output pixel is computed alone, so the bands give the whole picture's values.
    """
    import torch

    return next(k for k in range(min(torch.get_num_threads(), height), 0, -1)
                if height % k == 0)


def warp_3d(image: np.ndarray, depth: np.ndarray | None, *, translation: Vec3, rotation: Vec3,
            fov: float, prev_fov: float | None = None, near: float = 200.0,
            far: float = 10000.0, padding_mode: str = "border",
            sampling_mode: str = "bicubic", warp_model: str = "deforum",
            aspect: float | None = None, shift: Shift = (0.0, 0.0),
            prev_shift: Shift | None = None) -> np.ndarray:
    """Move ``image`` by one Deforum 3D step.

    ``translation``/``rotation`` are the raw schedule values (degrees) of the new
    frame; ``depth`` is z at each output pixel (None: flat z = 1); ``fov`` and
    ``prev_fov`` are vertical fields of view of the new and previous frame.
    ``near``/``far`` are accepted for compatibility: as in Deforum they do not
    change the image.  ``warp_model="deforum"`` reproduces Deforum's formula,
    ``"pinhole"`` reprojects physically with metric depth; its
    ``shift``/``prev_shift`` are the lens shifts of the new and previous frame
    (fractions of the picture's width and height, +x right, +y up).
    """
    del near, far
    _validate_image(image)
    _validate_modes(sampling_mode, padding_mode)
    height, width = image.shape[:2]
    grid = grid_3d(height, width, depth, translation=translation, rotation=rotation, fov=fov,
                   prev_fov=prev_fov, warp_model=warp_model, aspect=aspect, shift=shift,
                   prev_shift=prev_shift)
    return sample_grid(image, grid, sampling_mode=sampling_mode, padding_mode=padding_mode)


# ------------------------------------------------------------------ on the device

def _validate_tensor(image) -> None:
    import torch

    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 \
            or image.ndim not in (2, 3):
        raise ValueError("image must be a uint8 tensor of shape H×W or H×W×C")


def sample_tensor(image, grid, *, sampling_mode: str = "bicubic", padding_mode: str = "border"):
    """``sample_grid`` for a uint8 H×W(×C) tensor and a 2×H×W NDC grid on its device."""
    import torch
    import torch.nn.functional as F

    _validate_tensor(image)
    _validate_modes(sampling_mode, padding_mode)
    planes = image[..., None] if image.ndim == 2 else image
    source = planes.permute(2, 0, 1)[None].float()
    with torch.no_grad():
        out = F.grid_sample(source, grid.permute(1, 2, 0)[None], mode=sampling_mode,
                            padding_mode=padding_mode, align_corners=False)
    result = out[0].clamp_(0.0, 255.0).round_().to(torch.uint8).permute(1, 2, 0)
    return result[..., 0] if image.ndim == 2 else result


def warp_3d_tensor(image, depth, *, translation: Vec3, rotation: Vec3, fov: float,
                   prev_fov: float | None = None, padding_mode: str = "border",
                   sampling_mode: str = "bicubic", warp_model: str = "deforum",
                   aspect: float | None = None, shift: Shift = (0.0, 0.0),
                   prev_shift: Shift | None = None):
    """``warp_3d`` of a uint8 tensor, grid built and sampled on its device; ``depth`` may be
    a tensor (on any device) or an array."""
    _validate_tensor(image)
    height, width = image.shape[:2]
    grid, _ = _grid(height, width, depth, translation, rotation, fov, prev_fov, warp_model,
                    aspect, shift, prev_shift, device=str(image.device))
    return sample_tensor(image, grid, sampling_mode=sampling_mode, padding_mode=padding_mode)


_BITS = 5  # OpenCV's INTER_BITS: warpPerspective places samples on a 1/32-pixel lattice


def warp_2d_tensor(image, *, angle: float, zoom: float, translation_x: float,
                   translation_y: float, border: str = "replicate",
                   perspective_flip: tuple[float, float, float, float] | None = None,
                   center: tuple[float, float] | None = None):
    """``warp_2d`` of a uint8 tensor on its device, in OpenCV's own arithmetic.

    Each output pixel's source position (the inverse homography, in float64 as
    OpenCV computes it; float32 on MPS, which has none) is rounded to 1/32
    pixel; the four neighbours, clamped (replicate) or wrapped, are weighed in
    integers and rounded half up as OpenCV's 8-bit bilinear remap does, so the
    pixels are OpenCV's (up to a float tie in a position; tested).
    """
    import torch

    _validate_tensor(image)
    height, width = image.shape[:2]
    matrix = matrix_2d(width, height, angle=angle, zoom=zoom, translation_x=translation_x,
                       translation_y=translation_y, perspective_flip=perspective_flip,
                       center=center)
    device = image.device
    exact = torch.float32 if device.type == "mps" else torch.float64
    xs = torch.arange(width, device=device, dtype=exact)[None, :]
    ys = torch.arange(height, device=device, dtype=exact)[:, None]
    # The matrix enters as Python numbers (kernel arguments): no copy, no device sync.
    x, y, w = ((xs * float(row[0]) + ys * float(row[1])).add_(float(row[2]))
               for row in np.linalg.inv(matrix))
    scale = torch.where(w != 0, (1 << _BITS) / w, torch.zeros_like(w))
    lattice = torch.stack((x, y)).mul_(scale).round_().clamp_(-2.0 ** 30, 2.0 ** 30).long()
    fraction = lattice & ((1 << _BITS) - 1)  # 0…31 per axis
    corner = lattice >> _BITS
    near = [torch.stack([torch.remainder(c[i], n) if border == "wrap" else c[i].clamp(0, n - 1)
                         for i, n in enumerate((width, height))]) for c in (corner, corner + 1)]
    planes = (image[..., None] if image.ndim == 2 else image).int()
    weight = [(1 << _BITS) - fraction, fraction]  # [x or y][0 or 1 neighbour]
    total = 0
    for dy in (0, 1):
        for dx in (0, 1):
            w = (weight[dx][0] * weight[dy][1])[..., None]
            total = total + planes[near[dy][1], near[dx][0]] * w
    result = ((total + (1 << (2 * _BITS - 1))) >> (2 * _BITS)).clamp_(0, 255).to(torch.uint8)
    return result[..., 0] if image.ndim == 2 else result
