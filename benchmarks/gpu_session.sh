#!/usr/bin/env bash
# One GPU session's measurements (the lent device machine: torch there, no internet).
# Usage: bash benchmarks/gpu_session.sh SOURCE OUTDIR [step ...]
# Steps: fast-b1024 fast-b1024-compile fast-recipe finetune baseline, plus
#   fast:LABEL:key=value,key=value   a tune_fast.py variant (overrides on top of B1024's)
#   ft:EPOCHS:LR:BACKBONE_LR_SCALE[:key=value,...]   finetune (Lite0 at 224 px, batch 128 unless
#       the keys say otherwise, e.g. backbone='efficientnet_lite2',drop_path=0.2,ema=0.999)
#   sweep-quick   the CPU's quick recipe (fp32, batch 256) and variants of it, 2 seeds each: accuracy
#                 per variant, to pick what to time on the CPU (GPU seconds say nothing about CPU ones)
#   ceiling       the GPU recipe trained 3-6x longer and wider: how far this family goes on this data
# Each step has its own time limit so one slow step cannot eat the others; every figure printed
# comes from the repo's code.
set -u
SRC=$1; OUTDIR=$2; shift 2
STEPS=${*:-fast-b1024 finetune fast-recipe fast-b1024-compile}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
mkdir -p "$OUTDIR"
nvidia-smi -L || true
python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"
# airbench94's shape and batch on a GPU: widths 64/256/256, batch 1024, SGD lr scaled x4 from batch 256
# (since measured, RECIPES["fast"]'s "full@cuda" entries); CPU: the recipe's plain "full" entries
B1024="widths=64,256,256 batch_size=1024 lr=1.5 muon_lr=0.24"
CPU_RECIPE="widths=48,192,192 batch_size=256 lr=0.375 muon_lr=0.08"
QUICK_VARIANTS=(${QUICK_VARIANTS:-base: relu:act=relu ls1:label_smoothing=0.1 b128:batch_size=128,lr=0.1875
  wb4:whiten_bias_epochs=4 w128-192:widths=32,128,192 e5w28:epochs=5,widths=28,112,112 e5:epochs=5
  sched:warmup=0.1,final_lr=0.0})
CEILING_VARIANTS=(${CEILING_VARIANTS:-e30:epochs=30 e60:epochs=60 wide:widths=128,384,384,epochs=30})
FT_TIMEOUT=${FT_TIMEOUT:-300}
for step in $STEPS; do
  echo "=== $step $(date +%T)"
  case $step in
    fast-b1024) timeout 150 python3 benchmarks/tune_fast.py --profile full --source "$SRC" --threads 8 --label gpu-b1024 --set $B1024 ;;
    fast-b1024-compile) timeout 180 python3 benchmarks/tune_fast.py --profile full --source "$SRC" --threads 8 --label gpu-b1024-compile --set $B1024 compile=true ;;
    fast-recipe) timeout 120 python3 benchmarks/tune_fast.py --profile full --source "$SRC" --threads 8 --label gpu-recipe --set $CPU_RECIPE ;;
    finetune) timeout 260 python3 -m cnnlab.cli train --source "$SRC" --backbone efficientnet_lite0 --strategy finetune \
                --image-size 224 --epochs 5 --batch-size 128 --profile full --out runs/gpu-finetune224 --restart \
              && cp runs/gpu-finetune224/metrics.json "$OUTDIR/finetune224-metrics.json" \
              && cp runs/gpu-finetune224/history.json "$OUTDIR/finetune224-history.json" ;;
    baseline) timeout 240 python3 benchmarks/bench_scratch.py --profile full --source "$SRC" --models baseline,fast \
                --out runs/gpu-bench-scratch && cp runs/gpu-bench-scratch/results.json "$OUTDIR/bench-scratch.json" ;;
    sweep-quick) timeout 450 python3 benchmarks/tune_fast.py --profile quick --source "$SRC" --threads 8 --seeds 0,1 \
                   --set amp=false ${QUICK_VARIANTS[@]/#/--variant } ;;
    ceiling) timeout 240 python3 benchmarks/tune_fast.py --profile full --source "$SRC" --threads 8 \
               ${CEILING_VARIANTS[@]/#/--variant } ;;
    fast:*) IFS=: read -r _ label sets <<< "$step"
            timeout 150 python3 benchmarks/tune_fast.py --profile full --source "$SRC" --threads 8 --label "gpu-$label" \
              --set $B1024 ${sets//,/ } ;;
    ft:*) IFS=: read -r _ ep lr scale more <<< "$step"
          name=$(echo "${step#ft:}" | tr -c 'A-Za-z0-9._\n-' '_')
          timeout "$FT_TIMEOUT" python3 -c "
import sys
from cnnlab.data import AugmentConfig
from cnnlab.transfer import transfer_run
kw = dict(backbone='efficientnet_lite0', image_size=224, epochs=$ep, batch_size=128, lr=$lr, backbone_lr_scale=$scale)
kw.update(dict($more))
m = transfer_run(strategy='finetune', source='$SRC', out='runs/gpu-ft-$name', profile='full', resume=False, progress=False, **kw)
print('RESULT', sys.argv[1], 'test', m['test_accuracy'], 'train_s', m['train_seconds'], 'epochs', m['epochs'], m['device'])
" "$step" && cp "runs/gpu-ft-$name/history.json" "$OUTDIR/ft-$name-history.json" ;;
    *) echo "unknown step $step" ;;
  esac
  echo "=== $step done rc=$? $(date +%T)"
  cp runs/tune-fast/results.jsonl "$OUTDIR/tune-fast.jsonl" 2>/dev/null || true
done
