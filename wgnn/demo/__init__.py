"""Real-time camera demos: face detection (BlazeFace) and selfie segmentation with the background
blurred or replaced, on the GPU from the uploaded frame to the window.

``wgnn demo face|selfie`` (or ``python demos/face.py``) runs one in a window, or offscreen with
``--headless``; ``Demo`` with ``run_window``/``run_headless`` is the same from Python. Frames come
from ``sources.open_source``: a camera, a video, an image, or the built-in synthetic camera.
"""

from __future__ import annotations

import os
import sys

from ..errors import ConfigError
from .app import KINDS, MODES, Demo, FrameResult, FrameWriter, Timings, run_headless, run_window
from .sources import CameraSource, ImageSource, Prefetch, SyntheticCamera, VideoSource, open_source

__all__ = ["KINDS", "MODES", "Demo", "FrameResult", "FrameWriter", "Timings", "run_headless", "run_window",
           "CameraSource", "ImageSource", "Prefetch", "SyntheticCamera", "VideoSource", "open_source", "has_display",
           "parse_background", "run"]

HEADLESS_FRAMES = 60


def has_display() -> bool:
    """Whether a window can be opened: always on Windows and macOS; on Linux, an X11 or Wayland display."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def parse_background(spec: str | None, width: int, height: int):
    """``None`` (the default gradient), ``#rrggbb`` (a solid colour), or an image file."""
    import numpy as np

    if spec is None:
        return None
    if spec.startswith("#") and len(spec) == 7:
        try:
            rgb = [int(spec[i:i + 2], 16) for i in (1, 3, 5)]
        except ValueError:
            raise ConfigError(f"background colour {spec!r}: expected #rrggbb") from None
        return np.broadcast_to(np.array(rgb, np.uint8), (height, width, 3)).copy()
    from PIL import Image

    try:
        return np.asarray(Image.open(spec).convert("RGB"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"background {spec!r}: neither #rrggbb nor a readable image ({exc})") from exc


def run(args) -> int:
    """The ``wgnn demo`` command (arguments as parsed by ``wgnn.cli``)."""
    from ..runtime import Device

    width, height = args.size
    headless = args.headless
    if not headless and not has_display():
        headless = True
        print("no display (DISPLAY and WAYLAND_DISPLAY are unset): running headless")
    frames = args.frames if args.frames is not None else (HEADLESS_FRAMES if headless else None)
    source, chosen = open_source(args.source, width, height)
    print(chosen)
    source = Prefetch(source)
    try:
        device = Device(args.adapter) if args.adapter is not None else None
        demo = Demo(args.kind, source.width, source.height, device=device, precision=args.precision,
                    mode=args.mode, background=parse_background(args.background, source.width, source.height),
                    overlay=not args.no_overlay, backend=args.backend)
        print(f"{args.kind}: {demo.session.format} model on {demo.device.name}, {args.backend} backend, "
              f"precision {demo.session.precision}, "
              f"frames {source.width}x{source.height}" + (f", background {demo.mode}" if args.kind == "selfie" else ""))
        if headless:
            in_flight = demo.can_fly and not args.sync
            if in_flight:
                print("two frames in flight: stage times are host times, the GPU overlaps them (--sync: GPU "
                      "times per stage)")
            results, timings = run_headless(demo, source, frames, out=args.out, in_flight=in_flight)
        else:
            if args.out:
                print("--out is written in headless mode only; ignoring it")
            results, timings = run_window(demo, source, frames)
    finally:
        source.close()
    print(timings.summary(f"{args.kind} {'headless' if headless else 'window'} {source.width}x{source.height} "
                          f"on {demo.device.name}, {args.backend} backend"))
    if args.kind == "face" and results:
        last = results[-1]
        for det in last.detections:
            x0, y0, x1, y1 = det.pixels(source.height, source.width)
            print(f"last frame: face at ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}) px, score {det.score:.3f}")
        if not last.detections:
            print("last frame: no face")
    if headless and args.out:
        print(f"wrote {len(results)} frames to {args.out}")
    elif headless:
        print("(--out demo.mp4 or --out folder/ keeps the rendered frames)")
    return 0
