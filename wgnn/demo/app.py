"""The demos' frame pipeline, kept on the GPU from upload to picture, and its two runners.

Per frame (``Demo.process`` then ``Demo.render``):

1. *upload*: the RGB frame's bytes go as they are into a storage buffer (``queue.write_buffer``),
   and a compute shader (``shaders/demo/unpack_rgb.wgsl``) writes them into an ``rgba8unorm``
   texture: the host converts nothing (an RGBA frame goes straight into the texture);
2. *preprocess*: a compute shader (``shaders/demo/preprocess.wgsl``) resizes it into the model's
   input tensor, letterboxed (face) or stretched (selfie), normalised to the model's value range;
3. *model*: ``InferenceSession.run_on_gpu`` with that tensor as a ``GPUTensor`` input, so the frame
   never visits the host;
4. *postprocess*: face: the raw boxes and scores (57 KB) are read back and decoded with weighted NMS
   (``wgnn.mediapipe``); selfie: nothing, the mask stays in the model's output buffer;
5. *render*: for blur, three compute passes blur the frame at quarter resolution; then one render
   pass draws a full-screen triangle (``shaders/demo/composite.wgsl``: the frame, the background
   blended by the mask, the statistics overlay) and the boxes and keypoints as instanced quads
   (``shaders/demo/marks.wgsl``), into the window's surface or an offscreen texture.

Stage times are wall-clock times with the GPU synchronised after each stage, so they add up to the
frame time. ``run_window`` shows the result in a glfw window (rendercanvas); ``run_headless``
renders offscreen and can write a video or a folder of PNGs.

Frames in flight (``run_headless(..., in_flight=True)``, the face demo on the compute backend): frame
N+1 is uploaded, pre-processed and submitted to the model before frame N's boxes are read back,
decoded and drawn, and nothing waits for the GPU but that read-back (of the buffer frame N's
outputs were copied to). Two slots (frame texture, input tensor, read-back buffer) alternate, so
that drawing frame N still sees its own picture. The GPU then runs the model of one frame while
the host finishes the previous one; stage times are host times, no longer a partition of the
frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import mediapipe as mp
from .. import shaders
from ..errors import ConfigError, InputError
from ..runtime import Device, GPUTensor, default_device, wgpu

KINDS = ("face", "selfie")
MODES = ("blur", "replace")
STAGES = ("source", "upload", "preprocess", "model", "postprocess", "render", "output")
BOX_COLOR = (0.0, 1.0, 0.0)  # pure green: the tests look for it in screenshots
POINT_COLOR = (1.0, 0.2, 0.2)
MAX_QUADS = 160  # boxes take 4 each, keypoints 1 (marks.wgsl)
OVERLAY_SIZE = (440, 44)  # width, height in target pixels
OVERLAY_PERIOD = 0.5  # seconds between redraws of the statistics text
LINE_WIDTH = 3.0
BLUR_RADIUS = 6  # taps each side, at quarter resolution


@dataclass
class _Slot:
    """What one frame in flight holds: its picture (and the RGB bytes it is unpacked from), the
    model's input, and (face) the read-back buffer its outputs are copied to."""

    frame: object
    rgb: object
    unpack: _Kernel
    input: GPUTensor
    pre: _Kernel
    readback: object | None = None
    outputs: list = field(default_factory=list)  # (offset in readback, GPUTensor's shape) per output


@dataclass
class _InFlight:
    index: int
    slot: int
    promise: object  # the read-back buffer's mapping


@dataclass
class FrameResult:
    """What one frame produced: face detections (normalised to the frame), and when asked for, the
    selfie model's raw mask (h, w) and the rendered picture (H, W, 3 uint8)."""

    index: int
    detections: list[mp.Detection] = field(default_factory=list)
    mask: np.ndarray | None = None
    image: np.ndarray | None = None


