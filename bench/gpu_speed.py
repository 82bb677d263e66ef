#!/usr/bin/env python
"""On a GPU: the cifar10 preset's training img/s at batch 128 and 256 samples x 1000 steps, against diffusers' loop and
the paper's TPU v3-8 (Ho et al. 2020, App. B: 21 steps/s x 128 = 2,688 img/s; 256 samples x 1000 steps in 17 s).

    python bench/gpu_speed.py [--json out.json] [--no-compile]     # on a machine with CUDA
    python bench/gpu_speed.py --quick --gpu-section                 # a smoke test of this code on a CPU, tiny preset

Training: ddpm_nb in fp32 (tf32 matmuls), under bf16 autocast, bf16 + channels_last, and that compiled; diffusers'
UNet2DModel with the same initial weights in fp32 and bf16. Sampling: the first steps of the chain, scaled to 1000.
"""
from __future__ import annotations
import copy, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling modules, from any directory
import runner
from common import Batches, PeakMem, sync
from steps import adam, diffusers_step, linear_diffusion, linear_scheduler, ours_step

PAPER_TPU_IMG_S = 21 * 128          # Ho et al. 2020, App. B: 21 steps/s at batch 128 on a TPU v3-8 (CIFAR-10)
PAPER_TPU_SAMPLE_S = 17.0           # ... and 256 samples x 1000 steps in 17 s

SKIP = ('gpu',)
FULL = dict(gpu_steps=20, gpu_sample_steps=100, gpu_preset='cifar10', gpu_batch=128, gpu_sample_n=256)
QUICK = dict(gpu_steps=2, gpu_sample_steps=4, gpu_preset='tiny', gpu_batch=4, gpu_sample_n=4)

def add_args(p):
    p.add_argument('--gpu-section', action='store_true', help='run the GPU section on this device too '
                   '(with --quick: a tiny smoke test of that code on the CPU)')

def bench_gpu(a, device, log):
    """cifar10 preset on a GPU: training img/s (fp32 and bf16+channels_last+compile) vs 2,688 img/s;
    256 x 1000-step sampling vs 17 s. `--skip gputrain` leaves out the training rows."""
    from diffusers import UNet2DModel
    from ddpm_nb.unet import UNet
    import ddpm_nb.interop   # UNet.to_diffusers_config, .to_diffusers_state_dict, .from_diffusers
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    T, B, P, N = 1000, a.gpu_batch, a.gpu_preset, a.gpu_sample_n
    d = linear_diffusion(T)
    probe = UNet.from_preset(P); C, Rz = probe.in_ch, probe.resolution; del probe
    u8 = torch.randint(0, 256, (4 * B, C, Rz, Rz), dtype=torch.uint8)
    batches = Batches(u8, B, 4, T, device)
    res = {'preset': P, 'batch': B, 'sample_n': N, 'paper_tpu_v3_8_img_per_s': PAPER_TPU_IMG_S, 'rows': {}}
    sched = linear_scheduler(T)
    if device.type == 'cuda': sched.alphas_cumprod = sched.alphas_cumprod.to(device)
    fused = dict(cl=False, bf16=False, compile=False, opt='fused')
    variants = {'ddpm_nb fp32 (tf32 matmul)': fused, 'ddpm_nb bf16 autocast': dict(fused, bf16=True),
                'ddpm_nb bf16+channels_last': dict(fused, cl=True, bf16=True)}
    if a.compile: variants['ddpm_nb bf16+channels_last+compile'] = dict(fused, cl=True, bf16=True, compile=True)
    variants.update({'diffusers fp32 (tf32 matmul)': dict(diffusers=True, bf16=False),
                     'diffusers bf16 autocast': dict(diffusers=True, bf16=True)})
    for name, v in (variants if 'gputrain' not in a.skip else {}).items():
        torch.manual_seed(0)
        m = UNet.from_preset(P).to(device)
        if v.get('diffusers'):
            dm = UNet2DModel(**m.to_diffusers_config()).to(device)
            dm.load_state_dict(m.to_diffusers_state_dict()); del m
            opt = torch.optim.AdamW(dm.parameters(), lr=2e-4, fused=device.type == 'cuda')
            step = diffusers_step(dm, sched, opt, device, bf16=v['bf16'])
        else:
            if v['cl']: m = m.to(memory_format=torch.channels_last)
            step = ours_step(m, d, adam(m.parameters(), v['opt']), device, bf16=v['bf16'], cl=v['cl'],
                             compiled=v['compile'])
        sync(device); tc = time.perf_counter()
        for _ in range(3): step(*batches.next())
        sync(device); warm = time.perf_counter() - tc
        n = a.gpu_steps
        with PeakMem(device) as pm:
            sync(device); t0 = time.perf_counter()
            for _ in range(n): step(*batches.next())
            sync(device); s = time.perf_counter() - t0
        res['rows'][name] = {'img_per_s': B * n / s, 'vs_paper': B * n / s / PAPER_TPU_IMG_S,
                             'peak_mem_mb': pm.peak_mb, 'warmup_s': warm}
        log(f"gpu train {name}: {B * n / s:.0f} img/s ({B * n / s / PAPER_TPU_IMG_S:.2f}x the paper's TPU v3-8), "
            f"warm-up {warm:.1f} s, peak {pm.peak_mb:.0f} MB")
        del step
        if device.type == 'cuda': torch.cuda.empty_cache()
    ref = res['rows'].get('diffusers fp32 (tf32 matmul)', {}).get('img_per_s')
    for r in res['rows'].values(): r['vs_diffusers_fp32'] = r['img_per_s'] / ref if ref else None
    # sampling: N (256) samples x 1000 steps, timed on the first `gpu_sample_steps` steps and scaled to 1000
    m = UNet.from_preset(P).to(device).eval()
    mcl = copy.deepcopy(m).to(memory_format=torch.channels_last)
    def net(x, t):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return mcl(x.contiguous(memory_format=torch.channels_last), t).float()
    for name, fn, steps in [('fp32 (tf32)', m, a.gpu_sample_steps), ('bf16+channels_last', net, a.gpu_sample_steps)]:
        dd = linear_diffusion(T)
        with torch.no_grad():   # warm-up
            fn(torch.randn(N, C, Rz, Rz, device=device), torch.zeros(N, dtype=torch.long, device=device))
        gen = dd.p_sample_loop_progressive(fn, (N, C, Rz, Rz), device=device)
        sync(device); t0 = time.perf_counter()
        for _ in range(steps): next(gen)
        sync(device); s = (time.perf_counter() - t0) * T / steps
        res[f'sample_{N}x1000_s {name}'] = s
        log(f"gpu sampling {name}: {N} x 1000 steps in {s:.1f} s (paper, 256 samples: {PAPER_TPU_SAMPLE_S} s)")
    res['paper_tpu_v3_8_sample_256x1000_s'] = PAPER_TPU_SAMPLE_S
    return res

def run(a, device, images, log, R, ctx):
    "The GPU rows into R['gpu'], on a CUDA device (or anywhere with --gpu-section)."
    if 'gpu' in a.skip: return
    if device.type == 'cuda' or a.gpu_section: R['gpu'] = bench_gpu(a, device, log)
    else: log('gpu: no CUDA device; --gpu-section runs this section here anyway')

def main(argv=None): return runner.main(argv, __doc__, [sys.modules[__name__]], 'bench/gpu_speed.py', peak=False)

if __name__ == '__main__': main()
