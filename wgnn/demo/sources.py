"""Where the demos' frames come from: a camera (OpenCV), a video file (imageio), a still image, or the
built-in synthetic camera. Every source yields HxWx3 uint8 RGB frames and ``None`` at its end.
"""

from __future__ import annotations

import math
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ConfigError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".gif", ".m4v", ".mpg", ".mpeg"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# The astronaut photo scikit-image ships (NASA, public domain), 512x512: its face is at about
# (179, 81)-(272, 174).
ASTRONAUT_FACE = (225.0, 127.0)


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("the demos need Pillow: pip install 'wgnn[demo]'") from exc
    return Image


class Source:
    """A stream of frames: ``read()`` returns the next HxWx3 uint8 RGB frame, or None at the end."""

    name = "source"
    width = height = 0
    fps = 30.0

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.name} {self.width}x{self.height}"


class SyntheticCamera(Source):
    """A camera that pans and zooms across the astronaut photo, keeping the face in view.

    Frame ``i`` depends only on ``i`` (and ``step``: frame ``i`` shows the path at ``i * step``), so
    runs repeat exactly and a test can recompute any frame with ``frame(i)``. The zoom runs between
    1x and 1.7x of the scale that fills the frame, with periods of 8, 6 and 5 seconds at ``fps``.
    """

    name = "synthetic"

    def __init__(self, width: int = 640, height: int = 480, *, fps: float = 30.0, step: int = 1,
                 frames: int | None = None):
        Image = _pil()
        self.photo = Image.open(resources.files(__package__).joinpath("astronaut.jpg")).convert("RGB")
        self.width, self.height, self.fps, self.step, self.frames = width, height, fps, step, frames
        self.index = 0

    def view(self, i: int) -> tuple[float, float, float]:
        """The photo point at the frame's centre (x, y) and the zoom (frame pixels per photo pixel)."""
        t = i * self.step / self.fps
        pw, ph = self.photo.size
        fill = max(self.width / pw, self.height / ph)
        zoom = fill * (1.35 + 0.35 * math.sin(2 * math.pi * t / 8.0))
        vw, vh = self.width / zoom, self.height / zoom
        fx, fy = ASTRONAUT_FACE
        cx = fx + max(0.0, vw / 2 - 80) * math.sin(2 * math.pi * t / 6.0)
        cy = fy + max(0.0, vh / 2 - 80) * math.sin(2 * math.pi * t / 5.0 + 1.0)
        cx = min(max(cx, vw / 2), pw - vw / 2)
        cy = min(max(cy, vh / 2), ph - vh / 2)
        return cx, cy, zoom

    def frame(self, i: int) -> np.ndarray:
        Image = _pil()
        cx, cy, zoom = self.view(i)
        x0, y0 = cx - self.width / (2 * zoom), cy - self.height / (2 * zoom)
        # Output pixel (X, Y) shows photo point (x0 + X / zoom, y0 + Y / zoom).
        img = self.photo.transform((self.width, self.height), Image.Transform.AFFINE,
                                   (1 / zoom, 0, x0, 0, 1 / zoom, y0), resample=Image.Resampling.BILINEAR)
        return np.asarray(img)

    def read(self) -> np.ndarray | None:
        if self.frames is not None and self.index >= self.frames:
            return None
        frame = self.frame(self.index)
        self.index += 1
        return frame

    def describe(self) -> str:
        return f"synthetic camera over the astronaut photo, {self.width}x{self.height}"


class ImageSource(Source):
    """A still image shown as every frame (``frames`` of them, or without end)."""

    name = "image"

    def __init__(self, path: str | Path, frames: int | None = None):
        self.path = Path(path)
        self.image = np.asarray(_pil().open(self.path).convert("RGB"))
        self.height, self.width = self.image.shape[:2]
        self.frames, self.index = frames, 0

    def read(self) -> np.ndarray | None:
        if self.frames is not None and self.index >= self.frames:
            return None
        self.index += 1
        return self.image

    def describe(self) -> str:
        return f"image {self.path} {self.width}x{self.height}"


