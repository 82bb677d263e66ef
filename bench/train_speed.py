#!/usr/bin/env python
"""Training throughput (img/s) of ddpm_nb against diffusers' loop with the same weights, and of each speed measure.

    python bench/train_speed.py [--quick] [--json out.json] [--md out.md] [--threads N] [--no-compile]

ddpm_nb's step (`UNet.from_preset` + `GaussianDiffusion.training_losses` + Adam) against the diffusers loop a user
would otherwise run (`UNet2DModel` of the same shape and weights through the interop, `DDPMScheduler.add_noise`, MSE
on ε, AdamW), both fp32; then each measure on top of ddpm_nb's fp32 step (channels_last, bf16 autocast, foreach /
fused Adam, torch.compile, what `train()` picks, all of them), interleaved in rounds; then `ddpm_nb.train.train()`
end to end.
The matmul peak is measured first, so that each row's GFLOP/s reads as a share of it.
"""
from __future__ import annotations
import copy, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling modules, from any directory
import runner
from common import Batches, PeakMem, interleave, median, ratio_median, sync
from steps import (adam, build_pair, diffusers_step, linear_diffusion, linear_scheduler, ours_step, same_loss,
                   step_flops)

SKIP = ('train', 'e2e')
FULL = dict(batch=16, rounds=3, steps=1, e2e_steps=3)
QUICK = dict(batch=4, rounds=1, steps=1, e2e_steps=0)

def add_args(p):
    p.add_argument('--variants', default='', type=lambda s: [v.strip() for v in s.split(';') if v.strip()],
                   help='only these training variants (names separated by ";"), e.g. "+compile;all + compile"')
    p.add_argument('--e2e', default='bf16', type=lambda s: [v.strip() for v in s.split(',') if v.strip()],
                   help='precisions for the end-to-end ddpm_nb.train.train() rows, comma-separated (fp32,bf16)')
    p.add_argument('--diffusers-bf16', action='store_true',
                   help='also time the diffusers loop with bf16 autocast + channels_last')
    p.add_argument('--batch', type=int, default=None)
    p.add_argument('--rounds', type=int, default=None); p.add_argument('--steps', type=int, default=None)

# name: measures on top of the fp32 step (channels_last, bf16 autocast, torch.compile, Adam kind); bf16=None: where
# resolve_precision picks it. Every norm of the package's U-Net is already GroupNorm32 (float32 statistics), so there
# is no GroupNorm row.
VARIANTS = {
    'fp32 (baseline)':          dict(cl=False, bf16=False, compile=False, opt='default'),
    '+channels_last':           dict(cl=True,  bf16=False, compile=False, opt='default'),
    '+bf16 autocast':           dict(cl=False, bf16=True,  compile=False, opt='default'),
    '+bf16+channels_last':      dict(cl=True,  bf16=True,  compile=False, opt='default'),
    '+foreach Adam':            dict(cl=False, bf16=False, compile=False, opt='foreach'),
    '+fused Adam':              dict(cl=False, bf16=False, compile=False, opt='fused'),
    '+compile':                 dict(cl=False, bf16=False, compile=True,  opt='default'),
    'auto (what train() does)': dict(cl=False, bf16=None,  compile=False, opt='fused'),
    'all + compile':            dict(cl=True,  bf16=True,  compile=True,  opt='fused'),
}

