#!/usr/bin/env bash
# GPU acceptance run: one call on a machine with one CUDA GPU, about 5 minutes, one JSON of results.
#
#   bash benchmarks/gpu_check.sh               # writes gpu_check.json ($OUT/gpu_check.json when $OUT is set)
#   DRY_RUN=1 bash benchmarks/gpu_check.sh     # or --dry-run: on any machine, checks that everything it would
#                                              # run exists and parses its arguments; runs nothing heavy
#
# Steps (each timed and guarded: a failure is recorded in the JSON and the run goes on):
#   pytest_cuda          the cuda-marked tests (pytest -m cuda): pass/fail counts
#   animate_command      cause-pl animate --device cuda --bf16 at 128 px on 60 s of speech: frames/s, stages
#   ganimation_bench_b25 GANimation 128 px, batch 25: training and inference images/s in fp32, bf16-mixed,
#                        channels_last+bf16 and compile+bf16 (benchmarks/ganimation.py)
#   cause_fit_bf16       CAUSE CNN fit on synthetic shards, bf16-mixed, 300 steps: steps/s
#   ddp_cause, ddp_ganimation  1-GPU DDP fits of the shipped configs (+ their synthetic overlays), a few steps
#   preview_fit          a CAUSE fit on the GPU with AnimationPreviewCallback (a 128-px GANimation partner)
#   ganimation_bench_b64 the same at batch 64 (fewer settings)
#   animate_bench        benchmarks/animate.py --device cuda --bf16 (the animator built like the command)
# Environment: PYTHON (an interpreter with torch; default: the first of .venv/bin/python, python3, python
# that imports torch), OUT, GPU_CHECK_OUT (the JSON path), GPU_CHECK_BUDGET_S (default 290: later steps are
# cut short or skipped once it is spent), GPU_CHECK_WORK (scratch folder; default a new temporary one).
set -euo pipefail

START=$(date +%s)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

DRY=0
[[ "${DRY_RUN:-0}" =~ ^(1|true|yes)$ ]] && DRY=1
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "gpu_check.sh: unknown argument $arg (use --dry-run or --help)" >&2
            exit 2
            ;;
    esac
done

if [[ -n "${GPU_CHECK_OUT:-}" ]]; then
    RESULTS=$GPU_CHECK_OUT
elif [[ -n "${OUT:-}" ]]; then
    RESULTS=$OUT/gpu_check.json
else
    RESULTS=$ROOT/gpu_check.json
