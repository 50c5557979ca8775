"""Short test videos written with PyAV: known content in known time spans.

``write_video(path, scenes, fps=25, size=96)`` writes one scene after another, each ``(image, seconds)``
(a PIL image or HWC uint8 array, resized to ``size`` x ``size``), so a test knows which picture shows
at every time. ``photo_scenes()`` gives scikit-image photos that classify differently (a cat, a rocket,
coffee...), ``digit_scenes()`` sklearn digits. The codec is MPEG-4 part 2 in an .mp4 (every FFmpeg
build has it); ``.gif``/``.webm``/``.mkv``/``.avi``/``.mov`` pick their container from the suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image

Scene = tuple["Image.Image | np.ndarray", float]  # (picture, seconds on screen)

CODECS = {".mp4": "mpeg4", ".mov": "mpeg4", ".avi": "mpeg4", ".mkv": "mpeg4", ".webm": "libvpx", ".gif": "gif"}


def _rgb(picture: Image.Image | np.ndarray, size: int) -> np.ndarray:
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, dtype=np.uint8))
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def write_video(path: Path, scenes: Sequence[Scene], *, fps: int = 25, size: int = 96) -> list[tuple[float, float]]:
    """Write ``scenes`` one after another; returns each scene's (start, end) time in seconds."""
    path = Path(path)
    codec = CODECS.get(path.suffix.lower(), "mpeg4")
    spans = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        index = 0
        for picture, seconds in scenes:
            rgb = _rgb(picture, size)
            start = index / fps
            for _ in range(max(1, round(seconds * fps))):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
                index += 1
            spans.append((start, index / fps))
        for packet in stream.encode():
            container.mux(packet)
    return spans


def photo_scenes(seconds: float = 1.0, names: Sequence[str] = ("chelsea", "rocket", "coffee", "astronaut")
                 ) -> list[Scene]:
    """scikit-image photos, ``seconds`` each, in ``names`` order."""
    import skimage.data

    return [(getattr(skimage.data, name)(), seconds) for name in names]


def digit_scenes(seconds: float = 1.0, digits: Sequence[int] = (0, 1, 2)) -> list[Scene]:
    """sklearn digits (their 8x8 originals, scaled), ``seconds`` each."""
    from sklearn.datasets import load_digits

    data = load_digits()
    scenes = []
    for digit in digits:
        image = (data.images[list(data.target).index(digit)] * (255 / 16)).astype(np.uint8)
        scenes.append((np.stack([image] * 3, axis=-1), seconds))
    return scenes
