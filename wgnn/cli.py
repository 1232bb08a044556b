"""The ``wgnn`` command: info | run | bench | profile | tune | conformance | batch | fuzz | demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np


def _load(model: str, args, precision: str | None = None, backend: str = "compute", batch: int | None = None):
    """A session for a zoo name, a pretrained model's name, or an ONNX/TFLite path (``batch``: its
    inputs' first dimension set to that); returns (session, description)."""
    import wgnn
    from wgnn import zoo

    adapter = getattr(args, "adapter", None)
    device = wgnn.Device(adapter) if adapter is not None else None
    try:
        source, desc = zoo.resolve(model, logits=args.logits)
    except zoo.UnknownModelError as exc:
        raise SystemExit(f"wgnn: {exc}") from None
    kernels = _kernels(getattr(args, "kernels", None))
    session = wgnn.InferenceSession(source, device=device, precision=precision, backend=backend, kernels=kernels)
    if batch is not None and batch != 1:
        shapes = {n: (batch,) + tuple(o.shape[1:]) for n, o in session.graph.inputs.items()}
        session = wgnn.InferenceSession(source, device=device, precision=precision, backend=backend,
                                        kernels=kernels, input_shapes=shapes)
        desc += f" at batch {batch}"
    return session, desc


def _kernels(spec: str | None) -> dict | None:
    """``--kernels conv2d=generic,conv_7=direct:2`` -> {op or node: variant or Choice(variant, tile)}."""
    if not spec:
        return None
    from wgnn.backends.compute.policy import Choice

    out = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SystemExit(f"wgnn: --kernels wants OP_OR_NODE=VARIANT[:TILE[:WORKGROUP]], got {item!r}")
        variant, *sizes = value.strip().split(":")
        try:
            numbers = [int(v) for v in sizes]
        except ValueError:
            raise SystemExit(f"wgnn: --kernels {item!r}: tile and workgroup sizes are integers") from None
        out[key.strip()] = Choice(variant, *numbers) if numbers else variant
    return out


def _inputs(sess, path: str | None, seed: int) -> dict[str, np.ndarray]:
    if path:
        data = np.load(path)
        if isinstance(data, np.lib.npyio.NpzFile):
            return {k: data[k] for k in data.files}
        return {sess.get_inputs()[0].name: data}
    if sess.graph is None and sess.stages is None:  # (a model in stages samples its declared inputs)
        why = [f"its symbolic input dimensions ({sorted(sess.symbolic_dims)}) do not fit size 1"] \
            if sess.symbolic_dims and not sess.value_inputs else []
        why += [f"it needs the values of {sorted(sess.value_inputs)} when compiling (an If's condition, a "
                "Reshape's shape)"] if sess.value_inputs else []
        raise SystemExit(f"wgnn: {' and '.join(why)}, so it compiles for its first run's inputs: give them with "
                         "--input x.npy (the first input) or --input inputs.npz (by name)")
    rng = np.random.default_rng(seed)

    def sample(name, shape):
        # a symbolic dimension at the size the session was compiled for (1 unless --batch)
        operand = sess.graph.inputs.get(name) if sess.graph is not None else None
        if operand is not None:
            shape, dtype = operand.shape, operand.dtype
        else:  # as declared; a symbolic dimension at 1
            shape = [d if isinstance(d, int) else 1 for d in shape]
            dtype = {i.name: i.type for i in sess.get_inputs()}[name].removeprefix("tensor(").rstrip(")")
            dtype = {"float": "float32", "double": "float64"}.get(dtype, dtype)
        from wgnn.zoo import sample_input

        return sample_input(rng, shape, dtype)

    return {i.name: sample(i.name, i.shape) for i in sess.get_inputs()}


def _time_runs(sess, feeds, warmup: int, runs: int) -> list[float]:
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000)
    return times


