#!/usr/bin/env python
"""Ancestral sampling speed: ddpm_nb's p_sample_loop against bare network forwards and diffusers' DDPMPipeline loop.

    python bench/sampling_speed.py [--quick] [--sample-steps N] [--sample-block N] [--sample-batch N] [--json out.json]

The three (four with diffusers' bare forwards, five with ddpm_nb under bf16 autocast) run the first steps of the
same 1000-step chain in turn, in blocks of steps: every step costs the same whatever t, so s/step x 1000 is the
chain's time.
The overhead of the loop over the network is also measured within the same run (a timing wrapper around the model).
diffusers' scheduler uses `variance_type='fixed_large'` and `clip_sample=True`, what ddpm_nb's default computes.
"""
from __future__ import annotations
import copy, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling modules, from any directory
import runner
from common import PeakMem, Timed, count_flops, interleave, ratio_median
from steps import linear_diffusion, linear_scheduler, shared_pair

SKIP = ('sample',)
FULL = dict(sample_steps=30, sample_block=10, sample_batch=4, sample_bf16=True)
QUICK = dict(sample_steps=4, sample_block=2, sample_batch=2, sample_bf16=False)

def add_args(p):
    p.add_argument('--sample-steps', type=int, default=None); p.add_argument('--sample-block', type=int, default=None)
    p.add_argument('--sample-batch', type=int, default=None)

def bench_sampling(a, device, ours, theirs, log, B=None, T=1000, steps=None, block=None, extra=True):
    """Ancestral sampling over the first `steps` steps of the T-step chain, interleaved in blocks of `block` steps:
    ddpm_nb's p_sample_loop (its generator p_sample_loop_progressive), bare forwards of the same batch, diffusers'
    DDPMPipeline loop."""
    B, steps, block = B or a.sample_batch, steps or a.sample_steps, block or a.sample_block
    steps = min(steps, T); block = min(block, steps)
    C, R = ours.in_ch, ours.resolution
    ours, theirs = ours.eval(), theirs.eval()
    diffusion = linear_diffusion(T)
    # the paper's σ² = β and x̂0 clipping, like ddpm_nb's default
    sched = linear_scheduler(T, variance_type='fixed_large', clip_sample=True)
    sched.set_timesteps(T)
    g = torch.Generator(device=device).manual_seed(0)
    xT = torch.randn((B, C, R, R), generator=g, device=device)
    state = {}
    def ours_blocks(model, key):
        gen = diffusion.p_sample_loop_progressive(model, (B, C, R, R), noise=xT.clone(),
                                                  generator=torch.Generator(device=device).manual_seed(1))
        def run():
            for _ in range(block): state[key] = next(gen)['sample']
        return run
    xb = xT.clone()
    def bare(net):
        it = iter(range(T - 1, -1, -1))
        def run():
            with torch.no_grad():
                for _ in range(block): net(xb, torch.full((B,), next(it), device=device, dtype=torch.long))
        return run
    def diffusers_blocks():
        it = iter(sched.timesteps); x = {'x': xT.clone()}; gg = torch.Generator(device=device).manual_seed(2)
        def run():
            with torch.no_grad():
                for _ in range(block):
                    tt = next(it)
                    out = theirs(x['x'], tt).sample
                    x['x'] = sched.step(out, tt, x['x'], generator=gg).prev_sample
        return run
    timed = Timed(ours, device)
    fns = {'ddpm_nb p_sample_loop': ours_blocks(timed, 'ours'), 'bare forwards (ddpm_nb UNet)': bare(ours),
           'diffusers DDPMScheduler loop': diffusers_blocks()}
    if extra: fns['bare forwards (diffusers UNet2DModel)'] = bare(theirs)
    if extra and a.sample_bf16 and device.type in ('cpu', 'cuda'):
        cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
        def fast(x, t):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return cl(x.contiguous(memory_format=torch.channels_last), t).float()
        fns['ddpm_nb p_sample_loop, bf16+cl+fp32 GroupNorm'] = ours_blocks(fast, 'fast')
    # warm-up outside the chains
    t0 = torch.zeros(B, dtype=torch.long, device=device)
    with torch.no_grad():
        for _ in range(2): ours(xb, t0); theirs(xb, t0)
    timed.seconds = 0.0
    ts = interleave(fns, steps // block, device)
    tot = {k: sum(v) for k, v in ts.items()}
    ref_bare, ref_d, n = 'bare forwards (ddpm_nb UNet)', 'diffusers DDPMScheduler loop', steps // block * block
    rows = {k: {'s_per_step': tot[k] / n, 's_1000_steps_est': tot[k] / n * T,
                'vs_bare_forwards': ratio_median(v, ts[ref_bare]),
                'speedup_vs_diffusers_loop': ratio_median(ts[ref_d], v)}
            for k, v in ts.items()}
    in_net = timed.seconds
    res = {'batch': B, 'T': T, 'steps_measured': n, 'block': block, 'rows': rows,
           'overhead_vs_bare': rows['ddpm_nb p_sample_loop']['vs_bare_forwards'] - 1,
           'overhead_in_run': tot['ddpm_nb p_sample_loop'] / in_net - 1 if in_net > 0 else float('nan')}
    def one_forward():
        with torch.no_grad(): ours(xb, t0)
    res['flops_per_forward'] = count_flops(one_forward)
    for k, r in rows.items(): r['gflops'] = res['flops_per_forward'] / r['s_per_step'] / 1e9
    with PeakMem(device) as pm:
        with torch.no_grad(): diffusion.p_sample(ours, xb, torch.full((B,), T - 1, device=device, dtype=torch.long))
    res['peak_mem_mb_per_step'] = pm.peak_mb
    log(f"sampling: overhead vs bare forwards {100 * res['overhead_vs_bare']:+.1f}% "
        f"(in-run {100 * res['overhead_in_run']:+.1f}%), "
        f"vs diffusers loop {rows['ddpm_nb p_sample_loop']['speedup_vs_diffusers_loop']:.2f}x")
    return res

def run(a, device, images, log, R, ctx):
    "The sampling rows into R['sampling'], on the training section's network pair (or a new one)."
    if 'sample' in a.skip: return
    ours, theirs = shared_pair(ctx, a.preset, device)
    R['sampling'] = bench_sampling(a, device, ours, theirs, log)

def main(argv=None):
    return runner.main(argv, __doc__, [sys.modules[__name__]], 'bench/sampling_speed.py', peak=False)

if __name__ == '__main__': main()