class Timings:
    """Per-stage wall-clock milliseconds of every frame, and the time each frame ended."""

    def __init__(self):
        self.ms: dict[str, list[float]] = {s: [] for s in STAGES}
        self.frame_ends: list[float] = []
        self._last = time.perf_counter()

    def start(self) -> None:
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage].append((now - self._last) * 1000)
        self._last = now

    def end_frame(self) -> None:
        self.frame_ends.append(time.perf_counter())

    @property
    def frames(self) -> int:
        return len(self.frame_ends)

    def fps(self, last: int | None = None) -> float:
        """Frames per second over the last ``last`` frames (all but the first by default, whose time
        includes the drivers' first-use work)."""
        ends = self.frame_ends if last is None else self.frame_ends[-(last + 1):]
        if len(ends) < 2:
            return 0.0
        return (len(ends) - 1) / (ends[-1] - ends[0])

    def recent_ms(self, stage: str, last: int = 30) -> float:
        values = self.ms[stage][1:][-last:] or self.ms[stage]  # the first frame pays for first use
        return float(np.mean(values)) if values else 0.0

    def summary(self, title: str) -> str:
        lines = [f"{title}: {self.frames} frames, {self.fps():.1f} FPS end to end (after the first frame)"]
        lines.append(f"  {'stage':<12} {'median ms':>10} {'mean ms':>9}")
        steady = slice(1, None) if self.frames > 1 else slice(None)
        total = 0.0
        for stage in STAGES:
            values = self.ms[stage][steady]
            if not values:
                continue
            total += float(np.median(values))
            lines.append(f"  {stage:<12} {np.median(values):>10.2f} {np.mean(values):>9.2f}")
        lines.append(f"  {'sum':<12} {total:>10.2f}")
        return "\n".join(lines)


def _texture(device: Device, width: int, height: int, usage, fmt: str = "rgba8unorm"):
    return device.device.create_texture(size=(width, height, 1), format=fmt, usage=usage,
                                        dimension="2d", mip_level_count=1, sample_count=1)


def _write_rgba(device: Device, texture, image: np.ndarray) -> None:
    """Upload an HxWx3 or HxWx4 uint8 image into an rgba8unorm texture of its size."""
    h, w = image.shape[:2]
    if image.shape[2] == 3:
        rgba = np.empty((h, w, 4), np.uint8)
        rgba[:, :, :3] = image
        rgba[:, :, 3] = 255
        image = rgba
    device.queue.write_texture({"texture": texture}, np.ascontiguousarray(image),
                               {"bytes_per_row": w * 4, "rows_per_image": h}, (w, h, 1))


