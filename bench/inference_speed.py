"""Sampling speed on this machine: forward passes per second of ddpm_nb's U-Net and diffusers' UNet2DModel of the same
shape and weights, at a sampling batch, under each precision, thread count and memory layout, in one run. Prints a
markdown table (images per second, and ddpm_nb's ratio to diffusers in the same setting) and writes it as JSON.

    python bench/inference_speed.py --json bench/results/2026-12-05_cpu_inference.json [--batch 100] [--reps 20]
    python bench/inference_speed.py --json out.json --compile --threads 2 --layouts contiguous  # torch.compile rows too

With --compile each setting also gets a row of both networks under `torch.compile` (inductor), and the row records
the cold compile: the first call's seconds minus a warm call's, the cost a sampling run pays once per process.
"""
from __future__ import annotations
import argparse, json, os, platform, time
from pathlib import Path
import torch


def shapes():
    "The two networks a user samples here: the shipped preset and the main job's (the fast recipe's)."
    from ddpm_nb.config import RECIPES
    return {'fashion_mnist': {}, 'main job (fast recipe)': dict(RECIPES['fast']['model'])}


def pair(kw, seed=0):
    from diffusers import UNet2DModel
    from ddpm_nb.unet import UNet
    import ddpm_nb.interop   # UNet.to_diffusers_config, .to_diffusers_state_dict, .from_diffusers
    torch.manual_seed(seed)
    ours = UNet.from_preset('fashion_mnist', **kw).eval()
    theirs = UNet2DModel(**ours.to_diffusers_config()).eval()
    theirs.load_state_dict(ours.to_diffusers_state_dict())
    return ours, theirs


def autocast(precision):
    return torch.autocast('cpu', dtype=torch.bfloat16) if precision == 'bf16' else torch.autocast('cpu', enabled=False)


@torch.inference_mode()
def first_call(f, x, t, precision):
    "Seconds of one call (the first call of a compiled network: its compile)."
    t0 = time.perf_counter()
    with autocast(precision): f(x, t)
    return time.perf_counter() - t0


@torch.inference_mode()
def rate(f, x, t, precision, reps):
    "Images per second of f(x, t), the median of `reps` timed calls after 3 warm-up calls."
    times = []
    for i in range(reps + 3):
        t0 = time.perf_counter()
        with autocast(precision): f(x, t)
        if i >= 3: times.append(time.perf_counter() - t0)
    return x.shape[0] / sorted(times)[len(times) // 2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--json', required=True)
    ap.add_argument('--batch', type=int, default=100)
    ap.add_argument('--reps', type=int, default=20)
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--layouts', default='contiguous,channels_last')
    ap.add_argument('--precisions', default='fp32,bf16')
    ap.add_argument('--compile', action='store_true', help='also both networks under torch.compile (contiguous)')
    a = ap.parse_args(argv)
    from ddpm_nb.machine import cpu_flags
    rows, load0 = [], os.getloadavg()
    for name, kw in shapes().items():
        ours, theirs_m = pair(kw)
        theirs = lambda x, t: theirs_m(x, t).sample
        for threads in [int(s) for s in a.threads.split(',')]:
            torch.set_num_threads(threads)
            for precision in a.precisions.split(','):
                for layout in a.layouts.split(',') + (['compiled'] if a.compile else []):
                    x = torch.randn(a.batch, 1, 28, 28)
                    if layout == 'channels_last': x = x.contiguous(memory_format=torch.channels_last)
                    t = torch.randint(0, 1000, (a.batch,))
                    fmt = torch.channels_last if layout == 'channels_last' else torch.contiguous_format
                    # both networks' weights, as the input
                    ours.to(memory_format=fmt); theirs_m.to(memory_format=fmt)
                    f_ours, f_theirs, extra = ours, theirs, {}
                    if layout == 'compiled':                   # a fresh compile per setting: its cold cost is measured
                        torch._dynamo.reset()
                        f_ours, c_theirs = torch.compile(ours), torch.compile(theirs_m)
                        f_theirs = lambda x, t: c_theirs(x, t).sample
                        warm = first_call(ours, x, t, precision)
                        extra = dict(compile_s_ddpm_nb=first_call(f_ours, x, t, precision) - warm,
                                     compile_s_diffusers=first_call(f_theirs, x, t, precision) - warm)
                    r_ours = rate(f_ours, x, t, precision, a.reps)
                    r_theirs = rate(f_theirs, x, t, precision, a.reps)
                    rows.append(dict(network=name, threads=threads, precision=precision, layout=layout,
                                     ddpm_nb=r_ours, diffusers=r_theirs, ratio=r_ours / r_theirs, **extra))
                    cs = (f" (compile {extra['compile_s_ddpm_nb']:.0f} s / {extra['compile_s_diffusers']:.0f} s)"
                          if extra else '')
                    print(f"| {name} | {threads} | {precision} | {layout}{cs} | {r_ours:.0f} | {r_theirs:.0f} "
                          f"| {r_ours / r_theirs:.2f} |", flush=True)
    out = dict(date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
               machine=platform.processor() or platform.machine(),
               cpu_flags=sorted(cpu_flags() & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'}), torch=torch.__version__,
               batch=a.batch, reps=a.reps, load_before=load0, load_after=os.getloadavg(), rows=rows)
    Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == '__main__': main()
