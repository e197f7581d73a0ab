"""A generated first frame with enough structure to see motion without a model."""

from __future__ import annotations

import numpy as np


def make_test_card(width: int, height: int) -> np.ndarray:
    """A colourful grid card: gradients, grid lines, rings and corner marks.

    Every region is distinct, so translation, zoom and rotation are easy to
    see, and colour coherence has real histograms to work on.
    """
    import cv2

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    image = np.stack([40 + 150 * u, 60 + 120 * v, 200 - 140 * u * v], axis=-1)
    step = max(8, min(width, height) // 8)
    checker = ((x // step + y // step) % 2 == 0)[..., None]
    image = np.where(checker, image, image * 0.75)
    image = image.astype(np.uint8)
    thin = max(1, step // 16)
    for gx in range(0, width, step):
        cv2.line(image, (gx, 0), (gx, height - 1), (235, 235, 235), thin)
    for gy in range(0, height, step):
        cv2.line(image, (0, gy), (width - 1, gy), (235, 235, 235), thin)
    cx, cy = width // 2, height // 2
    radius = min(width, height) // 2
    colours = [(230, 60, 50), (250, 200, 40), (60, 190, 90), (40, 120, 230), (180, 60, 200)]
    for i, colour in enumerate(colours):
        cv2.circle(image, (cx, cy), max(2, radius * (5 - i) // 6), colour, max(2, step // 6),
                   lineType=cv2.LINE_AA)
    cv2.line(image, (cx - radius // 4, cy), (cx + radius // 4, cy), (20, 20, 20), thin + 1)
    cv2.line(image, (cx, cy - radius // 4), (cx, cy + radius // 4), (20, 20, 20), thin + 1)
    mark = max(4, step // 2)
    corners = {(0, 0): (255, 0, 0), (width - mark, 0): (0, 255, 0),
               (0, height - mark): (0, 0, 255), (width - mark, height - mark): (255, 255, 255)}
    for (px, py), colour in corners.items():
        image[py:py + mark, px:px + mark] = colour
    # An arrow pointing up and right shows orientation and mirroring at a glance.
    cv2.arrowedLine(image, (cx - radius // 2, cy + radius // 2), (cx + radius // 2,
                    cy - radius // 2), (250, 250, 250), max(2, step // 8), tipLength=0.2)
    return image
