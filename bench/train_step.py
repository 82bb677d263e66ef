"""The training step on equal terms: ddpm_nb against diffusers' UNet2DModel loop with the same network, weights,
batch and precision.

Two pairings: the `fashion_mnist` preset at batch 128 and the `fast` recipe's network (the main job's) at batch 32.
Each library is timed in fp32 and under bf16 autocast (and with `--channels-last`, `--compile`, in those too), every
contender in turn within a round (A, B, C, D, A, B, ...), and the ratio is the median over rounds of ratios taken
within a round. The steps are `steps.py`'s, the ones `bench.py` times, with each library's own optimizer: fused Adam
as ddpm_nb's `Trainer` runs it, AdamW as diffusers' example does. `--profile` adds a torch.profiler breakdown of one
bf16 step of each network: the share of convolutions, GroupNorm, SiLU, the optimizer, casts and copies, and the
achieved FLOP rate against this machine's bf16 matmul peak.

    python bench/train_step.py --json bench/results/DATE_cpu_train_step.json     # idle machine, 2 threads
    python bench/train_step.py --quick                                            # smoke test: tiny sizes, seconds
"""
import argparse, copy, json, os, sys, time
from pathlib import Path
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling modules, from any directory
from common import Batches, interleave, ratio_median, median, matmul_peak, machine_info, now_utc
from steps import (adam, build_pair, diffusers_step, linear_diffusion, linear_scheduler, ours_step, same_loss,
                   step_flops)

CPU = torch.device('cpu')

def ddpm_nb_step(model, diffusion, bf16:bool, cl:bool, compiled:bool=False):
    "ddpm_nb's step (`steps.ours_step`) with the optimizer `Trainer` uses: fused Adam."
    return ours_step(model, diffusion, adam(model.parameters(), 'fused', lr=1e-4), CPU, bf16=bf16, cl=cl,
                     compiled=compiled)

def diffusers_loop_step(model, sched, bf16:bool, cl:bool, compiled:bool=False):
    "diffusers' step (`steps.diffusers_step`) with the optimizer of its train_unconditional example: AdamW."
    return diffusers_step(model, sched, adam(model.parameters(), lr=1e-4, cls=torch.optim.AdamW), CPU, bf16=bf16,
                          cl=cl, compiled=compiled)

def pairings(quick:bool):
    "(name, UNet.from_preset arguments, batch) of each pairing."
    from ddpm_nb.config import RECIPES
    if quick: return [('tiny', dict(name='tiny'), 8)]
    return [('fashion_mnist preset', dict(name='fashion_mnist'), 128),
            ("fast recipe's network (main job)", dict(name='fashion_mnist', **RECIPES['fast']['model']), 32)]

def contenders(ours, theirs, diffusion, sched, layouts, compile_):
    "Every (library, precision, layout) step on its own copy of the weights; `compile_`: both bf16 steps compiled too."
    steps = {}
    if compile_:
        steps['ddpm_nb bf16 compiled'] = ddpm_nb_step(copy.deepcopy(ours), diffusion, True, False, True)
        steps['diffusers bf16 compiled'] = diffusers_loop_step(copy.deepcopy(theirs), sched, True, False, True)
    for prec in ('fp32', 'bf16'):
        for cl in layouts:
            lay, fmt = (' channels_last', torch.channels_last) if cl else ('', torch.contiguous_format)
            m = copy.deepcopy(ours).to(memory_format=fmt)
            steps[f'ddpm_nb {prec}{lay}'] = ddpm_nb_step(m, diffusion, prec == 'bf16', cl)
            d = copy.deepcopy(theirs).to(memory_format=fmt)
            steps[f'diffusers {prec}{lay}'] = diffusers_loop_step(d, sched, prec == 'bf16', cl)
    return steps

