"""The training step on equal terms: ddpm_nb against diffusers' UNet2DModel loop with the same network, weights, batch and precision.

Two pairings: the `fashion_mnist` preset at batch 128 and the `fast` recipe's network (the main job's) at batch 32. Each library is
timed in fp32 and under bf16 autocast, every contender in turn within a round (A, B, C, D, A, B, ...), and the ratio is the median
over rounds of ratios taken within a round. `--profile` adds a torch.profiler breakdown of one bf16 step of each network: the share
of convolutions, GroupNorm, SiLU, the optimizer, casts and copies, and the achieved FLOP rate against this machine's bf16 matmul peak.

    python bench/train_step.py --json bench/results/DATE_cpu_train_step.json            # idle machine, 2 threads
    python bench/train_step.py --quick                                                   # smoke test: tiny sizes, seconds
"""
import argparse, copy, json, os, sys, time
import torch, torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Batches, interleave, ratio_median, median, count_flops, matmul_peak, machine_info, now_utc, sync

def build_pair(model_kw:dict, seed=0):
    "ddpm_nb's UNet (`model_kw` for `UNet.from_preset`) and diffusers' UNet2DModel with the same, perturbed, weights."
    from diffusers import UNet2DModel
    from ddpm_nb.unet import UNet
    import ddpm_nb.interop   # UNet.to_diffusers_config, .to_diffusers_state_dict, .from_diffusers
    torch.manual_seed(seed)
    ours = UNet.from_preset(**model_kw)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():   # the zero-initialised last layers would make the two trivially equal: perturb every weight
        for p in ours.parameters(): p.add_(torch.randn(p.shape, generator=g) * 0.02)
    theirs = UNet2DModel(**ours.to_diffusers_config())
    theirs.load_state_dict(ours.to_diffusers_state_dict())
    return ours, theirs

def ours_step(model, diffusion, bf16:bool, cl:bool, compile_:bool=False):
    "ddpm_nb's step as `Trainer` runs it, less EMA and clipping: `training_losses` under autocast, fused Adam."
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    net = torch.compile(model) if compile_ else model
    def step(x0, t, noise):
        if cl: x0, noise = x0.contiguous(memory_format=torch.channels_last), noise.contiguous(memory_format=torch.channels_last)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = diffusion.training_losses(net, x0, t, noise=noise)['loss'].float().mean()
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step

def diffusers_step(model, sched, bf16:bool, cl:bool, compile_:bool=False):
    "diffusers' train_unconditional loop, less EMA and accelerate: `add_noise`, the UNet under autocast, MSE on ε, AdamW."
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    net = torch.compile(model) if compile_ else model
    def step(x0, t, noise):
        if cl: x0, noise = x0.contiguous(memory_format=torch.channels_last), noise.contiguous(memory_format=torch.channels_last)
        noisy = sched.add_noise(x0, noise, t)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            pred = net(noisy, t).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step

def pairings(quick:bool):
    "(name, UNet.from_preset arguments, batch) of each pairing."
    from ddpm_nb.config import RECIPES
    if quick: return [('tiny', dict(name='tiny'), 8)]
    return [('fashion_mnist preset', dict(name='fashion_mnist'), 128),
            ("fast recipe's network (main job)", dict(name='fashion_mnist', **RECIPES['fast']['model']), 32)]

def contenders(ours, theirs, diffusion, sched, layouts, compile_):
    "Every (library, precision, layout) step on its own copy of the weights; with `compile_`, both bf16 steps compiled too."
    steps = {}
    if compile_:
        steps['ddpm_nb bf16 compiled'] = ours_step(copy.deepcopy(ours), diffusion, True, False, True)
        steps['diffusers bf16 compiled'] = diffusers_step(copy.deepcopy(theirs), sched, True, False, True)
    for prec in ('fp32', 'bf16'):
        for cl in layouts:
            lay = ' channels_last' if cl else ''
            m = copy.deepcopy(ours).to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            steps[f'ddpm_nb {prec}{lay}'] = ours_step(m, diffusion, prec == 'bf16', cl)
            d = copy.deepcopy(theirs).to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            steps[f'diffusers {prec}{lay}'] = diffusers_step(d, sched, prec == 'bf16', cl)
    return steps