fi
WORK=${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$WORK"
export GPU_CHECK_DEADLINE=$((START + ${GPU_CHECK_BUDGET_S:-290}))
export WANDB_MODE=${WANDB_MODE:-offline} WANDB_SILENT=true PYTHONUNBUFFERED=1
say() { echo "[gpu_check $(($(date +%s) - START)) s] $*"; }

# ---- an interpreter with torch; the package without touching torch -----------------------------------
PY=""
for candidate in "${PYTHON:-}" "$ROOT/.venv/bin/python" python3 python; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" > /dev/null 2>&1 && "$candidate" -c "import torch" > /dev/null 2>&1; then
        PY=$(command -v "$candidate")
        break
    fi
done
if [[ -z "$PY" ]]; then
    echo "gpu_check.sh: no python that imports torch (set PYTHON=/path/to/python)" >&2
    exit 1
fi
say "python: $PY ($("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'))"
# src/ first on the path: the checkout runs even if the editable install below is not possible (offline).
export PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [[ $DRY == 0 ]] && ! "$PY" -c "import cause_pl.cli.main" > /dev/null 2>&1; then
    say "installing the package (--no-deps; torch is never reinstalled)"
    "$PY" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT" || say "editable install failed; using PYTHONPATH=src"
    missing=$("$PY" - << 'EOF'
import importlib.util
wanted = {"webdataset": "webdataset", "omegaconf": "omegaconf", "jsonargparse": "jsonargparse[signatures]",
          "wandb": "wandb", "soundfile": "soundfile", "PIL": "pillow", "av": "av", "matplotlib": "matplotlib",
          "tqdm": "tqdm", "yaml": "pyyaml", "pytest": "pytest", "pytest_timeout": "pytest-timeout",
          "docstring_parser": "docstring-parser", "typeshed_client": "typeshed-client"}
print(" ".join(package for module, package in wanted.items() if importlib.util.find_spec(module) is None))
EOF
    )
    if [[ -n "$missing" ]]; then
        say "installing missing light dependencies: $missing"
        # shellcheck disable=SC2086
        "$PY" -m pip install --quiet $missing || say "could not install some of: $missing (steps needing them will fail)"
    fi
fi

HELPER=("$PY" "$ROOT/benchmarks/gpu_check.py")
CLI=("$PY" -m cause_pl.cli.main)
DRYFLAG=()
[[ $DRY == 1 ]] && DRYFLAG=(--dry)
# step NAME KIND TIMEOUT [--json FILE] -- COMMAND...: run, time and record it (never aborts the script)
step() {
    local name=$1 kind=$2 timeout=$3
    shift 3
    say "step $name"
    "${HELPER[@]}" step --work "$WORK" --name "$name" --kind "$kind" --timeout "$timeout" "${DRYFLAG[@]}" "$@" || true
}

DATA=$WORK/data
RUNS=$WORK/runs
INPUTS=$WORK/inputs
CAUSE_CONFIGS=(--config experiments/cause/voxceleb2.yaml --config experiments/cause/synthetic.yaml)
GAN_CONFIGS=(--config experiments/ganimation/celeba128.yaml --config experiments/ganimation/synthetic.yaml)
fit_overrides() { # RUN_DIR SHARDS STEPS: short, local, on the GPU
    echo "--trainer.accelerator=gpu --trainer.devices=1 --trainer.max_steps=$3 --trainer.max_epochs=-1" \
        "--trainer.default_root_dir=$1 --trainer.logger.init_args.save_dir=$1 --trainer.enable_progress_bar=false" \
        "--trainer.limit_val_batches=2 --trainer.num_sanity_val_steps=0 --data.init_args.root=$2"
}
# shellcheck disable=SC2207
CAUSE_DDP=($(fit_overrides "$RUNS/ddp_cause" "$DATA/speech_au" 20) --trainer.strategy=ddp
    --data.init_args.train_samples_per_epoch=160 --model.init_args.log_per_au=false)
# shellcheck disable=SC2207
GAN_DDP=($(fit_overrides "$RUNS/ddp_ganimation" "$DATA/faces" 12) --trainer.strategy=ddp_find_unused_parameters_true
    --data.init_args.train_samples_per_epoch=96)
# shellcheck disable=SC2207
PREVIEW=($(fit_overrides "$RUNS/preview" "$DATA/speech_au" 10) --data.init_args.train_samples_per_epoch=80
    --model.init_args.log_per_au=false
    --trainer.callbacks+=cause_pl.callbacks.AnimationPreviewCallback
    "--trainer.callbacks.audio=$INPUTS/speech.wav" "--trainer.callbacks.face=$INPUTS/face.png"
    "--trainer.callbacks.ganimation_ckpt=$INPUTS/ganimation.ckpt" --trainer.callbacks.seconds=2.0)
ANIMATE=(animate --audio "$INPUTS/speech.wav" --face "$INPUTS/face.png" --cause_ckpt "$INPUTS/cause.ckpt"
    --ganimation_ckpt "$INPUTS/ganimation.ckpt" --out "$WORK/animation.mp4" --device cuda --bf16 --batch_frames 128
    --no_align) # alignment is CPU work, and a GPU image's OpenCV may lack its Haar cascades
GAN_BENCH=("$PY" benchmarks/ganimation.py --device cuda --image-size 128 --repeats 2 --warmup-cycles 1
    --compile-timeout 100 --profile "")
B25=(--batch-size 25 --settings fp32 bf16 channels_last+bf16 compile+bf16 --out "$WORK/ganimation_b25.json")
B64=(--batch-size 64 --repeats 1 --settings fp32 channels_last+bf16 --out "$WORK/ganimation_b64.json")

if [[ $DRY == 1 ]]; then
    say "dry run: checking that every command exists and parses its arguments (nothing heavy runs)"
    mkdir -p "$DATA/speech_au" "$DATA/faces" "$INPUTS"
    step pytest_cuda pytest 120 -- "$PY" -m pytest --collect-only -q -m cuda -p no:cacheprovider tests
    step prepare plain 60 -- "${HELPER[@]}" prepare --help
    step synthetic_shards plain 60 -- "$PY" data_recipes/synthetic.py --out "$DATA" --print_config
    step animate_command plain 60 -- "${CLI[@]}" "${ANIMATE[@]}" --print_config
    step ganimation_bench_b25 plain 60 -- "${GAN_BENCH[@]}" "${B25[@]}" --dry-run
    step cause_fit_bf16 plain 60 -- "${HELPER[@]}" cause-fit --shards "$DATA/speech_au" --steps 300 --dry-run
    step ddp_cause plain 120 -- "${CLI[@]}" fit "${CAUSE_CONFIGS[@]}" "${CAUSE_DDP[@]}" --print_config
    step ddp_ganimation plain 120 -- "${CLI[@]}" fit "${GAN_CONFIGS[@]}" "${GAN_DDP[@]}" --print_config
    step preview_fit plain 120 -- "${CLI[@]}" fit "${CAUSE_CONFIGS[@]}" "${PREVIEW[@]}" --print_config
    step ganimation_bench_b64 plain 60 -- "${GAN_BENCH[@]}" "${B64[@]}" --dry-run
    step animate_bench plain 60 -- "$PY" benchmarks/animate.py --help
    MODE=dry
else
    if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        say "warning: torch sees no CUDA device; the GPU steps will fail and be recorded as such"
    fi
    # a test module whose dev-only imports (nbclient, selenium) are missing there must not stop the cuda tests
    step pytest_cuda pytest 150 -- "$PY" -m pytest -q -m cuda -p no:cacheprovider --continue-on-collection-errors tests
    step prepare plain 60 -- "${HELPER[@]}" prepare --out "$INPUTS" --seconds 60 --image-size 128
    step animate_command animate 60 -- "${CLI[@]}" "${ANIMATE[@]}"
    step synthetic_shards plain 90 -- "$PY" data_recipes/synthetic.py --out "$DATA" --workers 8 --speakers 12 \
        --utterances 8 --faces 600
    step ganimation_bench_b25 json 150 --json "$WORK/ganimation_b25.json" -- "${GAN_BENCH[@]}" "${B25[@]}"
    step cause_fit_bf16 json 90 --json "$WORK/cause_fit.json" -- "${HELPER[@]}" cause-fit \
        --shards "$DATA/speech_au" --steps 300 --precision bf16-mixed --out "$WORK/cause_fit.json"
    step ddp_cause plain 90 -- "${CLI[@]}" fit "${CAUSE_CONFIGS[@]}" "${CAUSE_DDP[@]}"
    step ddp_ganimation plain 90 -- "${CLI[@]}" fit "${GAN_CONFIGS[@]}" "${GAN_DDP[@]}"
    step preview_fit plain 90 -- "${CLI[@]}" fit "${CAUSE_CONFIGS[@]}" "${PREVIEW[@]}"
    step ganimation_bench_b64 json 90 --json "$WORK/ganimation_b64.json" -- "${GAN_BENCH[@]}" "${B64[@]}"
    step animate_bench json 60 --json "$WORK/animate_bench.json" -- "$PY" benchmarks/animate.py --device cuda \
        --bf16 --seconds 60 --batch-frames 128 --repeats 2 --out "$WORK/animate_bench.json"
    MODE=real
fi

"${HELPER[@]}" assemble --work "$WORK" --out "$RESULTS" --mode "$MODE" --elapsed "$(($(date +%s) - START))"
say "done; logs in $WORK/logs"
echo "$RESULTS"