def cmd_info(args) -> int:
    import wgnn
    from wgnn.runtime import OPTIONAL_FEATURES

    if args.ops:
        from wgnn.importers import onnx, tflite

        print("ONNX: " + " ".join(onnx.SUPPORTED_OPS))
        print("TFLite: " + " ".join(tflite.SUPPORTED_OPS))
        return 0
    adapters = wgnn.list_adapters()
    print(f"wgnn {wgnn.__version__}; {len(adapters)} adapter(s):")
    for index, adapter in enumerate(adapters):
        info = adapter.info
        print(f"[{index}] {info.get('device')} | {info.get('adapter_type')} | backend {info.get('backend_type')} "
              f"| {info.get('description')}")
        feats = sorted(adapter.features)
        wanted = [f for f in OPTIONAL_FEATURES if f in feats]
        print(f"    wgnn features: {', '.join(wanted) or 'none'}")
        if args.verbose:
            print(f"    all features: {', '.join(feats)}")
            for key, value in sorted(adapter.limits.items()):
                print(f"    {key}: {value}")
        else:
            lim = adapter.limits
            print(f"    max-storage-buffer-binding-size {lim.get('max-storage-buffer-binding-size')}, "
                  f"max-buffer-size {lim.get('max-buffer-size')}, max-compute-workgroups-per-dimension "
                  f"{lim.get('max-compute-workgroups-per-dimension')}")
    device = wgnn.default_device()
    print(f"default choice: {device.name}  (set WGNN_ADAPTER=<index|name> to change)")
    from wgnn.backends.compute.policy import AdapterProfile, ChoiceCache

    profile = AdapterProfile.from_device(device)
    cache = ChoiceCache.for_adapter(profile.key)
    measured = sum(len(sigs) for sigs in cache.entries.values())
    print(f"kernel policy: the defaults for a {profile.kind} adapter; {measured} measured choices in {cache.path}"
          f"{'' if cache.path.exists() else ' (none yet: wgnn tune MODEL measures)'}")
    return 0


def _rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if not a.size:
        return 0.0
    denom = float(np.linalg.norm(b.astype(np.float64)))
    return float(np.linalg.norm(a.astype(np.float64) - b)) / denom if denom else float(np.abs(a).max())


def cmd_run(args) -> int:
    sess, desc = _load(args.model, args, args.precision, args.backend or "compute")
    feeds = _inputs(sess, args.input, args.seed)
    sess.prepare(feeds)  # the plan for these shapes, where the model's dimensions are symbolic
    if sess.stages is not None:  # what follows its data-dependent node compiles on a run
        sess.run(None, feeds)
    print(f"model {desc} ({sess.precision}, {sess.backend} backend): {sess.dispatch_count} dispatches, "
          f"{sess.pipeline_count} pipelines, loaded in {sess.load_seconds:.2f} s on {sess.adapter_name}")
    print(f"passes: {dict(sess.pass_log) or 'none'}; {sess.memory_report()}")
    times = _time_runs(sess, feeds, warmup=1, runs=args.runs)
    outputs = sess.compute(feeds)
    for name, value in outputs.items():
        if not value.size:
            print(f"output {name}: shape {value.shape}, empty")
            continue
        top = int(np.argmax(value.reshape(-1)))
        print(f"output {name}: shape {value.shape}, min {value.min():.4g}, max {value.max():.4g}, "
              f"mean {value.mean():.4g}, argmax {top}")
    print(f"latency: median {np.median(times):.2f} ms, min {min(times):.2f} ms over {len(times)} runs")
    status = 0
    if not args.no_check:
        start = time.perf_counter()
        ref = sess.run_reference(feeds)
        tolerance = args.tolerance if args.tolerance is not None else (1e-2 if sess.precision == "fp16" else 1e-4)
        for name, value in outputs.items():
            err = _rel_l2(value, ref[name])
            ok = err <= tolerance
            status |= 0 if ok else 1
            print(f"check {name} against the numpy reference: relative L2 error {err:.2e} "
                  f"({'ok' if ok else 'FAILED'}, tolerance {tolerance:g}; reference took "
                  f"{time.perf_counter() - start:.1f} s)")
    if args.out:
        np.savez(args.out, **outputs)
        print(f"outputs written to {args.out}")
    return status


