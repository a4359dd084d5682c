#!/usr/bin/env bash
# One GPU session's measurements on the lent device machine (torch there, no internet): each step
# runs one of the benchmark scripts (or `cnnlab train`), so every figure printed comes from the
# repo's code, with the host, device and torch printed beside it. On CUDA the `full` profile takes
# the recipes' "full@cuda" entries (cnnlab.recipes).
#
# Usage: bash benchmarks/gpu_session.sh [SOURCE [OUTDIR [step ...]]]
#   SOURCE  default: the lossless archive ../shared/data/cifar10-png.tar.gz beside the checkout ("CIFAR-10")
#   OUTDIR  where each step's results are copied; default $OUT (the device machine's), else gpu-out
#   bash benchmarks/gpu_session.sh ../shared/data/cifar10-png.tar.gz "$OUT" fast-b1024 fast-quick baseline
# Steps (default: fast-b1024 fast-quick baseline finetune):
#   fast-b1024          RECIPES['fast'] full on CUDA (64/256/256, batch 1024, lr 1.5, Muon lr 0.24, 32 px)
#   fast-b1024-compile  the same with torch.compile
#   fast-recipe         the CPU's full entries (64/256/256, batch 256, 16 -> 24 -> 32 px) on the GPU
#   fast-quick          RECIPES['fast'] quick (32/128/128, 6 epochs)
#   baseline            bench_scratch: baseline, fast, fast:quick and how much sooner each fast run
#                       reaches the baseline's best validation accuracy
#   finetune            Lite0 finetune, the recipe (full@cuda: 224 px, 10 epochs, batch 128)
#   transfer            bench_transfer: Lite0 frozen and partial pipelines (feature extraction included)
#   small               bench_transfer: 1 % of the training split, Lite0 frozen vs fast
#   fast:LABEL:key=value,key=value   a tune_fast.py variant on top of fast-b1024's settings
#   ft:EPOCHS:LR:BACKBONE_LR_SCALE[:key=value,...]   finetune on top of the recipe (Lite0, 224 px,
#       batch 128 unless the keys say otherwise, e.g. backbone='efficientnet_lite2',ema=0.999)
#   sweep-quick   the quick recipe in fp32 and variants of it, 2 seeds each (accuracy per variant)
#   ceiling       the GPU recipe trained 3-6x longer and wider: how far this family goes on this data
# Each step has its own wall-clock limit (`timeout`) so one slow step cannot eat the others.
# PROFILE=smoke runs every step on the smoke profile instead of full / quick (a plumbing check, e.g.
# with SOURCE fake); THREADS sets tune_fast.py's CPU threads (default 8).
set -uf  # -f: no globbing, so values such as epoch_image_sizes=[32] reach the scripts as typed
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEFAULT_SRC="$ROOT/../shared/data/cifar10-png.tar.gz"
SRC=${1:-$DEFAULT_SRC}
[ -e "$SRC" ] && SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")  # absolute, before the cd below
case $SRC in
  cifar10|cifar100|fake|fake:*) ;;
  *) [ -e "$SRC" ] || { echo "data source $SRC not found: give SOURCE (a .tar.gz, a folder, cifar10 or fake)" >&2; exit 2; } ;;