def bench_train(a, device, images, log):
    "Every variant's step and the diffusers loop on the same weights and batches, interleaved; their FLOPs and memory."
    from ddpm_nb.machine import resolve_precision
    T = 1000
    diffusion = linear_diffusion(T)
    base, dbase = build_pair(a.preset, device)
    sched = linear_scheduler(T)
    batches = Batches(images, a.batch, max(2, a.steps), T, device)
    l_ours, l_theirs = same_loss(base, dbase, diffusion, sched, *batches.items[0])   # the same work, checked first
    res = {'preset': a.preset, 'batch': a.batch, 'T': T, 'steps_per_round': a.steps, 'rounds': a.rounds,
           'loss_ours': l_ours, 'loss_diffusers': l_theirs}
    log(f"train: same weights, same batch: loss ddpm_nb {l_ours:.6f}, diffusers {l_theirs:.6f}")

    auto_bf16 = resolve_precision('auto', device)[0] == 'bf16'
    variants = {k: dict(v, bf16=auto_bf16 if v['bf16'] is None else v['bf16']) for k, v in VARIANTS.items()}
    res['auto_precision'] = resolve_precision('auto', device)
    names = [k for k, v in variants.items()
             if (a.compile or not v['compile']) and (k in a.variants if a.variants else k != '+foreach Adam')]
    steps, compile_s = {}, {}
    dm = copy.deepcopy(dbase)
    steps['diffusers fp32'] = diffusers_step(dm, sched, torch.optim.AdamW(dm.parameters(), lr=2e-4), device)
    if a.diffusers_bf16:
        dm2 = copy.deepcopy(dbase).to(memory_format=torch.channels_last)
        opt2 = torch.optim.AdamW(dm2.parameters(), lr=2e-4)
        steps['diffusers bf16+channels_last'] = diffusers_step(dm2, sched, opt2, device, bf16=True, cl=True)
    for k in names:
        v = variants[k]
        m = copy.deepcopy(base)
        if v['cl']: m = m.to(memory_format=torch.channels_last)
        steps[k] = ours_step(m, diffusion, adam(m.parameters(), v['opt']), device, bf16=v['bf16'], cl=v['cl'],
                             compiled=v['compile'])
    # warm-up (and compilation): one step each, two where compiled, timed separately
    for k, f in steps.items():
        sync(device); t0 = time.perf_counter()
        for _ in range(2 if variants.get(k, {}).get('compile') else 1): f(*batches.next())
        sync(device); compile_s[k] = time.perf_counter() - t0
        log(f"train: warm-up {k}: {compile_s[k]:.1f} s")
    fns = {k: (lambda f=f: [f(*batches.next()) for _ in range(a.steps)]) for k, f in steps.items()}
    ts = interleave(fns, a.rounds, device)
    # peak memory: one more step each, apart from the timings (the sampling thread would slow a busy machine's steps)
    mem = {}
    for k, f in steps.items():
        with PeakMem(device) as pm: f(*batches.next())
        mem[k] = pm.peak_mb
    ref, base_k = 'diffusers fp32', 'fp32 (baseline)'
    rows = {}
    for k, v in ts.items():
        ips = [a.batch * a.steps / s for s in v]
        rows[k] = {'img_per_s': median(ips), 'img_per_s_rounds': ips, 'warmup_s': compile_s[k], 'peak_mem_mb': mem[k],
                   'vs_diffusers': ratio_median(ts[ref], v),
                   'vs_baseline': ratio_median(ts[base_k], v) if base_k in ts else None}
        if k in variants: rows[k]['measures'] = variants[k]
    res['rows'] = rows
    # FLOPs of one step (forward + backward) at this batch; GFLOP/s per row
    res['flops_per_step'] = step_flops(base, diffusion, *batches.items[0])
    for k, r in rows.items(): r['gflops'] = res['flops_per_step'] * r['img_per_s'] / a.batch / 1e9
    best = max((k for k in rows if k in variants), key=lambda k: rows[k]['vs_diffusers'])
    res['best'] = best
    log(f"train: best {best}: {rows[best]['vs_diffusers']:.2f}x diffusers")
    return res, base, dbase, diffusion

def bench_train_e2e(a, device, images, precision, compile_, log):
    "`ddpm_nb.train.train()` itself (EMA, clipping, data order, flips, logging, a checkpoint): img/s of its steps."
    from ddpm_nb.config import TrainConfig
    from ddpm_nb.train import read_metrics, train
    n = a.e2e_steps
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(preset=a.preset, steps=n + 2, batch_size=a.batch, out=str(Path(d) / 'run'), log_every=1,
                          save_every=10 ** 9, sample_n=1, sample_steps=2, device=device.type, precision=precision,
                          compile=compile_, max_images=4096)
        t0 = time.perf_counter()
        train(cfg, images=images, progress=False)
        wall = time.perf_counter() - t0
        rows = read_metrics(Path(d) / 'run')
    ips = [r['img_per_s'] for r in rows[2:]]                      # the first two steps: warm-up / compilation
    log(f"train(): precision={precision} compile={compile_}: {median(ips):.1f} img/s")
    return {'precision': precision, 'compile': compile_, 'img_per_s': median(ips), 'img_per_s_steps': ips,
            'wall_s': wall}

def run(a, device, images, log, R, ctx):
    "The training rows into R['train'], `train()`'s into R['train_e2e']; the network pair into `ctx`, for later."
    if 'train' in a.skip: return
    R['train'], ours, theirs, _ = bench_train(a, device, images, log)
    ctx['pair'] = ours, theirs
    if 'e2e' not in a.skip and a.e2e_steps > 0:
        R['train_e2e'] = [bench_train_e2e(a, device, images, p, False, log) for p in a.e2e]

def main(argv=None): return runner.main(argv, __doc__, [sys.modules[__name__]], 'bench/train_speed.py')

if __name__ == '__main__': main()
