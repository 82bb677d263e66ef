#!/usr/bin/env bash
# One call on a GPU machine: every GPU check, each with its own time limit; results go
# under $W and are packed into $OUT/results.tgz after each stage (a stage cut by its limit loses only itself).
# Needs: .whl (fastcore, nbdev, execnb, ipython, diffusers wheels for the device's Python), .data/fashion-mnist (IDX files).
#   device run: bash bench/gpu_check.sh      (carry: .whl .data)
set -u
W=/tmp/gw; rm -rf $W; mkdir -p $W
OUT=${OUT:-/tmp/gout}; mkdir -p $OUT
pack() { tar czf $OUT/results.tgz --exclude='model.safetensors' --exclude='state.pt' --exclude='ablation/*/ckpt-*' -C $W . 2>/dev/null; }
log() { echo "[$(( SECONDS ))s] $*" | tee -a $W/stages.log; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || { echo "wheels failed"; exit 1; }
export PYTHONPATH=$PWD:/tmp/site PATH=/tmp/site/bin:$PATH DDPM_NB_DATA=$PWD/.data PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
nvidia-smi > $W/nvidia-smi.txt 2>&1
python3 -c "import torch, json, platform; print(json.dumps({'torch': torch.__version__, 'gpu': torch.cuda.get_device_name(), 'python': platform.python_version(), 'cpus': __import__('os').cpu_count()}))" > $W/env.json
log "env: $(cat $W/env.json)"
SCORE_ARGS=${SCORE_ARGS:-}; BENCH_ARGS=${BENCH_ARGS:-}; BENCH_SKIP=${BENCH_SKIP:-}; SHIP_MIN=${SHIP_MIN:-3.5}; DEV=${DEV:-cuda}; ABL_ARGS=${ABL_ARGS:-}   # DEV=cpu ABL_ARGS="--images 64 --n 50 --only fast" SHIP_MIN=0.1: a dry run on a CPU

# A. the shipped fashion_mnist model: the fast recipe, batch 128, as long as the budget allows (bf16 autocast: --precision auto)
( timeout $(python3 -c "print(int($SHIP_MIN*60+90))") python3 -c "import sys; from ddpm_nb.cli import ddpm_nb_train; sys.exit(ddpm_nb_train(sys.argv[1:]))" \
    --recipe fast --batch-size 128 --lr 1e-3 --minutes $SHIP_MIN --steps 1000000 --save-every 2000 --out $W/ship --no-progress --json --device $DEV \
    > $W/ship_train.log 2>&1; echo "ship train exit $?" >> $W/stages.log
  ls -d $W/ship/ckpt-* | head -n -1 | xargs -r rm -rf          # only the final checkpoint comes back
  timeout 120 python3 bench/score_models.py $W/ship fashion_mnist --json $W/ship_scores.json --bpd --device $DEV --grid $W $SCORE_ARGS > $W/ship_scores.log 2>&1
  echo "ship scores exit $?" >> $W/stages.log ) &
PA=$!
# B. the recipe ablation at the 2-core CPU's 15-minute image budgets, 8 variants at a time
( timeout 330 python3 bench/quality_ablation.py --out $W/ablation --jobs ${ABL_JOBS:-6} --device $DEV --cpu-img-s bench/results/cpu_img_s.json --bf16-budget $ABL_ARGS > $W/ablation.log 2>&1
  echo "ablation exit $?" >> $W/stages.log ) &
PB=$!
# C. the notebooks' #| cuda cells (04_diffusion, 07_train, 10_cli; 20_cifar10_gpu needs CIFAR-10, which this machine cannot fetch)
[ "$DEV" = cuda ] && ( timeout 330 nbdev_test --flags cuda --path nbs/04_diffusion.ipynb > $W/nbdev_test_04.log 2>&1; echo "nbdev_test 04 exit $?" >> $W/stages.log
  timeout 300 nbdev_test --flags cuda --path nbs/07_train.ipynb > $W/nbdev_test_07.log 2>&1; echo "nbdev_test 07 exit $?" >> $W/stages.log ) &
PC=$!
# D. CPU runs scored with the full protocol, when present (carried under .runs)
if [ -d .runs ]; then
  ( timeout 200 python3 bench/score_models.py .runs/* --json $W/cpu_runs_scores.json --device $DEV $SCORE_ARGS > $W/cpu_runs_scores.log 2>&1; echo "cpu runs scores exit $?" >> $W/stages.log ) &
fi
wait $PB; log "ablation done"; pack
wait $PC; log "nbdev cuda tests done"; pack
wait $PA; log "ship done"; pack
wait; pack
# E. timings, alone on the GPU: the cifar10 preset (35.7M) at batch 128 against diffusers and the paper's TPU; sampling 256 x 1000
timeout ${BENCH_S:-240} python3 bench/bench.py --device $DEV --skip peak,train,e2e,sample,bpd$BENCH_SKIP $BENCH_ARGS --json $W/gpu_bench.json --md $W/gpu_bench.md > $W/gpu_bench.log 2>&1
log "bench exit $?"; pack
ls -la $W >> $W/stages.log; pack
cat $W/stages.log