def cmd_bench(args) -> int:
    if args.model is None and args.input:
        raise SystemExit("wgnn: --input applies to one model (wgnn bench MODEL --input x.npy), not the suite")
    if args.model is None:
        from wgnn.bench import main_suite

        return main_suite(args)
    if args.batch:
        raise SystemExit("wgnn: --batch applies to the suite (wgnn bench --batch 1,32), not to one model")
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()] if args.precision else [None]
    backends = [b.strip() for b in args.backend.split(",") if b.strip()] if args.backend else ["compute"]
    results = []
    for backend, precision in [(b, p) for b in backends for p in precisions]:
        sess, desc = _load(args.model, args, precision, backend)
        feeds = _inputs(sess, args.input, args.seed)
        sess.prepare(feeds)  # the plan for these shapes, so its dispatches and load time are reported
        times = _time_runs(sess, feeds, warmup=args.warmup, runs=args.runs)
        result = {
            "model": desc, "backend": backend, "precision": sess.precision, "adapter": sess.adapter_name,
            "runs": args.runs,
            "warmup": args.warmup, "median_ms": float(np.median(times)), "min_ms": float(min(times)),
            "max_ms": float(max(times)), "load_s": sess.load_seconds, "dispatches": sess.dispatch_count,
            "pipelines": sess.pipeline_count,
        }
        results.append(result)
        print(f"{desc} {backend} {sess.precision} on {sess.adapter_name}: median {result['median_ms']:.2f} ms, "
              f"min {result['min_ms']:.2f} ms, max {result['max_ms']:.2f} ms over {args.runs} runs "
              f"({args.warmup} warm-up); load {sess.load_seconds:.2f} s, {sess.dispatch_count} dispatches, "
              f"{sess.pipeline_count} pipelines")
    if len(results) > 1:
        base = results[0]
        for other in results[1:]:
            print(f"{other['backend']} {other['precision']} / {base['backend']} {base['precision']} median latency: "
                  f"{other['median_ms'] / base['median_ms']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results if len(results) > 1 else results[0], indent=2) + "\n")
    return 0


def cmd_tune(args) -> int:
    from wgnn.tuner import tune

    if args.batch < 1:
        raise SystemExit("wgnn: --batch must be at least 1")
    sess, desc = _load(args.model, args, args.precision, batch=args.batch)
    if args.input:  # the shapes to tune at (choices are kept per shape): a model's symbolic dimensions take them
        sess.prepare(_inputs(sess, args.input, args.seed))
    graph = sess.source_graph.copy()
    from wgnn.passes import optimize, rules_for

    optimize(graph, rules_for("compute"))
    report = tune(graph, sess.device, precision=sess.precision, seconds=args.seconds, runs=args.runs,
                  remeasure=args.again)
    print(f"{desc} ({sess.precision}): {report.summary()}")
    for key, times in report.measured.items():
        best = report.chosen[key]
        ranked = sorted(times.items(), key=lambda kv: kv[1])
        others = ", ".join(f"{label} {ms:.3f}" for label, ms in ranked[1:4])
        print(f"  {key.split('|')[0]} {key.split('|')[1][:60]}: {best} {times[best]:.3f} ms (then {others})")
    return 0


def cmd_profile(args) -> int:
    from wgnn.profiler import profile

    if args.batch < 1:
        raise SystemExit("wgnn: --batch must be at least 1")
    sess, desc = _load(args.model, args, args.precision, batch=args.batch)
    result = profile(sess, _inputs(sess, args.input, args.seed), runs=args.runs)
    print(f"{desc} ({sess.precision}) on {result.adapter}: {len(result.rows)} dispatches, median of "
          f"{result.runs} runs; {result.method}")
    print(result.table(top=args.top))
    return 0


def cmd_conformance(args) -> int:
    from wgnn.onnx_backend import conformance, conformance_json, conformance_markdown, format_conformance

    ops = set(args.ops.split(",")) if args.ops else None
    results = conformance(ops, progress=(lambda name: print(name, file=sys.stderr, flush=True)) if args.verbose
                          else None)
    if args.json:
        print(json.dumps(conformance_json(results), indent=2))
    elif args.markdown:
        print(conformance_markdown(results))
    else:
        print(format_conformance(results))
    return 0


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 640x480, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"frame size {text} is too small (at least 16x16)")
    return w, h


def cmd_fuzz(args) -> int:
    if args.graphs:
        from wgnn.fuzz_graphs import main as graphs_main

        return graphs_main(args)
    from wgnn.fuzz import main as fuzz_main

    return fuzz_main(args)


def cmd_batch(args) -> int:
    from wgnn.batch import main as batch_main

    return batch_main(args)


def cmd_demo(args) -> int:
    from wgnn import demo

    if args.frames is not None and args.frames < 1:
        raise SystemExit("wgnn: --frames must be at least 1")
    try:
        return demo.run(args)
    except (OSError, ValueError, ImportError) as exc:
        print(f"wgnn: error: {exc}", file=sys.stderr)
        return 2