esac
OUTDIR=${2:-${OUT:-gpu-out}}
[ $# -ge 2 ] && shift 2 || shift $#
STEPS=${*:-fast-b1024 fast-quick baseline finetune}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
RUNS="${CNNLAB_HOME:-$ROOT}/runs"
echo "source: $SRC"
nvidia-smi -L || true
$PY -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
# RECIPES["fast"]'s "full@cuda" entries (every epoch at 32 px), named so the step keeps its meaning if the recipe changes
B1024="widths=64,256,256 batch_size=1024 lr=1.5 muon_lr=0.24 epoch_image_sizes=[32]"
CPU_RECIPE="widths=64,256,256 batch_size=256 lr=0.375 muon_lr=0.08 epoch_image_sizes=[16,24,32]"
QUICK_VARIANTS=(${QUICK_VARIANTS:-base: relu:act=relu ls1:label_smoothing=0.1 b128:batch_size=128,lr=0.1875
  wb4:whiten_bias_epochs=4 w128-192:widths=32,128,192 e5w28:epochs=5,widths=28,112,112 e5:epochs=5
  sched:warmup=0.1,final_lr=0.0})
CEILING_VARIANTS=(${CEILING_VARIANTS:-e30:epochs=30 e60:epochs=60 wide:widths=128,384,384,epochs=30})
FT_TIMEOUT=${FT_TIMEOUT:-300}
FULL=${PROFILE:-full} QUICK=${PROFILE:-quick}
TUNE="$PY benchmarks/tune_fast.py --source $SRC --threads ${THREADS:-8}"
for step in $STEPS; do
  echo "=== $step $(date +%T)"
  case $step in
    fast-b1024) timeout 150 $TUNE --profile $FULL --label gpu-b1024 --set $B1024 ;;
    fast-b1024-compile) timeout 180 $TUNE --profile $FULL --label gpu-b1024-compile --set $B1024 compile=true ;;
    fast-recipe) timeout 120 $TUNE --profile $FULL --label gpu-cpu-recipe --set $CPU_RECIPE ;;
    fast-quick) timeout 120 $TUNE --profile $QUICK --label gpu-quick ;;
    finetune) timeout 260 $PY -m cnnlab.cli train --source "$SRC" --backbone efficientnet_lite0 --strategy finetune \
                --profile $FULL --out "$RUNS/gpu-finetune" --restart \
              && cp "$RUNS/gpu-finetune/metrics.json" "$OUTDIR/finetune-metrics.json" \
              && cp "$RUNS/gpu-finetune/history.json" "$OUTDIR/finetune-history.json" ;;
    baseline) timeout 240 $PY benchmarks/bench_scratch.py --profile $FULL --source "$SRC" --no-progress \
                --models baseline,fast,fast:quick --out "$RUNS/gpu-bench-scratch" \
              && cp "$RUNS/gpu-bench-scratch/results.json" "$OUTDIR/bench-scratch.json" ;;
    transfer) timeout 450 $PY benchmarks/bench_transfer.py --profile $FULL --source "$SRC" --no-progress \
                --strategies frozen,partial --fractions '' --fresh-features --out "$RUNS/gpu-bench-transfer" \
              && cp "$RUNS/gpu-bench-transfer/results.json" "$OUTDIR/bench-transfer.json" ;;
    small) timeout 300 $PY benchmarks/bench_transfer.py --profile $FULL --source "$SRC" --no-progress \
             --strategies '' --fractions 0.01 --out "$RUNS/gpu-bench-small" \
           && cp "$RUNS/gpu-bench-small/results.json" "$OUTDIR/bench-small.json" ;;
    sweep-quick) timeout 450 $TUNE --profile $QUICK --seeds 0,1 --set amp=false ${QUICK_VARIANTS[@]/#/--variant } ;;
    ceiling) timeout 240 $TUNE --profile $FULL ${CEILING_VARIANTS[@]/#/--variant } ;;
    fast:*) IFS=: read -r _ label sets <<< "$step"
            timeout 150 $TUNE --profile $FULL --label "gpu-$label" --set $B1024 ${sets//,/ } ;;
    ft:*) IFS=: read -r _ ep lr scale more <<< "$step"
          name=$(echo "${step#ft:}" | tr -c 'A-Za-z0-9._\n-' '_')
          timeout "$FT_TIMEOUT" $PY -c "
import sys
from cnnlab.data import AugmentConfig
from cnnlab.transfer import transfer_run
kw = dict(backbone='efficientnet_lite0', image_size=224, epochs=$ep, batch_size=128, lr=$lr, backbone_lr_scale=$scale)
kw.update(dict($more))
m = transfer_run(strategy='finetune', source='$SRC', out='$RUNS/gpu-ft-$name', profile='$FULL', resume=False, progress=False, **kw)
print('RESULT', sys.argv[1], 'test', m['test_accuracy'], 'val at best', m['val_acc_at_best'], 'train_s', m['train_seconds'],
      'epochs', m['epochs'], m['device'], m['precision'])
" "$step" && cp "$RUNS/gpu-ft-$name/history.json" "$OUTDIR/ft-$name-history.json" ;;
    *) echo "unknown step $step" ;;
  esac
  echo "=== $step done rc=$? $(date +%T)"
  cp "$RUNS/tune-fast/results.jsonl" "$OUTDIR/tune-fast.jsonl" 2>/dev/null || true
done