def time_pairing(name, model_kw, B, images, a, log):
    from diffusers import DDPMScheduler
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    diffusion = GaussianDiffusion(get_beta_schedule('linear', 1000))
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear', beta_start=1e-4, beta_end=0.02)
    ours, theirs = build_pair(model_kw)
    batches = Batches(images, B, 4, 1000, torch.device('cpu'))
    x0, t, noise = batches.items[0]
    with torch.no_grad():   # the same work: the same loss from the same weights and batch
        lo = diffusion.training_losses(ours.eval(), x0, t, noise=noise)['loss'].mean().item()
        lt = F.mse_loss(theirs.eval()(sched.add_noise(x0, noise, t), t).sample, noise).item()
    assert abs(lo - lt) < 1e-4 * max(1, abs(lt)), (lo, lt)
    ours.train(); theirs.train()
    steps = contenders(ours, theirs, diffusion, sched, a.layouts, a.compile and B == a.compile_batch)
    warm = {}
    for k, f in steps.items():                                      # warm-up (and a cold compile, timed): two steps each
        t0 = time.perf_counter(); f(*batches.next()); f(*batches.next()); warm[k] = time.perf_counter() - t0
    ts = interleave({k: (lambda f=f: [f(*batches.next()) for _ in range(a.steps)]) for k, f in steps.items()}, a.rounds,
                    torch.device('cpu'))
    flops = count_flops(lambda: diffusion.training_losses(copy.deepcopy(ours), x0, t, noise=noise)['loss'].mean().backward())
    rows = {k: {'img_per_s': median([B * a.steps / s for s in v]), 'gflops': flops * median([a.steps / s for s in v]) / 1e9,
                'warmup_s': warm[k]} for k, v in ts.items()}
    for k in rows:
        lib, rest = k.split(' ', 1)
        if lib == 'ddpm_nb': rows[k]['vs_diffusers_same'] = ratio_median(ts[f'diffusers {rest}'], ts[k])
    best = lambda lib: max((k for k in rows if k.startswith(lib)), key=lambda k: rows[k]['img_per_s'])
    bo, bt = best('ddpm_nb'), best('diffusers')
    res = {'pairing': name, 'model': model_kw, 'batch': B, 'params': sum(p.numel() for p in ours.parameters()),
           'loss_ddpm_nb': lo, 'loss_diffusers': lt, 'flops_per_step': flops, 'rows': rows,
           'best': {'ddpm_nb': bo, 'diffusers': bt, 'ratio': ratio_median(ts[bt], ts[bo])}}
    log(f"\n{name}, batch {B}, {res['params']:,} parameters ({flops / 1e9:.1f} GFLOP a step); median of {a.rounds} rounds of "
        f"{a.steps} steps")
    log(f"{'contender':<30}{'img/s':>8}{'GFLOP/s':>9}{'warm-up s':>10}{'vs diffusers, same precision, layout, compile':>48}")
    for k, r in rows.items():
        log(f"{k:<30}{r['img_per_s']:>8.1f}{r['gflops']:>9.1f}{r['warmup_s']:>10.1f}{r.get('vs_diffusers_same', float('nan')):>48.2f}")
    log(f"each at its fastest: {bo} / {bt} = {res['best']['ratio']:.2f}x")
    return res

CATEGORIES = [   # (category, substrings of the profiler's op names), first match wins
    ('convolution', ('conv',)), ('GroupNorm', ('group_norm',)), ('SiLU', ('silu',)),
    ('optimizer', ('adam', 'optimizer')), ('casts and copies', ('_to_copy', 'copy_', 'aten::to', 'contiguous', 'clone')),
    ('attention', ('scaled_dot_product', 'softmax')), ('matmul (time embedding, projections)', ('mm', 'linear', 'bmm')),
    ('elementwise and reductions', ('add', 'mul', 'sub', 'div', 'sum', 'mean', 'pow', 'sqrt', 'cat', 'dropout', 'fill', 'zero')),
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
    return {'total_ms_per_step': total / n / 1e3, 'shares': {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
            'top_ops': [(k, us / n / 1e3) for us, k in top]}

def run_profiles(pairs, images, a, log):
    from diffusers import DDPMScheduler
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    diffusion = GaussianDiffusion(get_beta_schedule('linear', 1000))
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear', beta_start=1e-4, beta_end=0.02)
    out = []
    for name, kw, B in pairs:
        ours, theirs = build_pair(kw); ours.train(); theirs.train()
        batches = Batches(images, B, 4, 1000, torch.device('cpu'))
        for lib, f in (('ddpm_nb bf16', ours_step(ours, diffusion, True, False)), ('diffusers bf16', diffusers_step(theirs, sched, True, False))):
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
    p.add_argument('--compile', action='store_true', help="also time both bf16 steps under torch.compile (inductor), for the pairing at --compile-batch")
    p.add_argument('--compile-batch', type=int, default=32, help='the batch of the pairing that gets the compiled contenders')
    p.add_argument('--profile', action='store_true', help='add a torch.profiler breakdown of one bf16 step of each network')
    p.add_argument('--json', help='write the results here')
    a = p.parse_args(argv)
    if a.quick: a.rounds, a.steps = 2, 1
    a.layouts = (False, True) if a.channels_last else (False,)
    torch.set_num_threads(a.threads)
    from ddpm_nb.data import load_images
    images = load_images('fashion_mnist', split='test')[0]
    log = print
    up0 = os.getloadavg()
    info = machine_info(torch.device('cpu'), a.threads)
    log(f"{now_utc()}  {info.get('cpu', '')}  torch {torch.__version__}, {a.threads} threads, load {up0[0]:.2f}")
    res = {'date': now_utc(), 'machine': info, 'command': 'python bench/train_step.py ' + ' '.join(argv or sys.argv[1:]),
           'load_before': up0, 'peak': matmul_peak(torch.device('cpu'), 256 if a.quick else 2048, 2 if a.quick else 5)}
    log(f"matmul peak (2048^2): fp32 {res['peak']['float32']['gflops_best']:.0f}, bf16 {res['peak']['bfloat16']['gflops_best']:.0f} GFLOP/s")
    pairs = pairings(a.quick)
    res['pairings'] = [time_pairing(n, kw, B, images, a, log) for n, kw, B in pairs]
    if a.profile: res['profiles'] = run_profiles(pairs, images, a, log)
    res['load_after'] = os.getloadavg()
    log(f"\nload average before {up0[0]:.2f}, after {res['load_after'][0]:.2f}")
    if a.json:
        with open(a.json, 'w') as fh: json.dump(res, fh, indent=1)
    return res

if __name__ == '__main__': main()
