"""The camera demos: GPU pre-processing against numpy, face boxes and selfie masks on frames of the
built-in synthetic camera against LiteRT-based reference pipelines, the written output, and a real
window under Xvfb checked by screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import fetch_or_skip, run_litert
from xwd import read_xwd

from wgnn import cli
from wgnn import mediapipe as mp

pytest.importorskip("PIL", reason="the demos need Pillow (pip install 'wgnn[demo]')")
demo = pytest.importorskip("wgnn.demo")

MAGENTA = (255, 0, 255)
GREEN = np.array([0, 255, 0])


@pytest.fixture(scope="module")
def face_model():
    return fetch_or_skip("face_detection_short_range")


@pytest.fixture(scope="module")
def selfie_model():
    return fetch_or_skip("selfie_segmentation")


def reference_faces(model: Path, frame: np.ndarray) -> list[mp.Detection]:
    """numpy letterbox, LiteRT, and wgnn.mediapipe's decoding and NMS."""
    x, lb = mp.letterbox(frame, (128, 128), mp.FACE_SHORT_RANGE.value_range)
    boxes, scores = run_litert(model.read_bytes(), [x])
    return mp.FaceDetector.postprocess(_decoder(), boxes, scores, lb)


def _decoder():
    """A FaceDetector's decoding state without a session (the reference runs on LiteRT)."""
    det = mp.FaceDetector.__new__(mp.FaceDetector)
    det.spec, det.anchors = mp.FACE_SHORT_RANGE, mp.ssd_anchors(mp.FACE_SHORT_RANGE)
    return det