def time_pairing(name, model_kw, B, images, a, log):
    diffusion, sched = linear_diffusion(1000), linear_scheduler(1000)
    ours, theirs = build_pair(**model_kw)
    batches = Batches(images, B, 4, 1000, CPU)
    lo, lt = same_loss(ours, theirs, diffusion, sched, *batches.items[0])   # the same work: the same loss
    assert abs(lo - lt) < 1e-4 * max(1, abs(lt)), (lo, lt)
    steps = contenders(ours, theirs, diffusion, sched, a.layouts, a.compile and B == a.compile_batch)
    warm = {}
    for k, f in steps.items():                            # warm-up (and a cold compile, timed): two steps each
        t0 = time.perf_counter(); f(*batches.next()); f(*batches.next()); warm[k] = time.perf_counter() - t0
    ts = interleave({k: (lambda f=f: [f(*batches.next()) for _ in range(a.steps)]) for k, f in steps.items()},
                    a.rounds, CPU)
    flops = step_flops(ours, diffusion, *batches.items[0])
    rows = {k: {'img_per_s': median([B * a.steps / s for s in v]),
                'gflops': flops * median([a.steps / s for s in v]) / 1e9, 'warmup_s': warm[k]} for k, v in ts.items()}
    for k in rows:
        lib, rest = k.split(' ', 1)
        if lib == 'ddpm_nb': rows[k]['vs_diffusers_same'] = ratio_median(ts[f'diffusers {rest}'], ts[k])
    best = lambda lib: max((k for k in rows if k.startswith(lib)), key=lambda k: rows[k]['img_per_s'])
    bo, bt = best('ddpm_nb'), best('diffusers')
    res = {'pairing': name, 'model': model_kw, 'batch': B, 'params': sum(p.numel() for p in ours.parameters()),
           'loss_ddpm_nb': lo, 'loss_diffusers': lt, 'flops_per_step': flops, 'rows': rows,
           'best': {'ddpm_nb': bo, 'diffusers': bt, 'ratio': ratio_median(ts[bt], ts[bo])}}
    log(f"\n{name}, batch {B}, {res['params']:,} parameters ({flops / 1e9:.1f} GFLOP a step); median of {a.rounds} "
        f"rounds of {a.steps} steps")
    log(f"{'contender':<30}{'img/s':>8}{'GFLOP/s':>9}{'warm-up s':>10}"
        f"{'vs diffusers, same precision, layout, compile':>48}")
    for k, r in rows.items():
        log(f"{k:<30}{r['img_per_s']:>8.1f}{r['gflops']:>9.1f}{r['warmup_s']:>10.1f}"
            f"{r.get('vs_diffusers_same', float('nan')):>48.2f}")
    log(f"each at its fastest: {bo} / {bt} = {res['best']['ratio']:.2f}x")
    return res

CATEGORIES = [   # (category, substrings of the profiler's op names), first match wins
    ('convolution', ('conv',)), ('GroupNorm', ('group_norm',)), ('SiLU', ('silu',)),
    ('optimizer', ('adam', 'optimizer')),
    ('casts and copies', ('_to_copy', 'copy_', 'aten::to', 'contiguous', 'clone')),
    ('attention', ('scaled_dot_product', 'softmax')),
    ('matmul (time embedding, projections)', ('mm', 'linear', 'bmm')),
    ('elementwise and reductions',
     ('add', 'mul', 'sub', 'div', 'sum', 'mean', 'pow', 'sqrt', 'cat', 'dropout', 'fill', 'zero')),
]

def categorise(name:str)->str:
    n = name.lower()
    for cat, keys in CATEGORIES:
        if any(k in n for k in keys): return cat
    return 'other'