class VideoSource(Source):
    """A video file, decoded by imageio (its ffmpeg or PyAV plugin)."""

    name = "video"

    def __init__(self, path: str | Path):
        try:
            import imageio.v2 as imageio
        except ImportError as exc:
            raise ImportError("video files need imageio with ffmpeg: pip install 'wgnn[demo]'") from exc
        self.path = Path(path)
        try:
            self.reader = imageio.get_reader(str(self.path))
        except Exception as exc:
            raise ConfigError(f"cannot open video {self.path}: {exc}") from exc
        meta = self.reader.get_meta_data()
        self.fps = float(meta.get("fps") or 30.0)
        self._iter = iter(self.reader)
        first = self._next()
        if first is None:
            raise ConfigError(f"video {self.path} has no frames")
        self._pending = first
        self.height, self.width = first.shape[:2]

    def _next(self) -> np.ndarray | None:
        try:
            frame = next(self._iter)
        except StopIteration:
            return None
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        return np.ascontiguousarray(frame[:, :, :3])

    def read(self) -> np.ndarray | None:
        frame, self._pending = self._pending, None
        return frame if frame is not None else self._next()

    def close(self) -> None:
        self.reader.close()

    def describe(self) -> str:
        return f"video {self.path} {self.width}x{self.height} at {self.fps:g} FPS"


class CameraSource(Source):
    """A camera through OpenCV's ``VideoCapture``, asked for ``width`` x ``height``."""

    name = "camera"

    def __init__(self, index: int = 0, width: int = 640, height: int = 480):
        import cv2

        self.cv2 = cv2
        self.index = index
        self.capture = cv2.VideoCapture(index)
        if not self.capture.isOpened():
            raise OSError(f"camera {index} cannot be opened")
        self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        ok, frame = self.capture.read()
        if not ok:
            self.capture.release()
            raise OSError(f"camera {index} opened but gives no frames")
        self._pending = frame
        self.height, self.width = frame.shape[:2]
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 30.0)

    def read(self) -> np.ndarray | None:
        frame, self._pending = self._pending, None
        if frame is None:
            ok, frame = self.capture.read()
            if not ok:
                return None
        return self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self.capture.release()

    def describe(self) -> str:
        return f"camera {self.index} {self.width}x{self.height}"


def open_source(spec: str | int | None = "auto", width: int = 640, height: int = 480,
                frames: int | None = None) -> tuple[Source, str]:
    """The source named by ``spec`` and a line saying what was chosen.

    ``auto`` (the default): camera 0 if there is one, else the synthetic camera. ``synthetic``; a
    camera index (``0``); a video file; an image file (a still camera).
    """
    spec = "auto" if spec is None else str(spec)
    if spec == "synthetic":
        return SyntheticCamera(width, height, frames=frames), "source: synthetic camera"
    if spec == "auto":
        reason = _no_camera_reason()
        if reason is None:
            try:
                cam = CameraSource(0, width, height)
                return cam, f"source: {cam.describe()}"
            except OSError as exc:
                reason = str(exc)
        return SyntheticCamera(width, height, frames=frames), f"source: synthetic camera ({reason})"
    if spec.isdigit():
        reason = _no_camera_reason(check_device=False)
        if reason is not None:
            raise OSError(f"camera {spec}: {reason}")
        cam = CameraSource(int(spec), width, height)
        return cam, f"source: {cam.describe()}"
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"source {spec!r}: no such file (use auto, synthetic, a camera index, "
                                f"a video or an image)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        src: Source = ImageSource(path, frames)
    else:
        src = VideoSource(path)
    return src, f"source: {src.describe()}"


def _no_camera_reason(check_device: bool = True) -> str | None:
    """Why no camera can be used (None when one may be there)."""
    if check_device and sys.platform.startswith("linux") and not any(Path("/dev").glob("video*")):
        return "no camera: no /dev/video*"
    try:
        import cv2  # noqa: F401
    except ImportError:
        return "no camera support: OpenCV is not installed (pip install 'wgnn[camera]')"
    return None


class Prefetch(Source):
    """Reads ``source`` on a background thread, up to ``depth`` frames ahead, as a camera driver
    captures while the application works: frame acquisition overlaps the GPU stages, and the
    ``source`` stage measures only the wait for a frame. Frames keep their order."""

    def __init__(self, source: Source, depth: int = 2):
        import queue
        import threading

        self.source = source
        self.name, self.width, self.height, self.fps = source.name, source.width, source.height, source.fps
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"wgnn {source.name} frames", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                self._put(frame)
                if frame is None:
                    return
        except BaseException as exc:  # handed to the reader, raised there
            self._put(exc)

    def _put(self, item) -> None:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self) -> np.ndarray | None:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is None:
            self._queue.put(None)  # later reads see the end too
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.source.close()

    def describe(self) -> str:
        return self.source.describe()