def box_pixels(image: np.ndarray, box: np.ndarray, tolerance: int = 3) -> float:
    """The share of the box's outline (within ``tolerance`` pixels) that is pure box colour."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = np.round(box).astype(int)
    hits = total = 0
    for x in range(max(x0, 0), min(x1, w - 1), 4):
        for y in (y0, y1):
            window = image[max(y - tolerance, 0):y + tolerance + 1, x]
            hits += bool(np.any(np.all(window == GREEN, axis=-1)))
            total += 1
    for y in range(max(y0, 0), min(y1, h - 1), 4):
        for x in (x0, x1):
            window = image[y, max(x - tolerance, 0):x + tolerance + 1]
            hits += bool(np.any(np.all(window == GREEN, axis=-1)))
            total += 1
    return hits / max(total, 1)


def test_synthetic_camera_is_deterministic_and_moves():
    cam = demo.SyntheticCamera(640, 480, step=20)
    a, b = cam.frame(3), cam.frame(3)
    assert a.shape == (480, 640, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.mean(np.abs(cam.frame(0).astype(int) - cam.frame(4).astype(int))) > 10  # it pans and zooms
    limited = demo.SyntheticCamera(64, 48, frames=2)
    assert limited.read() is not None and limited.read() is not None and limited.read() is None


def test_prefetch_keeps_order_end_and_errors():
    cam = demo.SyntheticCamera(32, 24, step=7, frames=5)
    pre = demo.Prefetch(demo.SyntheticCamera(32, 24, step=7, frames=5))
    got = [pre.read() for _ in range(5)]
    assert all(np.array_equal(g, cam.frame(i)) for i, g in enumerate(got))
    assert pre.read() is None and pre.read() is None
    pre.close()

    class Broken(demo.SyntheticCamera):
        def read(self):
            raise OSError("camera unplugged")

    failing = demo.Prefetch(Broken(32, 24))
    with pytest.raises(OSError, match="unplugged"):
        failing.read()
    failing.close()


def test_camera_source_through_opencv(monkeypatch):
    """CameraSource with a stand-in for OpenCV (no camera here): frames come out RGB, at the size
    the camera gives, and a camera that cannot open is a clear error."""
    import types

    bgr = np.zeros((24, 32, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order

    class Capture:
        def __init__(self, index):
            self.index, self.props = index, {}

        def isOpened(self):
            return self.index == 0

        def set(self, prop, value):
            self.props[prop] = value

        def get(self, prop):
            return 25.0

        def read(self):
            return True, bgr.copy()

        def release(self):
            pass

    fake = types.SimpleNamespace(VideoCapture=Capture, CAP_PROP_FRAME_WIDTH=3, CAP_PROP_FRAME_HEIGHT=4,
                                 CAP_PROP_FPS=5, COLOR_BGR2RGB=4, cvtColor=lambda f, code: f[:, :, ::-1])
    monkeypatch.setitem(sys.modules, "cv2", fake)
    cam, chosen = demo.open_source("0", 640, 480)
    assert chosen == "source: camera 0 32x24" and cam.fps == 25.0
    assert cam.capture.props == {3: 640, 4: 480}
    frame = cam.read()
    assert frame.shape == (24, 32, 3) and frame[0, 0, 2] == 200 and frame[0, 0, 0] == 0
    with pytest.raises(OSError, match="camera 1 cannot be opened"):
        demo.open_source("1")


def test_rgb_frames_unpack_on_the_gpu_exactly(device, face_model, rng):
    """An RGB frame goes up as its bytes and a shader unpacks it into the frame texture: every pixel
    as it was, alpha 255, also where the frame's bytes are no whole number of words (13 x 7 x 3);
    an RGBA frame goes straight into the texture."""
    for width, height in ((13, 7), (64, 48)):
        d = demo.Demo("face", width, height, device=device)
        for channels in (3, 4):
            frame = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
            d._upload(d.slots[0], frame, 0, demo.Timings(), sync=True)
            raw = device.queue.read_texture({"texture": d.slots[0].frame}, {"bytes_per_row": width * 4,
                                             "rows_per_image": height}, (width, height, 1))
            got = np.frombuffer(raw, np.uint8).reshape(height, width, 4)
            np.testing.assert_array_equal(got[..., :3], frame[..., :3])
            np.testing.assert_array_equal(got[..., 3], frame[..., 3] if channels == 4 else 255)


def test_gpu_preprocessing_equals_numpy_letterbox(device, face_model, selfie_model):
    frame = demo.SyntheticCamera(640, 480).frame(7)
    timings = demo.Timings()
    for kind in ("face", "selfie"):
        d = demo.Demo(kind, 640, 480, device=device)
        d.process(frame, 0, timings)
        got = d.input.numpy()
        if kind == "face":
            want, lb = mp.letterbox(frame, (128, 128), (-1.0, 1.0))
            assert lb == d.letterbox
        else:
            want = d.segmenter.preprocess(frame)
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-5, kind


@pytest.mark.parametrize("backend,in_flight", [("compute", False), ("compute", True), ("texture", False)])
def test_face_demo_boxes_match_the_litert_pipeline(device, face_model, tmp_path, backend, in_flight):
    cam = demo.SyntheticCamera(640, 480, step=23, frames=6)
    d = demo.Demo("face", 640, 480, device=device, backend=backend)
    assert d.session.backend == backend
    results, timings = demo.run_headless(d, cam, 6, out=tmp_path / "frames", keep_images=True, progress=None,
                                         in_flight=in_flight)
    assert len(results) == 6 and timings.frames == 6
    # In flight, each frame is drawn from its own slot: frames alternate between two.
    assert [r.index for r in results] == list(range(6))
    for r in results:
        frame = cam.frame(r.index)
        want = reference_faces(face_model, frame)
        assert len(want) == 1, f"frame {r.index}: the reference should see the one face"
        assert len(r.detections) == 1, f"frame {r.index}: {len(r.detections)} faces"
        assert mp.iou(r.detections[0].box, want[0].box) > 0.9, f"frame {r.index}"
        # The box is drawn where it was found, in the written picture too.
        assert box_pixels(r.image, r.detections[0].pixels(480, 640)) > 0.9, f"frame {r.index}"
        # ... over its own frame's picture, not the next one's (the camera moves between frames).
        own, nxt = (np.abs(r.image.astype(int) - f.astype(int)).mean() for f in (frame, cam.frame(r.index + 1)))
        assert own < 0.5 * nxt, f"frame {r.index}"
    written = sorted((tmp_path / "frames").glob("*.png"))
    assert len(written) == 6
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(written[-1]).convert("RGB")), results[-1].image)
    # Every stage was timed on every frame.
    assert all(len(timings.ms[s]) >= 6 for s in demo.app.STAGES)


@pytest.mark.parametrize("backend", ["compute", "texture"])
def test_selfie_demo_mask_matches_the_litert_pipeline(device, selfie_model, backend):
    cam = demo.SyntheticCamera(640, 480, step=29, frames=4)
    d = demo.Demo("selfie", 640, 480, device=device, mode="replace", keep_masks=True, overlay=False,
                  background=demo.parse_background("#ff00ff", 640, 480), backend=backend)
    assert d.session.backend == backend
    results, _ = demo.run_headless(d, cam, 4, keep_images=True, progress=None)
    for r in results:
        frame = cam.frame(r.index)
        (raw,) = run_litert(selfie_model.read_bytes(), [d.segmenter.preprocess(frame)])
        want = mp.SelfieSegmenter.postprocess(raw, (480, 640)) > 0.5
        got = mp.SelfieSegmenter.postprocess(r.mask[None, :, :, None], (480, 640)) > 0.5
        assert np.mean(got == want) > 0.98, f"frame {r.index}"
        # The picture: pixels closer to the frame than to the magenta background are the person's.
        image, f = r.image.astype(int), frame.astype(int)
        near_frame = np.abs(image - f).sum(-1) < np.abs(image - np.array(MAGENTA)).sum(-1)
        assert np.mean(near_frame == want) > 0.98, f"frame {r.index}"
        assert 0.1 < want.mean() < 0.9  # a person and a background are both in view


def test_blur_mode_blurs_only_the_background(device, selfie_model):
    cam = demo.SyntheticCamera(640, 480, frames=1)
    d = demo.Demo("selfie", 640, 480, device=device, keep_masks=True, overlay=False)
    (r,), _ = demo.run_headless(d, cam, 1, keep_images=True, progress=None)
    frame, image = cam.frame(0).astype(float), r.image.astype(float)
    mask = mp.SelfieSegmenter.postprocess(r.mask[None, :, :, None], (480, 640))
    person, back = mask > 0.99, mask < 0.01
    assert person.mean() > 0.1 and back.mean() > 0.1
    assert np.abs(image - frame)[person].max() <= 3  # the person is left as they are

    def roughness(a):  # mean horizontal step between neighbours, over the background
        return np.abs(np.diff(a, axis=1)).sum(-1)[back[:, 1:]].mean()

    assert roughness(image) < 0.5 * roughness(frame)
    # Key b switches to replacing it (by default with a blue gradient).
    assert not d.key("b") and d.mode == "replace"
    (r2,), _ = demo.run_headless(d, demo.SyntheticCamera(640, 480, frames=1), 1, keep_images=True, progress=None)
    background = r2.image[back].astype(int)
    assert np.mean(background[:, 2] > background[:, 0] + 50) > 0.95


def test_video_round_trip_and_cli_headless(device, face_model, tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg", reason="video files need imageio-ffmpeg (pip install 'wgnn[demo]')")
    out = tmp_path / "face.mp4"
    rc = cli.main(["demo", "face", "--headless", "--frames", "3", "--size", "320x240", "--source", "synthetic",
                   "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "3 frames" in text and "model" in text and "last frame: face at" in text
    video = demo.VideoSource(out)
    frames = []
    while (f := video.read()) is not None:
        frames.append(f)
    video.close()
    assert len(frames) == 3 and frames[0].shape == (240, 320, 3)
    # The video plays back as a source of its own, here through the texture path.
    rc = cli.main(["demo", "face", "--headless", "--source", str(out), "--backend", "texture"])
    text = capsys.readouterr().out
    assert rc == 0 and "3 frames" in text and "texture backend: 3 frames" in text


def test_bad_input_is_a_clear_error(device, face_model, tmp_path, capsys):
    with pytest.raises(ValueError, match="kind"):
        demo.Demo("hands", 64, 64, device=device)
    d = demo.Demo("face", 64, 48, device=device)
    for bad in (np.zeros((48, 64, 3), np.float32), np.zeros((64, 48, 3), np.uint8), np.zeros((48, 64), np.uint8)):
        with pytest.raises(ValueError, match="frame 0: expected a 48x64x3"):
            d.process(bad, 0, demo.Timings())
    assert cli.main(["demo", "face", "--headless", "--source", str(tmp_path / "missing.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not d.key("b") and d.mode == "blur"  # face has no background mode
    assert not d.key("o") and not d.show_overlay and not d.key("O") and d.show_overlay
    assert d.key("q") and d.key("Escape")
    with pytest.raises(ValueError, match="#rrggbb"):
        demo.parse_background("#12345z", 4, 4)


def _xvfb_display():
    """Start Xvfb on a free display; returns (process, ':N') or skips."""
    if not shutil.which("Xvfb") or not shutil.which("xwd"):
        pytest.skip("the window test needs Xvfb and xwd (Debian: xvfb x11-apps; scripts/setup.sh --test)")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read, 16)
        if not chunk:
            proc.kill()
            pytest.fail("Xvfb did not start")
        number += chunk
    os.close(read)
    return proc, ":" + number.decode().strip()


def test_window_under_xvfb_shows_the_face_box(device, face_model, tmp_path):
    pytest.importorskip("glfw", reason="the window needs glfw (pip install 'wgnn[demo]')")
    pytest.importorskip("rendercanvas", reason="the window needs rendercanvas (pip install 'wgnn[demo]')")
    photo = demo.SyntheticCamera(640, 480).frame(11)
    still = tmp_path / "still.png"
    from PIL import Image

    Image.fromarray(photo).save(still)
    xvfb, display = _xvfb_display()
    try:
        env = {**os.environ, "DISPLAY": display, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp")}
        env.pop("WAYLAND_DISPLAY", None)
        log = tmp_path / "demo.log"
        with open(log, "w") as sink:
            # (frames enough that the window is still up when the screenshot is taken after frame 30:
            # at 45, 15 frames at about 65 FPS gave xwd a quarter of a second, and a loaded machine missed it)
            app = subprocess.Popen([sys.executable, "-m", "wgnn", "demo", "face", "--source", str(still),
                                    "--frames", "240"], env=env, stdout=sink, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 240
            while "frame 30:" not in log.read_text() and app.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "frame 30:" in log.read_text(), log.read_text()
            shot = subprocess.run(["xwd", "-display", display, "-name", "wgnn demo face", "-silent"],
                                  capture_output=True, timeout=60)
            assert shot.returncode == 0, shot.stderr.decode()
            rc = app.wait(timeout=240)
        text = log.read_text()
        assert rc == 0, text
        assert "240 frames" in text and "window" in text  # closed by itself after the summary
    finally:
        xvfb.kill()
        xvfb.wait()
    image = read_xwd(shot.stdout)
    assert image.shape == (480, 640, 3)
    (want,) = reference_faces(face_model, photo)
    assert box_pixels(image, want.pixels(480, 640)) > 0.9
    # and nowhere else: box colour far from the reference box is absent
    green = np.all(image == GREEN, axis=-1)
    x0, y0, x1, y1 = want.pixels(480, 640)
    ys, xs = np.nonzero(green)
    far = (xs < x0 - 8) | (xs > x1 + 8) | (ys < y0 - 8) | (ys > y1 + 8)
    assert far.sum() == 0
