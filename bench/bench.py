#!/usr/bin/env python
"""Benchmarks of ddpm_nb against diffusers (UNet2DModel + DDPMScheduler) and against the machine's measured limits.

    python bench/bench.py [--quick] [--json out.json] [--md out.md] [--threads N] [--no-compile]

Prints a markdown table and (with --json) writes every measurement as JSON. Every section, in this order, is also a
script of its own beside this one, with the same options:

1. `common.matmul_peak`: achieved GFLOP/s of a big matmul in fp32 and bf16, the yardstick of the FLOP rates below;
2. `train_speed.py`: training throughput (img/s) of the fashion_mnist preset, ddpm_nb's step against the equivalent
   diffusers loop with the same weights, fp32 as a user would run it; each speed measure on top (channels_last, bf16
   autocast, torch.compile, foreach/fused Adam, all of them); `ddpm_nb.train.train()` end to end;
3. `sampling_speed.py`: ancestral sampling (p_sample_loop) against bare network forwards of the same batch and
   diffusers' DDPMPipeline loop with the same weights;
4. `bpd_speed.py`: calc_bpd_loop's throughput against the network-forward bound (T forwards per image), and the cost
   of the stratified estimator (ddpm_nb.evaluate.bpd_stratified) for a 95% interval of +-0.02 bits/dim, from a pilot;
5. `gpu_speed.py` (on a GPU): the cifar10 preset against the paper's TPU v3-8 numbers (21 steps/s x 128 = 2,688 img/s;
   256 samples x 1000 steps in 17 s).

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode; peak memory is the RSS growth sampled from
/proc/self/statm on the CPU, torch.cuda.max_memory_allocated on a GPU. The machine may be shared: every comparison is
interleaved (A, B, C, A, B, C, ...), ratios are taken within a round and the median over rounds is reported.
`--render saved.json` re-prints a saved run's table (`report.py`).
"""
from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling modules, from any directory
import bpd_speed, gpu_speed, runner, sampling_speed, train_speed
# the measuring tools, as `bench.X` for the notebook that loads this file
from common import Batches, PeakMem, count_flops, interleave, machine_info, matmul_peak, ratio_median  # noqa: F401
from report import to_markdown  # noqa: F401

SECTIONS = [train_speed, sampling_speed, bpd_speed, gpu_speed]

def main(argv=None):
    "Every section in turn (`--skip` leaves some out); returns the record it prints and writes."
    return runner.main(argv, __doc__, SECTIONS, 'bench/bench.py')

if __name__ == '__main__':
    main()