class _Parser(argparse.ArgumentParser):
    """Mistakes on the command line are one line, not the usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def _one_of(allowed: tuple[str, ...], many: bool):
    """An argparse type: one of ``allowed`` (``many``: a comma-separated list of them)."""
    def parse(text: str) -> str:
        bad = [v for v in (text.split(",") if many else [text]) if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"{bad[0]!r} is not one of {', '.join(allowed)}")
        return text
    return parse


def main(argv: list[str] | None = None) -> int:
    from wgnn import __version__

    parser = _Parser(prog="wgnn", description="Neural-network inference on WebGPU.")
    parser.add_argument("--version", action="version", version=f"wgnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="list adapters, backends, features and limits")
    p.add_argument("--ops", action="store_true", help="list the supported ONNX and TFLite operators instead")
    p.add_argument("-v", "--verbose", action="store_true", help="all features and limits")
    p.set_defaults(func=cmd_info)

    for name, func, helptext in (("run", cmd_run, "run a model once and check it"),
                                 ("bench", cmd_bench, "time a model (warm-up, then median/min over N runs)"),
                                 ("profile", cmd_profile, "GPU time per dispatch from timestamp queries"),
                                 ("tune", cmd_tune, "measure the kernel variants of a model's convolutions and "
                                                    "matrix products on this adapter, and cache the fastest")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("model", nargs="?", default=None if name == "bench" else "mobilenet_v2",
                       help="an ONNX or TFLite file, a zoo model or a pretrained model's name (default: " + (
                           "the suite over the zoo models)" if name == "bench" else "mobilenet_v2)"))
        p.add_argument("--adapter", help="adapter index or name substring (default: WGNN_ADAPTER or wgpu's choice)")
        p.add_argument("--logits", action="store_true", help="zoo models: leave out the final softmax")
        p.add_argument("--seed", type=int, default=0, help="seed of the random input")
        p.add_argument("--runs", type=int, default={"bench": 10, "profile": 5}.get(name, 3))
        p.add_argument("--precision", type=_one_of(("fp32", "fp16", "auto"), name == "bench"),
                       help="fp32, fp16 or auto" + (" (a comma-separated list: each is measured, "
                       "in this order)" if name == "bench" else "") + "; default: the model's own (fp32 for float32 "
                       "models)")
        p.add_argument("--kernels", help="compute backend: fixed kernel variants instead of the kernel policy's, "
                       "OP_OR_NODE=VARIANT[:TILE[:WORKGROUP]],... (e.g. conv2d=generic,matmul=tiled:2)")
        if name not in ("profile", "tune"):
            p.add_argument("--backend", type=_one_of(("compute", "texture"), name == "bench"),
                           help="compute (default) or texture" + (" (a comma-separated list: each "
                           "is measured, in this order)" if name == "bench" else ""))
        p.set_defaults(func=func)
    for name in ("run", "bench", "profile", "tune"):
        sub.choices[name].add_argument("--input", help=".npy (first input) or .npz (by name), at the shapes to "
                                       "run (a model's symbolic dimensions take them); default: random normal data" +
                                       (" (bench: with a MODEL)" if name == "bench" else ""))
    run = sub.choices["run"]
    run.add_argument("--no-check", action="store_true", help="skip the comparison with the numpy reference")
    run.add_argument("--tolerance", type=float, help="relative L2 error allowed (default 1e-4, 1e-2 in fp16)")
    run.add_argument("--out", help="write the outputs to this .npz")
    sub.choices["profile"].add_argument("--top", type=int, help="show only the N slowest dispatches")
    for name in ("profile", "tune"):
        sub.choices[name].add_argument("--batch", type=int, default=1, help="the inputs' first dimension (default: "
                                       "the model's own, 1 if symbolic)" + ("; choices are kept per shape, so "
                                       "tune each batch size that runs" if name == "tune" else ""))
    sub.choices["tune"].add_argument("--seconds", type=float, default=300.0, help="stop measuring after this long; "
                                     "the nodes not reached keep the defaults (default: 300)")
    sub.choices["tune"].add_argument("--again", action="store_true", help="measure signatures already cached too")
    p = sub.add_parser("conformance", help="run ONNX's own node test cases for the supported operators")
    p.add_argument("--ops", help="comma-separated ONNX op types (default: every supported one)")
    p.add_argument("--json", action="store_true", help="every case with its result and reason, as JSON")
    p.add_argument("--markdown", action="store_true", help="the per-op table as Markdown")
    p.add_argument("-v", "--verbose", action="store_true", help="name each case as it runs")
    p.set_defaults(func=cmd_conformance)
    bench = sub.choices["bench"]
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--models", help="suite: comma-separated zoo or pretrained models; 'mediapipe' stands for "
                       "the four the demos use (default: the zoo's CNNs)")
    bench.add_argument("--columns", help="suite: comma-separated columns (default: all of wgnn.bench.COLUMNS)")
    bench.add_argument("--batch", help="suite: comma-separated batch sizes of the zoo CNNs, e.g. 1,32 (default: 1); "
                       "a batch B is reported as MODEL@B, with its throughput in images/s")
    bench.add_argument("--png", help="suite: also draw the bar chart (needs matplotlib)")
    bench.add_argument("--json", help="also write the result as JSON")

    p = sub.add_parser("batch", help="a model over a folder, glob or table of images (or a text model over "
                       "sentences), one row per input, into Parquet (one process, or a Ray Data cluster)")
    p.add_argument("model", help="an ONNX or TFLite file, a zoo model or a pretrained model's name")
    p.add_argument("inputs", help="a folder of images, a glob, or a .parquet/.csv table with a path or bytes column; "
                   "for a text model, a .txt file (a sentence per line) or a table with a text column")
    p.add_argument("--out", required=True, help="the Parquet file of results (a rerun skips inputs already in it)")
    p.add_argument("--batch-size", type=int, default=8, help="images (sentences) per run (default: 8)")
    p.add_argument("--preset", help="pre-processing: imagenet, mediapipe, mediapipe01, paddle or unit (default: "
                   "the model's)")
    p.add_argument("--precision", choices=("fp32", "fp16", "auto"))
    p.add_argument("--backend", choices=("compute", "texture"), default="compute")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray Data: a local cluster (no ADDRESS), or the cluster at ADDRESS ('auto' for the one "
                        "this machine belongs to)")
    p.add_argument("--workers", type=int, default=2, help="--ray: actors, one session each (default: 2)")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("fuzz", help="load and run mutated copies of real models in a watched worker: crashes, "
                       "hangs and errors that are not wgnn's; with --graphs, random graphs against a reference")
    p.add_argument("--count", type=int, default=200, help="mutants, or random graphs (default: 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a mutant may take (default: 60)")
    p.add_argument("--models", help="comma-separated corpus: zoo and pretrained model names, model files "
                   "(default: zoo CNNs and cached pretrained models)")
    p.add_argument("--graphs", action="store_true",
                   help="differential: random graphs of text-model, CNN, data-movement, vision, recurrent and "
                        "quantized pieces, wgnn against ONNX Runtime CPU (or, without it, wgnn's numpy reference), "
                        "and random TFLite graphs against LiteRT; mismatches named by seed")
    p.add_argument("--families",
                   help="--graphs: comma-separated, of text, cnn, data, vision, seq, quant, tflite, bert (default: "
                        "all; tflite where LiteRT is installed)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="--graphs: wgnn's precision")
    p.add_argument("--backend", choices=["compute", "texture"], default="compute", help="--graphs: wgnn's backend")
    p.add_argument("--kernels", choices=["random"],
                   help="--graphs: the compute backend's kernel variants and their sizes chosen at random per graph "
                        "(every GPU-class variant on this adapter), not by its policy")
    p.set_defaults(func=cmd_fuzz)

    p = sub.add_parser("demo", help="real-time face detection or selfie segmentation (window or headless)")
    p.add_argument("kind", choices=("face", "selfie"))
    p.add_argument("--source", default="auto", help="auto (camera 0 if present, else synthetic), synthetic, a "
                   "camera index, a video file or an image file (default: auto)")
    p.add_argument("--size", type=_size, default=(640, 480), help="WxH of the synthetic camera and asked of a "
                   "real one (default: 640x480)")
    p.add_argument("--headless", action="store_true", help="render offscreen (automatic without a display)")
    p.add_argument("--frames", type=int, help="stop after N frames (headless default: 60; window: until closed)")
    p.add_argument("--out", help="headless: write the frames to a video (.mp4, .gif, ...) or a folder of PNGs")
    p.add_argument("--mode", choices=("blur", "replace"), default="blur", help="selfie: what to do to the "
                   "background (key b switches)")
    p.add_argument("--background", help="selfie replace: #rrggbb or an image file (default: a blue gradient)")
    p.add_argument("--no-overlay", action="store_true", help="start without the statistics overlay (key o)")
    p.add_argument("--precision", choices=("fp32", "fp16", "auto"), help="default: fp32")
    p.add_argument("--backend", choices=("compute", "texture"), default="compute",
                   help="the model's backend; the demo's own shaders are the same (default: compute)")
    p.add_argument("--sync", action="store_true", help="headless face demo: wait for the GPU after every stage "
                   "(per-stage GPU times) instead of keeping two frames in flight")
    p.add_argument("--adapter", help="adapter index or name substring")
    p.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    from wgnn.errors import WgnnError

    log = logging.getLogger("wgnn")  # what a session says (a batch run in parts), as the commands speak
    if not any(getattr(h, "wgnn_cli", False) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("wgnn: %(message)s"))
        handler.wgnn_cli = True
        log.addHandler(handler)

    try:
        return args.func(args)
    except WgnnError as exc:
        print(f"wgnn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