class _Kernel:
    """A demo shader with its uniform buffer and bind group, made once."""

    def __init__(self, device: Device, pipe, values: dict, resources: list, name: str):
        self.device, self.pipe, self.name = device, pipe, name
        data = shaders.pack_params(pipe.fields, values, name)
        self.uniform = device.buffer(len(data), usage=wgpu.BufferUsage.UNIFORM | wgpu.BufferUsage.COPY_DST,
                                     data=data, label=name)
        entries = [{"binding": 0, "resource": {"buffer": self.uniform, "offset": 0, "size": self.uniform.size}}]
        for i, res in enumerate(resources, start=1):
            if isinstance(res, GPUTensor):
                entries.append({"binding": i, "resource": {"buffer": res.buffer, "offset": res.offset,
                                                           "size": -(-res.nbytes // 4) * 4}})
            elif hasattr(res, "create_view"):
                entries.append({"binding": i, "resource": res.create_view()})
            else:
                entries.append({"binding": i, "resource": {"buffer": res, "offset": 0, "size": res.size}})
        self.bind_group = device.device.create_bind_group(layout=pipe.layout, entries=entries)

    def update(self, values: dict) -> None:
        self.device.queue.write_buffer(self.uniform, 0, shaders.pack_params(self.pipe.fields, values, self.name))

    def dispatch(self, enc, width: int, height: int) -> None:
        cpass = enc.begin_compute_pass()
        cpass.set_pipeline(self.pipe.pipeline)
        cpass.set_bind_group(0, self.bind_group)
        cpass.dispatch_workgroups(-(-width // 8), -(-height // 8), 1)
        cpass.end()


class Demo:
    """One demo (``face`` or ``selfie``) for frames of ``width`` x ``height``, on one device.

    ``mode`` (selfie): ``blur`` or ``replace`` the background, by ``background`` (an HxWx3 uint8
    image, any size; default: a dark blue gradient). ``keep_masks`` makes every ``FrameResult`` carry
    the raw mask, read back from the GPU (for tests; the demo itself never reads it back).

    ``backend``: the model's, ``compute`` or ``texture``. The pre-processing and drawing shaders are
    the same for both; the texture path takes its input as a host array (as a WebGL page uploads
    pixels), so its frames read the pre-processed input back, and the selfie mask comes back to the
    host and goes up again for the composite.
    """

    def __init__(self, kind: str, width: int, height: int, *, device: Device | None = None,
                 precision: str | None = None, mode: str = "blur", background: np.ndarray | None = None,
                 keep_masks: bool = False, overlay: bool = True, backend: str = "compute"):
        if kind not in KINDS:
            raise ConfigError(f"demo kind must be one of {KINDS}, got {kind!r}")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        self.kind, self.width, self.height, self.backend = kind, width, height, backend
        self.mode, self.show_overlay, self.keep_masks = mode, overlay, keep_masks
        self.device = dev = device or default_device()
        usage = wgpu.TextureUsage.TEXTURE_BINDING | wgpu.TextureUsage.COPY_DST
        if kind == "face":
            self.detector = mp.FaceDetector(device=dev, precision=precision, backend=backend)
            self.session = self.detector.session
            size = self.detector.spec.input_size
            self.letterbox = mp.fit((height, width), (size, size))
            value_range = self.detector.spec.value_range
        else:
            self.segmenter = mp.SelfieSegmenter(device=dev, precision=precision, backend=backend)
            self.session = self.segmenter.session
            self.letterbox = mp.fit((height, width), self.segmenter.input_size, keep_aspect=False)
            value_range = (0.0, 1.0)
        self.input_name = self.session.get_inputs()[0].name
        self._value_range = value_range
        self.slots = [self._new_slot()]
        self.mask = None
        if kind == "selfie" and backend == "texture":  # the mask goes up here each frame
            shape = tuple(self.session.get_outputs()[0].shape)
            self.mask = GPUTensor(dev, dev.buffer(4 * int(np.prod(shape)), label="demo mask"), 0, shape)
        # One run now: the model's output buffers exist from here on (the mask is bound below), and
        # the driver's first-use work is not counted in the first frame.
        outputs = self._run_model()
        if kind == "selfie" and self.mask is None:
            self.mask = next(iter(outputs.values()))
        self.small = (-(-width // 4), -(-height // 4))
        self._blur: list[_Kernel] = []
        self._composite: dict[tuple[str, int], tuple[_Kernel, _Kernel]] = {}
        self.overlay = _texture(dev, *OVERLAY_SIZE, usage)
        self.overlay_text = ""
        self._overlay_time = 0.0
        self._font = None
        if background is None:
            ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
            background = (np.array([20, 40, 90]) * (1 - ramp) + np.array([60, 120, 200]) * ramp)
            background = np.broadcast_to(background, (height, width, 3)).astype(np.uint8)
        background = np.asarray(background, np.uint8)
        self.background = _texture(dev, background.shape[1], background.shape[0], usage)
        _write_rgba(dev, self.background, background)

    def _new_slot(self) -> _Slot:
        dev = self.device
        frame = _texture(dev, self.width, self.height, wgpu.TextureUsage.TEXTURE_BINDING | wgpu.TextureUsage.COPY_DST
                         | wgpu.TextureUsage.STORAGE_BINDING | wgpu.TextureUsage.COPY_SRC)
        rgb = dev.buffer(self.width * self.height * 3, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_DST,
                         label="demo frame bytes")
        unpack = _Kernel(dev, dev.pipeline(shaders.render("demo/unpack_rgb")),
                         {"width": self.width, "height": self.height}, [rgb, frame], "unpack_rgb")
        ih, iw = self.letterbox.input_size
        tensor = GPUTensor(dev, dev.buffer(ih * iw * 3 * 4, label="demo input"), 0,
                           tuple(self.session.get_inputs()[0].shape))
        top, left, rh, rw = self.letterbox.region
        lo, hi = self._value_range
        pre = _Kernel(dev, dev.pipeline(shaders.render("demo/preprocess")),
                      {"out_h": ih, "out_w": iw, "top": top, "left": left, "rh": rh, "rw": rw, "lo": lo, "hi": hi},
                      [frame, tensor], "preprocess")
        return _Slot(frame, rgb, unpack, tensor, pre)

    def _slot(self, k: int) -> _Slot:
        while len(self.slots) <= k:
            self.slots.append(self._new_slot())
        return self.slots[k]

    # The synchronous path works in slot 0.
    @property
    def frame(self):
        return self.slots[0].frame

    @property
    def input(self) -> GPUTensor:
        return self.slots[0].input

    @property
    def pre(self) -> _Kernel:
        return self.slots[0].pre

    # -- per frame ------------------------------------------------------------------------------

    def _sync(self) -> None:
        """Wait for the GPU: a 4-byte read back waits for all work submitted before it (wgpu-py
        0.32's ``on_submitted_work_done`` fails with wgpu-native's newer callback signature)."""
        self.device.read(self.input.buffer, 0, 4)

    def _run_model(self) -> dict:
        """The model on the pre-processed input: GPU tensors (compute) or host arrays (texture)."""
        if self.backend != "texture":
            return self.session.run_on_gpu({self.input_name: self.input})
        outputs = dict(zip((o.name for o in self.session.get_outputs()),
                           self.session.run(None, {self.input_name: self.input.numpy()})))
        if self.mask is not None:
            self.device.queue.write_buffer(self.mask.buffer, 0, next(iter(outputs.values())).astype(np.float32))
        return outputs

    def _check(self, frame: np.ndarray, index: int) -> None:
        if frame.ndim != 3 or frame.shape[:2] != (self.height, self.width) or frame.shape[2] not in (3, 4) \
                or frame.dtype != np.uint8:
            raise InputError(f"frame {index}: expected a {self.height}x{self.width}x3 (or x4) uint8 image, got "
                             f"{frame.shape} {frame.dtype}")

    @property
    def can_fly(self) -> bool:
        """Whether frames can be in flight: the face demo on the compute backend."""
        return self.kind == "face" and self.backend == "compute"

    def _upload(self, slot: _Slot, frame: np.ndarray, index: int, timings: Timings, *, sync: bool) -> None:
        """``frame`` into ``slot``'s texture and through the pre-processing shader into its model
        input (laps upload and preprocess; ``sync``: waiting for the GPU)."""
        self._check(frame, index)
        dev = self.device
        rgb = frame.shape[2] == 3
        if rgb:
            data = np.ascontiguousarray(frame).reshape(-1)
            if data.size % 4:  # (write_buffer copies whole words)
                data = np.concatenate([data, np.zeros(4 - data.size % 4, np.uint8)])
            dev.queue.write_buffer(slot.rgb, 0, data)
        else:
            _write_rgba(dev, slot.frame, frame)
        timings.lap("upload")
        enc = dev.device.create_command_encoder()
        if rgb:
            slot.unpack.dispatch(enc, -(-self.width // 4), self.height)  # four pixels an invocation
        slot.pre.dispatch(enc, *self.letterbox.input_size[::-1])
        dev.queue.submit([enc.finish()])
        if sync:
            self._sync()
        timings.lap("preprocess")

    def submit(self, frame: np.ndarray, index: int, timings: Timings) -> _InFlight:
        """Frames in flight: upload, pre-process and run the model on ``frame`` in slot ``index % 2``,
        copy its outputs to the slot's read-back buffer and start mapping it; nothing waits for the
        GPU (laps upload, preprocess and model as host times)."""
        if not self.can_fly:
            raise ConfigError("frames in flight are for the face demo on the compute backend")
        dev = self.device
        k = index % 2
        slot = self._slot(k)
        self._upload(slot, frame, index, timings, sync=False)
        outputs = list(self.session.run_on_gpu({self.input_name: slot.input}).values())
        if slot.readback is None:
            offset = 0
            for t in outputs:
                slot.outputs.append((offset, t.shape))
                offset += -(-t.nbytes // 16) * 16
            slot.readback = dev.buffer(offset, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST,
                                       label="demo read-back")
        enc = dev.device.create_command_encoder()
        for t, (offset, _) in zip(outputs, slot.outputs):
            enc.copy_buffer_to_buffer(t.buffer, t.offset, slot.readback, offset, -(-t.nbytes // 4) * 4)
        dev.queue.submit([enc.finish()])
        promise = slot.readback.map_async(wgpu.MapMode.READ)
        timings.lap("model")
        return _InFlight(index, k, promise)

    def collect(self, job: _InFlight, timings: Timings) -> FrameResult:
        """Wait for a frame in flight's outputs (only for its read-back), decode its faces (laps
        postprocess)."""
        slot = self.slots[job.slot]
        job.promise.sync_wait()
        try:
            data = slot.readback.read_mapped(copy=True)
            raw = [np.frombuffer(data, np.float32, int(np.prod(shape)), offset).reshape(shape)
                   for offset, shape in slot.outputs]
        finally:
            slot.readback.unmap()
        result = FrameResult(job.index)
        result.detections = self.detector.postprocess(*raw, self.letterbox)
        timings.lap("postprocess")
        return result

    def process(self, frame: np.ndarray, index: int, timings: Timings) -> FrameResult:
        """Upload, pre-process, run the model and post-process one frame (laps 4 stages)."""
        self._upload(self.slots[0], frame, index, timings, sync=True)
        outputs = self._run_model()
        self._sync()
        timings.lap("model")
        result = FrameResult(index)
        if self.kind == "face":
            raw = [np.asarray(t) for t in outputs.values()]
            result.detections = self.detector.postprocess(*raw, self.letterbox)
        elif self.keep_masks:
            result.mask = self.mask.numpy().reshape(self.mask.shape[1:3])
        timings.lap("postprocess")
        return result

    def _blur_kernels(self) -> list[_Kernel]:
        if not self._blur:
            dev = self.device
            sw, sh = self.small
            a, b = (dev.buffer(sw * sh * 16, label=f"blur {i}") for i in range(2))
            down = dev.pipeline(shaders.render("demo/blur", down="true"))
            box = dev.pipeline(shaders.render("demo/blur", down="false"))
            common = {"width": sw, "height": sh, "radius": BLUR_RADIUS}
            self._blur = [_Kernel(dev, down, {**common, "step_x": 0}, [self.frame, b, a], "blur down"),
                          _Kernel(dev, box, {**common, "step_x": 1}, [self.frame, a, b], "blur x"),
                          _Kernel(dev, box, {**common, "step_x": 0}, [self.frame, b, a], "blur y")]
            self.blurred = a
        return self._blur

    def prepare(self, fmt: str, slot: int = 0) -> tuple[_Kernel, _Kernel]:
        """The render kernels for target format ``fmt`` and the picture of ``slot``, made on first
        use (runners call it before the first frame, so that pipeline creation is not counted in it)."""
        if (fmt, slot) not in self._composite:
            dev = self.device
            self._slot(slot)
            pipe = dev.render_pipeline(shaders.render("demo/composite"), fmt)
            if self.kind == "selfie":  # the blur buffers, also for replace mode: key b switches
                self._blur_kernels()
                mask, blurred = self.mask, self.blurred
            else:
                mask = blurred = dev.buffer(16, label="unused")
            target = (self.width, self.height)
            marks = dev.render_pipeline(shaders.render("demo/marks"), fmt)
            self._composite[(fmt, slot)] = (
                _Kernel(dev, pipe, self._composite_values(target),
                        [self.slots[slot].frame, mask, blurred, self.background, self.overlay], "composite"),
                _Kernel(dev, marks, self._marks_values(FrameResult(0), target)[0], [], "marks"))
        return self._composite[(fmt, slot)]

    def _fit(self, target: tuple[int, int]) -> tuple[float, float, float]:
        """Scale (target pixels per frame pixel) and offsets that centre the frame in ``target``."""
        tw, th = target
        scale = min(tw / self.width, th / self.height)
        return scale, (tw - self.width * scale) / 2, (th - self.height * scale) / 2

    def _composite_values(self, target: tuple[int, int]) -> dict:
        scale, offset_x, offset_y = self._fit(target)
        return {
            "mask_w": self.mask.shape[2] if self.mask is not None else 1,
            "mask_h": self.mask.shape[1] if self.mask is not None else 1,
            "small_w": self.small[0], "small_h": self.small[1],
            "mode": 0 if self.kind == "face" else MODES.index(self.mode) + 1,
            "overlay": int(self.show_overlay and bool(self.overlay_text)),
            "scale": scale, "offset_x": offset_x, "offset_y": offset_y,
        }

    def _marks_values(self, result: FrameResult, target: tuple[int, int]) -> tuple[dict, int]:
        """The marks shader's uniform: four edge quads per box, then one square per keypoint, in
        target pixels; and the number of quads."""
        scale, ox, oy = self._fit(target)
        to_target = np.array([self.width, self.height] * 2) * scale + np.array([ox, oy] * 2)
        half = LINE_WIDTH / 2
        quads = []
        for det in result.detections:
            x0, y0, x1, y1 = det.box * to_target
            quads += [(x0 - half, y0 - half, x1 + half, y0 + half), (x0 - half, y1 - half, x1 + half, y1 + half),
                      (x0 - half, y0 - half, x0 + half, y1 + half), (x1 - half, y0 - half, x1 + half, y1 + half)]
        rects = len(quads)
        radius = 1.5 * LINE_WIDTH
        for det in result.detections:
            for x, y in det.keypoints * to_target[:2]:
                quads.append((x - radius, y - radius, x + radius, y + radius))
        quads = quads[:MAX_QUADS]
        padded = [tuple(map(float, q)) for q in quads] + [(0.0,) * 4] * (MAX_QUADS - len(quads))
        return {"width": float(target[0]), "height": float(target[1]), "rects": min(rects, MAX_QUADS),
                "quads": len(quads), "box_color": (*BOX_COLOR, 1.0), "point_color": (*POINT_COLOR, 1.0),
                "corners": padded}, len(quads)

    def render(self, view, fmt: str, target: tuple[int, int], result: FrameResult, timings: Timings, *,
               slot: int = 0, sync: bool = True) -> None:
        """Draw the frame's picture (from ``slot``) into ``view`` (a texture view of ``fmt``,
        ``target`` = (w, h)); ``sync``: wait for the GPU to finish it."""
        dev = self.device
        composite, marks = self.prepare(fmt, slot)
        composite.update(self._composite_values(target))
        values, quads = self._marks_values(result, target)
        marks.update(values)
        enc = dev.device.create_command_encoder()
        if self.kind == "selfie" and self.mode == "blur":
            for k in self._blur_kernels():
                k.dispatch(enc, *self.small)
        rpass = enc.begin_render_pass(color_attachments=[{
            "view": view, "load_op": wgpu.LoadOp.clear, "store_op": wgpu.StoreOp.store,
            "clear_value": (0.0, 0.0, 0.0, 1.0)}])
        rpass.set_pipeline(composite.pipe.pipeline)
        rpass.set_bind_group(0, composite.bind_group)
        rpass.draw(3, 1, 0, 0)
        if quads:
            rpass.set_pipeline(marks.pipe.pipeline)
            rpass.set_bind_group(0, marks.bind_group)
            rpass.draw(6, quads, 0, 0)
        rpass.end()
        dev.queue.submit([enc.finish()])
        if sync:
            self._sync()
        timings.lap("render")

    def refresh_overlay(self, timings: Timings) -> None:
        """Redraw the statistics overlay from ``timings``, at most every ``OVERLAY_PERIOD`` seconds."""
        now = time.perf_counter()
        if self.overlay_text and now - self._overlay_time < OVERLAY_PERIOD:
            return
        self._overlay_time = now
        self.set_overlay(self.stats_lines(timings))

    def set_overlay(self, lines: list[str]) -> None:
        """Draw the statistics text into the overlay texture (on the CPU, with Pillow)."""
        from PIL import Image, ImageDraw, ImageFont

        text = "\n".join(lines)
        if text == self.overlay_text:
            return
        if self._font is None:
            self._font = ImageFont.load_default(size=15)
        img = Image.new("RGBA", OVERLAY_SIZE, (0, 0, 0, 150))
        ImageDraw.Draw(img).multiline_text((6, 4), text, fill=(255, 255, 255, 255), font=self._font, spacing=3)
        _write_rgba(self.device, self.overlay, np.asarray(img))
        self.overlay_text = text

    def key(self, name: str) -> bool:
        """Handle a key press; True means quit. q or Escape quits, b switches blur/replace (selfie),
        o toggles the statistics overlay."""
        name = name.lower()
        if name in ("q", "escape"):
            return True
        if name == "b" and self.kind == "selfie":
            self.mode = MODES[1 - MODES.index(self.mode)]
        elif name == "o":
            self.show_overlay = not self.show_overlay
        return False

    def stats_lines(self, timings: Timings) -> list[str]:
        short = {"upload": "up", "preprocess": "pre", "model": "model", "postprocess": "post", "render": "draw"}
        stages = "  ".join(f"{short[s]} {timings.recent_ms(s):.1f}" for s in short)
        adapter = self.device.adapter.info.get("device", "?").split(" (")[0]
        return [f"wgnn {self.kind} ({self.backend}) on {adapter}: {timings.fps(30):.1f} FPS", f"ms  {stages}"]

    def progress(self, index: int, result: FrameResult, timings: Timings) -> str:
        what = (f"{len(result.detections)} face(s)" if self.kind == "face" else f"background {self.mode}")
        return f"frame {index + 1}: {timings.fps(30):.1f} FPS, {what}"


class FrameWriter:
    """Writes rendered frames: a video file (by extension, through imageio's ffmpeg) or a folder of
    numbered PNGs."""

    def __init__(self, out: str | Path, fps: float):
        from .sources import VIDEO_SUFFIXES

        self.out = Path(out)
        self.count = 0
        if self.out.suffix.lower() in VIDEO_SUFFIXES:
            try:
                import imageio.v2 as imageio
            except ImportError as exc:
                raise ImportError("writing video needs imageio and imageio-ffmpeg: pip install 'wgnn[demo]'") from exc
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.video = imageio.get_writer(str(self.out), fps=fps, macro_block_size=1)
        else:
            self.video = None
            self.out.mkdir(parents=True, exist_ok=True)

    def write(self, image: np.ndarray) -> None:
        if self.video is not None:
            self.video.append_data(image)
        else:
            from PIL import Image

            Image.fromarray(image).save(self.out / f"frame_{self.count:05d}.png")
        self.count += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def _draw_frame(demo: Demo, source, timings: Timings, target) -> FrameResult | None:
    """One frame through the stages up to its picture (None when the source has ended).

    ``target()`` gives (texture view, format, (width, height)) to draw into; it is asked only once
    the frame has been processed, as a window's surface texture should be."""
    timings.start()
    frame = source.read()
    if frame is None:
        return None
    timings.lap("source")
    result = demo.process(frame, timings.frames, timings)
    if demo.show_overlay:
        demo.refresh_overlay(timings)
    view, fmt, size = target()
    demo.render(view, fmt, size, result, timings)
    return result


def _end_frame(demo: Demo, result: FrameResult, results: list[FrameResult], timings: Timings, progress,
               every: int) -> None:
    timings.lap("output")
    timings.end_frame()
    results.append(result)
    if progress and timings.frames % every == 0:
        progress(demo.progress(result.index, result, timings))


def run_headless(demo: Demo, source, frames: int, *, out: str | Path | None = None, keep_images: bool = False,
                 progress=print, every: int = 30, in_flight: bool = False) -> tuple[list[FrameResult], Timings]:
    """Run ``frames`` frames (fewer if the source ends) offscreen; write them to ``out`` if given.
    ``in_flight``: two frames at once (``Demo.submit``/``collect``; the face demo, compute backend)."""
    dev = demo.device
    usage = wgpu.TextureUsage.RENDER_ATTACHMENT | wgpu.TextureUsage.COPY_SRC
    target = _texture(dev, demo.width, demo.height, usage)
    view = target.create_view()
    size = (demo.width, demo.height)
    writer = FrameWriter(out, source.fps) if out is not None else None
    if in_flight and not demo.can_fly:
        raise ConfigError("frames in flight are for the face demo on the compute backend")
    for slot in range(2 if in_flight else 1):
        demo.prepare("rgba8unorm", slot)
    timings = Timings()
    results = []

    def keep(result: FrameResult) -> None:
        if writer is not None or keep_images:
            raw = dev.queue.read_texture({"texture": target}, {"bytes_per_row": demo.width * 4,
                                                               "rows_per_image": demo.height},
                                         (demo.width, demo.height, 1))
            image = np.frombuffer(raw, np.uint8).reshape(demo.height, demo.width, 4)[:, :, :3]
            if writer is not None:
                writer.write(image)
            if keep_images:
                result.image = image.copy()

    try:
        if in_flight:
            # Each period: the next frame goes to the GPU, then the previous one is finished.
            pending: _InFlight | None = None
            index = 0
            while True:
                timings.start()
                frame = source.read() if index < frames else None
                timings.lap("source")
                job = demo.submit(frame, index, timings) if frame is not None else None
                if pending is None and job is None:
                    break
                if pending is not None:
                    result = demo.collect(pending, timings)
                    if demo.show_overlay:
                        demo.refresh_overlay(timings)
                    demo.render(view, "rgba8unorm", size, result, timings, slot=pending.slot, sync=False)
                    keep(result)
                    _end_frame(demo, result, results, timings, progress, every)
                pending, index = job, index + 1
        else:
            for _ in range(frames):
                result = _draw_frame(demo, source, timings, lambda: (view, "rgba8unorm", size))
                if result is None:
                    break
                keep(result)
                _end_frame(demo, result, results, timings, progress, every)
    finally:
        if writer is not None:
            writer.close()
    return results, timings


def surface_format(context, adapter) -> str:
    """The window surface's format: the preferred one without sRGB encoding, because frames arrive
    sRGB-encoded already and are drawn as they are."""
    preferred = context.get_preferred_format(adapter)
    return preferred.removesuffix("-srgb")


def run_window(demo: Demo, source, frames: int | None = None, *, title: str | None = None,
               progress=print, every: int = 30) -> tuple[list[FrameResult], Timings]:
    """Show the demo in a glfw window until it is closed (or ``frames`` frames, or the source ends).

    Keys: q or Escape quits, b switches blur/replace (selfie), o toggles the statistics overlay.
    """
    try:
        from rendercanvas.glfw import RenderCanvas, loop
    except ImportError as exc:
        raise ImportError("the window needs glfw and rendercanvas: pip install 'wgnn[demo]'") from exc
    canvas = RenderCanvas(size=(demo.width, demo.height), title=title or f"wgnn demo {demo.kind}",
                          update_mode="continuous", max_fps=1000, vsync=False)
    context = canvas.get_context("wgpu")
    fmt = surface_format(context, demo.device.adapter)
    context.configure(device=demo.device.device, format=fmt)
    demo.prepare(fmt)
    timings = Timings()
    results: list[FrameResult] = []
    failure: list[BaseException] = []

    def on_key(event):
        if demo.key(str(event.get("key", ""))):
            canvas.close()

    def draw():
        if failure or canvas.get_closed():
            return
        def surface():
            texture = context.get_current_texture()
            return texture.create_view(), fmt, tuple(texture.size[:2])

        try:
            result = _draw_frame(demo, source, timings, surface)
            if result is None:
                canvas.close()
                return
            _end_frame(demo, result, results, timings, progress, every)
            if frames is not None and len(results) >= frames:
                canvas.close()
        except BaseException as exc:  # rendercanvas would log and go on: stop and re-raise below
            failure.append(exc)
            canvas.close()

    canvas.add_event_handler(on_key, "key_down")
    canvas.request_draw(draw)
    loop.run()
    if failure:
        raise failure[0]
    return results, timings
