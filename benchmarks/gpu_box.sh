#!/usr/bin/env bash
# The checks that need a GPU, as one call of a lent GPU machine (the workplace's `device` tool).
#
#   bash benchmarks/gpu_box.sh prepare   # here: .whl/ (optical's pure-Python needs the GPU image lacks)
#                                        # and .gpu/ (e5-small's config + tokenizer, an el-only data dir)
#   bash benchmarks/gpu_box.sh run       # there, with carry [".whl", ".gpu"]; results under $OUT
#   GPU_BOX_PARTS="tests cuda" CUDA_BATCH_SIZES=256 bash benchmarks/gpu_box.sh run   # a shorter call
#
# `run` runs the CUDA tests (sync-free steps, the CUDA Sinkhorn, large batches with accumulation, MaxSim against its
# reference), the CUDA distillation benchmark, the host bound measured on that machine's CPUs and with the tiny model
# on its GPU, and (part `maxsim`) the exact MaxSim on CUDA against the old implementation, from the el CLIR token
# embeddings that `prepare` copies from this machine's cache (.gpu/bench; run benchmarks/bench_maxsim.py here first). The data dir holds the real en-el bitext and XQuAD el/en files and empty stand-ins for the rest
# (the trainer checks that every file of the layout is present; a run of el reads only those).
set -u -o pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

prepare() {
    local data=${OPTICAL_DATA_DIR:-../shared/data} model=${E5_DIR:-$HOME/.cache/optical/models/multilingual-e5-small}
    rm -rf .whl .gpu && mkdir -p .whl .gpu/data .gpu/e5
    local platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    for pin in platformdirs==4.14.8 langcodes==3.5.1 language_data==1.4.0 marisa-trie==1.4.1; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            "${platforms[@]}" -d .whl "$pin" || return 1
    done
    (cd "$data" && find . -type f) | while read -r file; do
        mkdir -p ".gpu/data/$(dirname "$file")"
        case "$file" in
            */en-el.tsv | */xquad.el.json | */xquad.en.json | ./xquad-r/el.json | ./xquad-r/en.json) cp "$data/$file" ".gpu/data/$file" ;;
            *) if [ "$(stat -c %s "$data/$file")" -lt 200000 ]; then cp "$data/$file" ".gpu/data/$file"; else : >".gpu/data/$file"; fi ;;
        esac
    done
    mkdir -p .gpu/bench
    # The CLIR token embeddings in bf16 (about 50 MB instead of 100: the carry limit is 64 MiB).
    for held in "${OPTICAL_CACHE_DIR:-$HOME/.cache/optical}"/bench/maxsim-el-*-clir.pt; do
        [ -f "$held" ] || { echo "no MaxSim CLIR inputs cached: part maxsim will be skipped (run bench_maxsim.py --only clir)"; break; }
        "${PYTHON:-.venv/bin/python}" -c "import sys, torch; h = torch.load(sys.argv[1]); \
h['query_tokens'], h['doc_tokens'] = ([t.bfloat16() for t in h[k]] for k in ('query_tokens', 'doc_tokens')); \
torch.save(h, sys.argv[2])" "$held" ".gpu/bench/$(basename "$held")" || return 1
    done
    find "$model" -mindepth 1 -maxdepth 1 ! -name "*.safetensors" ! -name "*.bin" ! -name "*onnx*" ! -name openvino -exec cp -r {} .gpu/e5/ \;
    du -sh .whl .gpu
}

run() {
    : "${OUT:?run is for the GPU machine, where OUT is set}"
    local parts=${GPU_BOX_PARTS:-tests cuda host maxsim} failed=""
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$here/src:$here/benchmarks OPTICAL_DATA_DIR=$here/.gpu/data OPTICAL_CACHE_DIR=/tmp/optical-cache
    export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/machine.txt"
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/machine.txt"
    if [[ " $parts " == *" tests "* ]]; then
        timeout 180 python3 -m pytest -q -p no:cacheprovider --basetemp /tmp/pt -k cuda \
            tests/ot/test_sinkhorn_cuda.py tests/train/test_throughput.py tests/eval/test_maxsim.py 2>&1 | tee "$OUT/pytest.log" \
            || failed+=" tests"
    fi
    if [[ " $parts " == *" cuda "* ]]; then
        timeout 240 python3 benchmarks/bench_distill_peer.py --only cuda --model .gpu/e5 ${CUDA_BATCH_SIZES:+--cuda-batch-sizes $CUDA_BATCH_SIZES} \
            2>&1 | tee "$OUT/bench_cuda.log" || failed+=" cuda"
    fi
    if [[ " $parts " == *" host "* ]]; then
        timeout 60 python3 benchmarks/bench_distill_peer.py --only host --key-suffix _gpu_box 2>&1 | tee "$OUT/bench_host.log" \
            || failed+=" host"
        timeout 60 python3 benchmarks/bench_distill_peer.py --only host --host-device cuda --key-suffix _cuda 2>&1 \
            | tee -a "$OUT/bench_host.log" || failed+=" host-cuda"
    fi
    if [[ " $parts " == *" maxsim "* ]] && ls .gpu/bench/maxsim-el-*-clir.pt >/dev/null 2>&1; then
        timeout 240 python3 benchmarks/bench_maxsim.py --only clir --device cuda --inputs-dir .gpu/bench 2>&1 \
            | tee "$OUT/bench_maxsim.log" || failed+=" maxsim"
    fi
    cp benchmarks/results.json "$OUT/results.json"
    [ -z "$failed" ] || { echo "gpu_box: failed:$failed" >&2; return 1; }
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash benchmarks/gpu_box.sh prepare|run  (GPU_BOX_PARTS='tests cuda host maxsim', CUDA_BATCH_SIZES=256,1024)" >&2; exit 2 ;;
esac