def profile_step(name, f, batches, n=3):
    "Self CPU time of each top-level category over `n` steps (torch.profiler), as shares of the total."
    from torch.profiler import profile, ProfilerActivity
    f(*batches.next())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n): f(*batches.next())
    shares, total = {}, 0.0
    for e in prof.key_averages():
        us = e.self_cpu_time_total
        shares[categorise(e.key)] = shares.get(categorise(e.key), 0.0) + us; total += us
    top = sorted(((e.self_cpu_time_total, e.key) for e in prof.key_averages()), reverse=True)[:10]
    return {'total_ms_per_step': total / n / 1e3,
            'shares': {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
            'top_ops': [(k, us / n / 1e3) for us, k in top]}

def run_profiles(pairs, images, a, log):
    diffusion, sched = linear_diffusion(1000), linear_scheduler(1000)
    out = []
    for name, kw, B in pairs:
        ours, theirs = build_pair(**kw); ours.train(); theirs.train()
        batches = Batches(images, B, 4, 1000, CPU)
        for lib, f in (('ddpm_nb bf16', ddpm_nb_step(ours, diffusion, True, False)),
                       ('diffusers bf16', diffusers_loop_step(theirs, sched, True, False))):
            p = profile_step(lib, f, batches)
            p.update(pairing=name, contender=lib, batch=B)
            out.append(p)
            log(f"\nprofile: {name}, {lib}, batch {B}: {p['total_ms_per_step']:.0f} ms of operator self-time a step")
            for k, v in p['shares'].items(): log(f"  {k:<36}{100 * v:5.1f}%")
            log('  top operators (ms a step): ' + ', '.join(f"{k} {ms:.0f}" for k, ms in p['top_ops']))
    return out

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='tiny network, few steps: a smoke test, not a measurement')
    p.add_argument('--threads', type=int, default=2, help='torch.set_num_threads (2 on an idle 2-core machine)')
    p.add_argument('--rounds', type=int, default=5, help='interleaved rounds')
    p.add_argument('--steps', type=int, default=6, help='training steps per contender per round')
    p.add_argument('--channels-last', action='store_true', help='also time each contender in channels_last')
    p.add_argument('--compile', action='store_true',
                   help='also time both bf16 steps under torch.compile (inductor), for the pairing at --compile-batch')
    p.add_argument('--compile-batch', type=int, default=32,
                   help='the batch of the pairing that gets the compiled contenders')
    p.add_argument('--profile', action='store_true',
                   help='add a torch.profiler breakdown of one bf16 step of each network')
    p.add_argument('--json', help='write the results here')
    a = p.parse_args(argv)
    if a.quick: a.rounds, a.steps = 2, 1
    a.layouts = (False, True) if a.channels_last else (False,)
    torch.set_num_threads(a.threads)
    from ddpm_nb.data import load_images
    images = load_images('fashion_mnist', split='test')[0]
    log = print
    up0 = os.getloadavg()
    info = machine_info(CPU, a.threads)
    log(f"{now_utc()}  {info.get('cpu_model', '')}  torch {torch.__version__}, {a.threads} threads, load {up0[0]:.2f}")
    res = {'date': now_utc(), 'machine': info,
           'command': 'python bench/train_step.py ' + ' '.join(argv or sys.argv[1:]),
           'load_before': up0, 'peak': matmul_peak(CPU, 256 if a.quick else 2048, 2 if a.quick else 5)}
    pk = res['peak']
    log(f"matmul peak ({pk['float32']['n']}^2): fp32 {pk['float32']['gflops_best']:.0f}, "
        f"bf16 {pk['bfloat16']['gflops_best']:.0f} GFLOP/s")
    pairs = pairings(a.quick)
    res['pairings'] = [time_pairing(n, kw, B, images, a, log) for n, kw, B in pairs]
    if a.profile: res['profiles'] = run_profiles(pairs, images, a, log)
    res['load_after'] = os.getloadavg()
    log(f"\nload average before {up0[0]:.2f}, after {res['load_after'][0]:.2f}")
    if a.json:
        with open(a.json, 'w') as fh: json.dump(res, fh, indent=1)
    return res

if __name__ == '__main__': main()
