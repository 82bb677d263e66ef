#!/usr/bin/env python
"""Benchmarks of ddpm_nb against diffusers (UNet2DModel + DDPMScheduler) and against the machine's measured limits.

    python bench/bench.py [--quick] [--json out.json] [--md out.md] [--threads N] [--no-compile]

Prints a markdown table and (with --json) writes every measurement as JSON. What is measured (issue 6):

1. training throughput (img/s) of the fashion_mnist preset: ddpm_nb's step (package model + GaussianDiffusion.training_losses
   + Adam) against the equivalent diffusers loop (UNet2DModel of the same shape and weights via the interop,
   DDPMScheduler.add_noise, F.mse_loss on the noise, AdamW), fp32 as a user would run it; then an ablation of the measures
   (channels_last, bf16 autocast, torch.compile, foreach/fused Adam, all of them), and `ddpm_nb.train.train()` end to end;
2. sampling: ancestral sampling (GaussianDiffusion.p_sample_loop's generator) against bare network forwards of the same batch
   and against diffusers' DDPMPipeline loop (DDPMScheduler.step) with the same weights;
3. likelihood: calc_bpd_loop's throughput against the network-forward bound (T forwards per image), and the cost of the
   stratified estimator (ddpm_nb.evaluate.bpd_stratified) for a 95% interval of +-0.02 bits/dim, from a pilot;
4. achieved GFLOP/s (FLOPs counted with torch.utils.flop_counter.FlopCounterMode) against a big matmul in fp32 and bf16;
5. peak memory: RSS growth sampled from /proc/self/statm on the CPU, torch.cuda.max_memory_allocated on a GPU.

The machine may be shared: every comparison is interleaved (A, B, C, A, B, C, ... for several rounds), ratios are taken
within a round and the median over rounds is reported. On a GPU the cifar10 preset is also measured against the paper's
TPU v3-8 numbers (21 steps/s x 128 = 2,688 img/s; 256 samples x 1000 steps in 17 s).
"""
from __future__ import annotations
import argparse, copy, ctypes, datetime, json, math, os, platform, statistics, subprocess, sys, tempfile, threading, time, warnings
from pathlib import Path

import torch
import torch.nn.functional as F

PAPER_TPU_IMG_S = 21 * 128          # Ho et al. 2020, App. B: 21 steps/s at batch 128 on a TPU v3-8 (CIFAR-10)
PAPER_TPU_SAMPLE_S = 17.0           # ... and 256 samples x 1000 steps in 17 s

# ----------------------------------------------------------------------------------------------------------------- utils
def now_utc(): return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')

def median(xs): return statistics.median(xs) if xs else float('nan')

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)

def machine_info(device, threads):
    "Date, CPU model and flags, cores, load, library versions, and the GPU if one is used."
    info = {'date': now_utc(), 'python': platform.python_version(), 'torch': torch.__version__, 'threads': threads,
            'cpu_count': os.cpu_count(), 'platform': platform.platform()}
    try:
        lscpu = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
        kv = dict(l.split(':', 1) for l in lscpu.splitlines() if ':' in l)
        kv = {k.strip(): v.strip() for k, v in kv.items()}
        info['cpu_model'] = kv.get('Model name', platform.processor())
        info['cores'] = int(kv.get('CPU(s)', os.cpu_count() or 0))
        flags = kv.get('Flags', '').split()
        info['cpu_flags'] = sorted(f for f in flags if f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512_fp16'))
    except (OSError, subprocess.SubprocessError, ValueError):
        info['cpu_model'] = platform.processor()
    try: info['loadavg'] = list(os.getloadavg())
    except OSError: pass
    import ddpm_nb
    info['ddpm_nb'] = ddpm_nb.__version__
    try:
        import diffusers
        info['diffusers'] = diffusers.__version__
    except ImportError: info['diffusers'] = None            # optional until a section compares with it
    info['device'] = str(device)
    if device.type == 'cuda': info['gpu'] = torch.cuda.get_device_name(device)
    return info

class PeakMem:
    "Peak memory growth of this process during the `with` block, in MiB: RSS sampled every 2 ms (CPU), or CUDA's peak."
    def __init__(self, device): self.device, self.peak_mb = device, float('nan')
    @staticmethod
    def rss():
        try:
            with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
        except OSError:
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    def __enter__(self):
        if self.device.type == 'cuda':
            sync(self.device); torch.cuda.reset_peak_memory_stats(self.device); self.base = torch.cuda.memory_allocated(self.device)
            return self
        try: ctypes.CDLL('libc.so.6').malloc_trim(0)          # hand freed memory back so the baseline is honest
        except (OSError, AttributeError): pass
        self.base = self.top = self.rss(); self._stop = threading.Event()
        def watch():
            while not self._stop.wait(0.002): self.top = max(self.top, self.rss())
        self._t = threading.Thread(target=watch, daemon=True); self._t.start()
        return self
    def __exit__(self, *a):
        if self.device.type == 'cuda':
            sync(self.device); self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
        else:
            self._stop.set(); self._t.join(); self.top = max(self.top, self.rss())
            self.peak_mb = (self.top - self.base) / 2**20

def interleave(fns:dict, rounds:int, device):
    "Run each callable once per round, in turn (A, B, C, A, B, C, ...); returns {name: [seconds per round]}."
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            sync(device); t0 = time.perf_counter(); f(); sync(device)
            out[k].append(time.perf_counter() - t0)
    return out

def ratio_median(num:list, den:list):
    "Median over rounds of num[r] / den[r] (both measured in the same round)."
    return median([a / b for a, b in zip(num, den)])

def count_flops(fn):
    "FLOPs of one call of `fn`, counted by torch.utils.flop_counter (matmuls and convolutions)."
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: fn()
    return fc.get_total_flops()

# ----------------------------------------------------------------------------------------------------------- peak matmul
def matmul_peak(device, n:int, rounds:int):
    "Measured matmul throughput (GFLOP/s) of an n x n product in fp32 and bf16, interleaved; best and median over rounds."
    res = {}
    mats = {dt: (torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)) for dt in (torch.float32, torch.bfloat16)}
    reps = 20 if device.type == 'cuda' else 1
    fns = {str(dt).split('.')[-1]: (lambda a=a, b=b: [a @ b for _ in range(reps)]) for dt, (a, b) in mats.items()}
    for f in fns.values(): f()                                    # warm up
    ts = interleave(fns, rounds, device)
    for k, v in ts.items():
        g = [2 * n ** 3 * reps / s / 1e9 for s in v]
        res[k] = {'n': n, 'gflops_best': max(g), 'gflops_median': median(g)}
    return res

# ------------------------------------------------------------------------------------------------------------- training
VARIANTS = {   # name: measures on top of the fp32 step (channels_last, bf16 autocast, torch.compile, Adam kind). Every norm of the
               # package's U-Net is already GroupNorm32 (float32 statistics), so there is no GroupNorm row.
    'fp32 (baseline)':          dict(cl=False, bf16=False, compile=False, opt='default'),
    '+channels_last':           dict(cl=True,  bf16=False, compile=False, opt='default'),
    '+bf16 autocast':           dict(cl=False, bf16=True,  compile=False, opt='default'),
    '+bf16+channels_last':      dict(cl=True,  bf16=True,  compile=False, opt='default'),
    '+foreach Adam':            dict(cl=False, bf16=False, compile=False, opt='foreach'),
    '+fused Adam':              dict(cl=False, bf16=False, compile=False, opt='fused'),
    '+compile':                 dict(cl=False, bf16=False, compile=True,  opt='default'),
    'auto (what train() does)': dict(cl=False, bf16=None,  compile=False, opt='fused'),   # bf16 where resolve_precision picks it
    'all + compile':            dict(cl=True,  bf16=True,  compile=True,  opt='fused'),
}

def _adam(cls, params, kind, lr=2e-4):
    kw = {'default': {}, 'foreach': {'foreach': True}, 'fused': {'fused': True}}[kind]
    return cls(params, lr=lr, **kw)

class Batches:
    "A fixed pool of (x0, t, noise) training batches on the device, cycled; made once, outside the timings."
    def __init__(self, images, B, n, T, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, images.shape[0], (n, B), generator=g)
        self.items = [(images[i].float().div(127.5).sub(1).to(device), torch.randint(0, T, (B,), generator=g).to(device),
                       torch.randn((B, *images.shape[1:]), generator=g).to(device)) for i in idx]
        self.i = 0
    def next(self):
        b = self.items[self.i % len(self.items)]; self.i += 1
        return b

def ours_step(model, diffusion, opt, v, device):
    "The package's training step as a function of the measures in `v` (no EMA, no clipping: the same work as the diffusers loop)."
    fwd = torch.compile(model) if v['compile'] else model
    amp = torch.bfloat16 if v['bf16'] else None
    mf = torch.channels_last if v['cl'] else torch.contiguous_format
    def step(x0, t, noise):
        if v['cl']: x0, noise = x0.contiguous(memory_format=mf), noise.contiguous(memory_format=mf)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = diffusion.training_losses(fwd, x0, t, noise=noise)['loss'].float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step

def diffusers_step(dmodel, sched, opt, device, bf16=False, cl=False):
    "The diffusers training loop (as in diffusers' train_unconditional example, without EMA/accelerate): add_noise, MSE on ε, AdamW."
    amp = torch.bfloat16 if bf16 else None
    def step(x0, t, noise):
        if cl: x0, noise = x0.contiguous(memory_format=torch.channels_last), noise.contiguous(memory_format=torch.channels_last)
        noisy = sched.add_noise(x0, noise, t)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            pred = dmodel(noisy, t).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step

def build_pair(preset, device, seed=0):
    "ddpm_nb's UNet of `preset` and diffusers' UNet2DModel with the same weights (through the package's interop)."
    from diffusers import UNet2DModel
    from ddpm_nb.unet import UNet
    import ddpm_nb.interop   # UNet.to_diffusers_config, .to_diffusers_state_dict, .from_diffusers
    torch.manual_seed(seed)
    ours = UNet.from_preset(preset)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():   # the zero-initialised last layers would make the comparison trivially equal: perturb them all
        for p in ours.parameters(): p.add_(torch.randn(p.shape, generator=g) * 0.02)
    theirs = UNet2DModel(**ours.to_diffusers_config())
    theirs.load_state_dict(ours.to_diffusers_state_dict())
    return ours.to(device), theirs.to(device)

def bench_train(a, device, images, log):
    from diffusers import DDPMScheduler
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    T = 1000
    diffusion = GaussianDiffusion(get_beta_schedule('linear', T))
    base, dbase = build_pair(a.preset, device)
    sched = DDPMScheduler(num_train_timesteps=T, beta_schedule='linear', beta_start=1e-4, beta_end=0.02)
    # equivalence first: the same weights, the same batch, the same loss
    batches = Batches(images, a.batch, max(2, a.steps), T, device)
    x0, t, noise = batches.items[0]
    base.eval(); dbase.eval()
    with torch.no_grad():
        l_ours = diffusion.training_losses(base, x0, t, noise=noise)['loss'].mean().item()
        l_theirs = F.mse_loss(dbase(sched.add_noise(x0, noise, t), t).sample, noise).item()
    base.train(); dbase.train()
    res = {'preset': a.preset, 'batch': a.batch, 'T': T, 'steps_per_round': a.steps, 'rounds': a.rounds,
           'loss_ours': l_ours, 'loss_diffusers': l_theirs}
    log(f"train: same weights, same batch: loss ddpm_nb {l_ours:.6f}, diffusers {l_theirs:.6f}")

    from ddpm_nb.machine import resolve_precision
    auto_bf16 = resolve_precision('auto', device)[0] == 'bf16'
    for v in VARIANTS.values():
        if v['bf16'] is None: v['bf16'] = auto_bf16
    res['auto_precision'] = resolve_precision('auto', device)
    names = [k for k in VARIANTS if (a.compile or not VARIANTS[k]['compile']) and (k in a.variants if a.variants else k != '+foreach Adam')]
    steps, compile_s, models = {}, {}, {}
    dm = copy.deepcopy(dbase); steps['diffusers fp32'] = diffusers_step(dm, sched, torch.optim.AdamW(dm.parameters(), lr=2e-4), device)
    models['diffusers fp32'] = dm
    if a.diffusers_bf16:
        dm2 = copy.deepcopy(dbase).to(memory_format=torch.channels_last)
        steps['diffusers bf16+channels_last'] = diffusers_step(dm2, sched, torch.optim.AdamW(dm2.parameters(), lr=2e-4), device, bf16=True, cl=True)
        models['diffusers bf16+channels_last'] = dm2
    for k in names:
        v = VARIANTS[k]
        m = copy.deepcopy(base)
        if v['cl']: m = m.to(memory_format=torch.channels_last)
        steps[k] = ours_step(m, diffusion, _adam(torch.optim.Adam, m.parameters(), v['opt']), v, device)
        models[k] = m
    # warm-up (and compilation): one step each, two where compiled, timed separately
    for k, f in steps.items():
        sync(device); t0 = time.perf_counter()
        for _ in range(2 if VARIANTS.get(k, {}).get('compile') else 1): f(*batches.next())
        sync(device); compile_s[k] = time.perf_counter() - t0
        log(f"train: warm-up {k}: {compile_s[k]:.1f} s")
    fns = {k: (lambda f=f: [f(*batches.next()) for _ in range(a.steps)]) for k, f in steps.items()}
    ts = interleave(fns, a.rounds, device)
    # peak memory: one more step each, apart from the timings (the sampling thread would slow a busy machine's timed steps)
    mem = {}
    for k, f in steps.items():
        with PeakMem(device) as pm: f(*batches.next())
        mem[k] = pm.peak_mb
    ref, base_k = 'diffusers fp32', 'fp32 (baseline)'
    rows = {}
    for k, v in ts.items():
        ips = [a.batch * a.steps / s for s in v]
        rows[k] = {'img_per_s': median(ips), 'img_per_s_rounds': ips, 'warmup_s': compile_s[k], 'peak_mem_mb': mem[k],
                   'vs_diffusers': ratio_median(ts[ref], v), 'vs_baseline': ratio_median(ts[base_k], v) if base_k in ts else None}
        if k in VARIANTS: rows[k]['measures'] = VARIANTS[k]
    res['rows'] = rows
    # FLOPs of one step (forward + backward) at this batch; GFLOP/s per row
    m = copy.deepcopy(base); x0, t, noise = batches.items[0]
    res['flops_per_step'] = count_flops(lambda: diffusion.training_losses(m, x0, t, noise=noise)['loss'].mean().backward())
    for k, r in rows.items(): r['gflops'] = res['flops_per_step'] * r['img_per_s'] / a.batch / 1e9
    best = max((k for k in rows if k in VARIANTS), key=lambda k: rows[k]['vs_diffusers'])
    res['best'] = best
    log(f"train: best {best}: {rows[best]['vs_diffusers']:.2f}x diffusers")
    return res, base, dbase, diffusion

def bench_train_e2e(a, device, images, precision, compile_, log):
    "`ddpm_nb.train.train()` itself (EMA, clipping, data order, flips, logging, a checkpoint): img/s from its metrics.jsonl."
    from ddpm_nb.config import TrainConfig
    from ddpm_nb.train import train
    n = a.e2e_steps
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(preset=a.preset, steps=n + 2, batch_size=a.batch, out=str(Path(d) / 'run'), log_every=1,
                          save_every=10 ** 9, sample_n=1, sample_steps=1, device=device.type, precision=precision,
                          compile=compile_, max_images=4096)
        t0 = time.perf_counter()
        train(cfg, images=images, progress=False)
        wall = time.perf_counter() - t0
        rows = [json.loads(l) for l in (Path(d) / 'run' / 'metrics.jsonl').read_text().splitlines()]
    ips = [r['img_per_s'] for r in rows[2:]]                      # the first two steps: warm-up / compilation
    log(f"train(): precision={precision} compile={compile_}: {median(ips):.1f} img/s")
    return {'precision': precision, 'compile': compile_, 'img_per_s': median(ips), 'img_per_s_steps': ips, 'wall_s': wall}

# ------------------------------------------------------------------------------------------------------------- sampling
class Timed(torch.nn.Module):
    "Wraps a network and adds up the time spent inside it (CPU: no syncs needed), so a loop's overhead is measured in the same run."
    def __init__(self, net, device):
        super().__init__(); self.net, self.device, self.seconds, self.calls = net, device, 0.0, 0
    def forward(self, *args, **kw):
        sync(self.device); t0 = time.perf_counter()
        out = self.net(*args, **kw)
        sync(self.device); self.seconds += time.perf_counter() - t0; self.calls += 1
        return out

def bench_sampling(a, device, ours, theirs, log, B=None, T=1000, steps=None, block=None, extra=True):
    """Ancestral sampling over the first `steps` steps of the T-step chain, interleaved in blocks of `block` steps:
    ddpm_nb's p_sample_loop (its generator p_sample_loop_progressive), bare forwards of the same batch, diffusers' DDPMPipeline loop."""
    from diffusers import DDPMScheduler
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    B, steps, block = B or a.sample_batch, steps or a.sample_steps, block or a.sample_block
    steps = min(steps, T); block = min(block, steps)
    C, R = ours.in_ch, ours.resolution
    ours, theirs = ours.eval(), theirs.eval()
    diffusion = GaussianDiffusion(get_beta_schedule('linear', T))
    sched = DDPMScheduler(num_train_timesteps=T, beta_schedule='linear', beta_start=1e-4, beta_end=0.02,
                          variance_type='fixed_large', clip_sample=True)     # the paper's σ² = β and x̂0 clipping, like ddpm_nb's default
    sched.set_timesteps(T)
    g = torch.Generator(device=device).manual_seed(0)
    xT = torch.randn((B, C, R, R), generator=g, device=device)
    state = {}
    def ours_blocks(model, key):
        gen = diffusion.p_sample_loop_progressive(model, (B, C, R, R), noise=xT.clone(), generator=torch.Generator(device=device).manual_seed(1))
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
    with torch.no_grad():
        for _ in range(2): ours(xb, torch.zeros(B, dtype=torch.long, device=device)); theirs(xb, torch.zeros(B, dtype=torch.long, device=device))
    timed.seconds = 0.0
    ts = interleave(fns, steps // block, device)
    tot = {k: sum(v) for k, v in ts.items()}
    ref_bare, ref_d = 'bare forwards (ddpm_nb UNet)', 'diffusers DDPMScheduler loop'
    rows = {k: {'s_per_step': tot[k] / (steps // block * block), 's_1000_steps_est': tot[k] / (steps // block * block) * T,
                'vs_bare_forwards': ratio_median(v, ts[ref_bare]), 'speedup_vs_diffusers_loop': ratio_median(ts[ref_d], v)} for k, v in ts.items()}
    in_net = timed.seconds
    res = {'batch': B, 'T': T, 'steps_measured': steps // block * block, 'block': block, 'rows': rows,
           'overhead_vs_bare': rows['ddpm_nb p_sample_loop']['vs_bare_forwards'] - 1,
           'overhead_in_run': tot['ddpm_nb p_sample_loop'] / in_net - 1 if in_net > 0 else float('nan')}
    def one_forward():
        with torch.no_grad(): ours(xb, torch.zeros(B, dtype=torch.long, device=device))
    res['flops_per_forward'] = count_flops(one_forward)
    for k, r in rows.items(): r['gflops'] = res['flops_per_forward'] / r['s_per_step'] / 1e9
    with PeakMem(device) as pm:
        with torch.no_grad(): diffusion.p_sample(ours, xb, torch.full((B,), T - 1, device=device, dtype=torch.long))
    res['peak_mem_mb_per_step'] = pm.peak_mb
    log(f"sampling: overhead vs bare forwards {100 * res['overhead_vs_bare']:+.1f}% (in-run {100 * res['overhead_in_run']:+.1f}%), "
        f"vs diffusers loop {rows['ddpm_nb p_sample_loop']['speedup_vs_diffusers_loop']:.2f}x")
    return res

# ----------------------------------------------------------------------------------------------------------- likelihood
def find_trained(preset):
    """A trained fashion_mnist model and where it came from: $DDPM_NB_BENCH_CKPT if set (it must load), else the run directory
    runs/fashion_mnist under the current directory if it holds a checkpoint, else the package's shipped weights; None for other presets."""
    if preset != 'fashion_mnist': return None
    from ddpm_nb.checkpoint import load_model
    if os.environ.get('DDPM_NB_BENCH_CKPT'): return load_model(os.environ['DDPM_NB_BENCH_CKPT'])[0], os.environ['DDPM_NB_BENCH_CKPT']
    if Path('runs/fashion_mnist').is_dir():
        try: return load_model('runs/fashion_mnist')[0], 'runs/fashion_mnist'
        except FileNotFoundError: pass                      # a run directory without a checkpoint yet
    return load_model('fashion_mnist')[0], 'fashion_mnist (shipped weights)'

def bench_bpd(a, device, ours, images, log):
    "calc_bpd_loop against T bare forwards (interleaved whole runs), and the stratified estimator's cost from a pilot."
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    T, B = a.bpd_T, a.bpd_batch
    trained = find_trained(a.preset)
    model, src = (trained if trained else (ours, 'random init (+0.02 N(0,1) perturbation): no trained checkpoint found'))
    model = model.to(device).eval()
    x0 = images[:B].float().div(127.5).sub(1).to(device)
    d = GaussianDiffusion(get_beta_schedule('linear', T))
    timed = Timed(model, device)
    def bpd(): d.calc_bpd_loop(timed, x0, generator=torch.Generator(device=device).manual_seed(0))
    def bare():
        with torch.no_grad():
            for i in range(T - 1, -1, -1): model(x0, torch.full((B,), i, device=device, dtype=torch.long))
    bpd(); timed.seconds = 0.0
    ts = interleave({'calc_bpd_loop': bpd, 'bare forwards': bare}, a.bpd_rounds, device)
    res = {'T': T, 'batch': B, 'model': src, 'rounds': a.bpd_rounds,
           'calc_bpd_loop_img_per_s': B / median(ts['calc_bpd_loop']), 'bound_img_per_s': B / median(ts['bare forwards']),
           'fraction_of_bound': ratio_median(ts['bare forwards'], ts['calc_bpd_loop']),
           'fraction_of_bound_in_run': timed.seconds / sum(ts['calc_bpd_loop'])}
    with PeakMem(device) as pm: d.calc_bpd_loop(model, x0[:B], generator=torch.Generator(device=device).manual_seed(0))
    res['peak_mem_mb'] = pm.peak_mb
    log(f"bpd: calc_bpd_loop at {100 * res['fraction_of_bound']:.1f}% of the forward bound (in-run {100 * res['fraction_of_bound_in_run']:.1f}%)")
    res['stratified'] = stratified_cost(a, device, model, images, src, log)
    return res

def stratified_cost(a, device, model, images, src, log, half_width=0.02, z=1.959964):
    """Pilot of ddpm_nb.evaluate.bpd_stratified with the paper's T=1000: two independent estimates per image for each k
    give the within-image variance (k middle terms) and, with the spread over images, the variance of one estimate.
    Cost for a 95% interval of +-`half_width` bits/dim on the mean bpd of a dataset: n = (z s / h)^2 images x (k+1) forwards."""
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    from ddpm_nb.evaluate import bpd_stratified
    d = GaussianDiffusion(get_beta_schedule('linear', 1000))
    m = a.pilot_images
    x0 = images[-m:].float().div(127.5).sub(1).to(device)     # held apart from the batch used above
    out = {'pilot_images': m, 'half_width_bpd': half_width, 'confidence': 0.95, 'model': src, 'by_k': {}}
    timed = Timed(model, device)
    for k in a.pilot_k:
        e = [bpd_stratified(d, timed, x0, k=k, generator=torch.Generator().manual_seed(10 * k + r))['total_bpd'].double().cpu() for r in range(2)]
        within = ((e[0] - e[1]) ** 2 / 2).mean().item()                  # E[(e1-e2)^2]/2 = per-image variance of one estimate
        total = torch.cat(e).var().item() if m > 1 else within             # over images and draws: what one dataset draw sees
        fwd_per_img = k + 1
        n_img = math.ceil((z * math.sqrt(total) / half_width) ** 2)
        k_single = math.ceil(k * (z * math.sqrt(within) / half_width) ** 2)   # one image to +-h: variance ~ 1/k
        s_fwd = timed.seconds / max(1, timed.calls) / m                    # seconds per network forward per image
        r = {'mean_bpd': torch.cat(e).mean().item(), 'var_within_image': within, 'var_one_estimate': total,
             'images_needed': n_img, 'forwards_needed': n_img * fwd_per_img, 'seconds_est': n_img * fwd_per_img * s_fwd,
             'forwards_per_image_single_image_interval': k_single + 1}
        out['by_k'][str(k)] = r
        log(f"bpd_stratified k={k}: mean {r['mean_bpd']:.3f} bpd, sd within {math.sqrt(within):.3f}, sd total {math.sqrt(total):.3f}; "
            f"±{half_width} needs {n_img} images x {fwd_per_img} forwards = {r['forwards_needed']} forwards (~{r['seconds_est']:.0f} s)")
    out['seconds_per_forward_per_image'] = timed.seconds / max(1, timed.calls) / m
    best = min(out['by_k'], key=lambda k: out['by_k'][k]['forwards_needed'])
    out['best_k'] = int(best)
    out.update(full_loop_cost(out, half_width, z))
    return out

def full_loop_cost(st, half_width=0.02, z=1.959964, T=1000):
    """The exact calc_bpd_loop route to the same interval: its only randomness left is which images (and one x_t per term),
    so the images needed follow from the between-image variance (one estimate's variance minus the within-image part,
    taken at the pilot k with the smallest within-image variance), each image costing T forwards."""
    k = min(st['by_k'], key=lambda k: st['by_k'][k]['var_within_image']); r = st['by_k'][k]   # the most precise draw
    var_between = max(r['var_one_estimate'] - r['var_within_image'], 1e-12)
    n = math.ceil((z * math.sqrt(var_between) / half_width) ** 2)
    return {'var_between_images': var_between, 'full_loop_images_needed': n, 'full_loop_forwards_needed': n * T}

# ------------------------------------------------------------------------------------------------------------------ GPU
def bench_gpu(a, device, log):
    "cifar10 preset on a GPU: training img/s (fp32 and bf16+channels_last+compile) vs 2,688 img/s; 256 x 1000-step sampling vs 17 s."
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    from ddpm_nb.unet import UNet
    import ddpm_nb.interop   # UNet.to_diffusers_config, .to_diffusers_state_dict, .from_diffusers
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    T, B, P, N = 1000, a.gpu_batch, a.gpu_preset, a.gpu_sample_n
    d = GaussianDiffusion(get_beta_schedule('linear', T))
    probe = UNet.from_preset(P); C, Rz = probe.in_ch, probe.resolution; del probe
    u8 = torch.randint(0, 256, (4 * B, C, Rz, Rz), dtype=torch.uint8)
    batches = Batches(u8, B, 4, T, device)
    res = {'preset': P, 'batch': B, 'sample_n': N, 'paper_tpu_v3_8_img_per_s': PAPER_TPU_IMG_S, 'rows': {}}
    from diffusers import UNet2DModel, DDPMScheduler
    sched = DDPMScheduler(num_train_timesteps=T, beta_schedule='linear')
    if device.type == 'cuda': sched.alphas_cumprod = sched.alphas_cumprod.to(device)
    variants = {'ddpm_nb fp32 (tf32 matmul)': dict(cl=False, bf16=False, compile=False, opt='fused'),
                'ddpm_nb bf16 autocast': dict(cl=False, bf16=True, compile=False, opt='fused'),
                'ddpm_nb bf16+channels_last': dict(cl=True, bf16=True, compile=False, opt='fused')}
    if a.compile: variants['ddpm_nb bf16+channels_last+compile'] = dict(cl=True, bf16=True, compile=True, opt='fused')
    variants.update({'diffusers fp32 (tf32 matmul)': dict(diffusers=True, bf16=False), 'diffusers bf16 autocast': dict(diffusers=True, bf16=True)})
    for name, v in (variants if 'gputrain' not in a.skip else {}).items():
        torch.manual_seed(0)
        m = UNet.from_preset(P).to(device)
        if v.get('diffusers'):
            dm = UNet2DModel(**m.to_diffusers_config()).to(device); dm.load_state_dict(m.to_diffusers_state_dict()); del m
            step = diffusers_step(dm, sched, torch.optim.AdamW(dm.parameters(), lr=2e-4, fused=device.type == 'cuda'), device, bf16=v['bf16'])
        else:
            if v['cl']: m = m.to(memory_format=torch.channels_last)
            step = ours_step(m, d, _adam(torch.optim.Adam, m.parameters(), v['opt']), v, device)
        sync(device); tc = time.perf_counter()
        for _ in range(3): step(*batches.next())
        sync(device); warm = time.perf_counter() - tc
        n = a.gpu_steps
        with PeakMem(device) as pm:
            sync(device); t0 = time.perf_counter()
            for _ in range(n): step(*batches.next())
            sync(device); s = time.perf_counter() - t0
        res['rows'][name] = {'img_per_s': B * n / s, 'vs_paper': B * n / s / PAPER_TPU_IMG_S, 'peak_mem_mb': pm.peak_mb, 'warmup_s': warm}
        log(f"gpu train {name}: {B * n / s:.0f} img/s ({B * n / s / PAPER_TPU_IMG_S:.2f}x the paper's TPU v3-8), warm-up {warm:.1f} s, peak {pm.peak_mb:.0f} MB")
        del step
        if device.type == 'cuda': torch.cuda.empty_cache()
    ref = res['rows'].get('diffusers fp32 (tf32 matmul)', {}).get('img_per_s')
    for r in res['rows'].values(): r['vs_diffusers_fp32'] = r['img_per_s'] / ref if ref else None
    # sampling: N (256) samples x 1000 steps, timed on the first `gpu_sample_steps` steps and scaled to 1000
    m = UNet.from_preset(P).to(device).eval()
    mcl = copy.deepcopy(m).to(memory_format=torch.channels_last)
    def net(x, t):
        with torch.autocast(device.type, dtype=torch.bfloat16): return mcl(x.contiguous(memory_format=torch.channels_last), t).float()
    for name, fn, steps in [('fp32 (tf32)', m, a.gpu_sample_steps), ('bf16+channels_last', net, a.gpu_sample_steps)]:
        dd = GaussianDiffusion(get_beta_schedule('linear', T))
        with torch.no_grad(): fn(torch.randn(N, C, Rz, Rz, device=device), torch.zeros(N, dtype=torch.long, device=device))
        gen = dd.p_sample_loop_progressive(fn, (N, C, Rz, Rz), device=device)
        sync(device); t0 = time.perf_counter()
        for _ in range(steps): next(gen)
        sync(device); s = (time.perf_counter() - t0) * T / steps
        res[f'sample_{N}x1000_s {name}'] = s
        log(f"gpu sampling {name}: {N} x 1000 steps in {s:.1f} s (paper, 256 samples: {PAPER_TPU_SAMPLE_S} s)")
    res['paper_tpu_v3_8_sample_256x1000_s'] = PAPER_TPU_SAMPLE_S
    return res

# -------------------------------------------------------------------------------------------------------------- tables
def fmt(x, nd=2):
    if x is None or (isinstance(x, float) and math.isnan(x)): return '–'
    return f'{x:.{nd}f}' if isinstance(x, float) else str(x)

def to_markdown(R):
    M, L = R['meta'], []
    L.append(f"**{M['date']}** · `{M['command']}` · {M.get('cpu_model')} ({M.get('cores')} cores, flags {', '.join(M.get('cpu_flags', []))}) · "
             f"torch {M['torch']}, diffusers {M.get('diffusers')}, ddpm_nb {M.get('ddpm_nb')} · torch threads {M['threads']} · "
             f"load average at start {', '.join(f'{x:.1f}' for x in M.get('loadavg', []))} · mode {'quick' if M['quick'] else 'full'} · "
             f"data: {M.get('data', 'not recorded')} · {M['wall_s']:.0f} s")
    L.append('')
    P = R.get('matmul_peak', {})
    if P:
        L.append('| matmul peak | n | best GFLOP/s | median GFLOP/s |\n|---|---|---|---|')
        for k, v in P.items(): L.append(f"| {k} | {v['n']} | {v['gflops_best']:.1f} | {v['gflops_median']:.1f} |")
        L.append('')
    Tr = R.get('train')
    if Tr:
        L.append(f"**Training**, preset `{Tr['preset']}`, batch {Tr['batch']}, {Tr['rounds']} interleaved rounds of {Tr['steps_per_round']} step(s); "
                 f"{Tr['flops_per_step'] / Tr['batch'] / 1e9:.2f} GFLOP per image (fwd+bwd). Ratios are medians of per-round ratios.\n")
        L.append('| variant | img/s | × diffusers fp32 | × ddpm_nb fp32 | GFLOP/s | % of fp32 / bf16 matmul peak | warm-up s | peak mem MiB |\n|---|---|---|---|---|---|---|---|')
        pf, pb = P.get('float32', {}).get('gflops_best'), P.get('bfloat16', {}).get('gflops_best')
        for k, r in Tr['rows'].items():
            peak = f"{100 * r['gflops'] / pf:.0f}% / {100 * r['gflops'] / pb:.0f}%" if pf and pb else '–'
            L.append(f"| {k} | {r['img_per_s']:.1f} | {fmt(r['vs_diffusers'])} | {fmt(r['vs_baseline'])} | {r['gflops']:.1f} | {peak} | {r['warmup_s']:.1f} | {fmt(r.get('peak_mem_mb'), 0)} |")
        for e in R.get('train_e2e', []):
            L.append(f"| `train()` precision={e['precision']} compile={e['compile']} (EMA, clip, data)* | {e['img_per_s']:.1f} | – | – | – | – | – | – |")
        if R.get('train_e2e'): L.append('\n\\* not interleaved with the rows above (a separate run right after them, median of its steps after two warm-up steps): its img/s is not comparable on a busy machine, so no ratio is given.')
        L.append('')
    S = R.get('sampling')
    if S:
        L.append(f"**Sampling**, batch {S['batch']}, the first {S['steps_measured']} steps of the T={S['T']} chain, interleaved in blocks of {S['block']} steps "
                 f"(per-step cost does not depend on t; the 1000-step column extrapolates).\n")
        L.append('| loop | s/step | s per 1000 steps (est.) | × bare forwards | speed-up vs diffusers loop | GFLOP/s |\n|---|---|---|---|---|---|')
        for k, r in S['rows'].items():
            L.append(f"| {k} | {r['s_per_step']:.4f} | {r['s_1000_steps_est']:.1f} | {r['vs_bare_forwards']:.3f} | {r['speedup_vs_diffusers_loop']:.2f} | {r['gflops']:.1f} |")
        L.append(f"\nOverhead of p_sample_loop over bare forwards: {100 * S['overhead_vs_bare']:+.1f}% (interleaved), "
                 f"{100 * S['overhead_in_run']:+.1f}% (time outside the network within the same run); target ≤ 3%.\n")
    B = R.get('bpd')
    if B:
        L.append(f"**Likelihood**, calc_bpd_loop with T={B['T']}, batch {B['batch']}, {B['rounds']} interleaved rounds; model: {B['model']}.\n")
        L.append(f"| calc_bpd_loop img/s | forward bound img/s | fraction of bound (interleaved) | fraction (in-run) |\n|---|---|---|---|\n"
                 f"| {B['calc_bpd_loop_img_per_s']:.3f} | {B['bound_img_per_s']:.3f} | {B['fraction_of_bound']:.3f} | {B['fraction_of_bound_in_run']:.3f} |\n")
        St = B['stratified']
        L.append(f"Stratified estimator (`bpd_stratified`, T=1000), pilot of {St['pilot_images']} images × 2 draws, for a 95% interval of ±{St['half_width_bpd']} bits/dim "
                 f"on a dataset's mean bpd ({St['seconds_per_forward_per_image'] * 1e3:.1f} ms per forward per image here):\n")
        L.append('| k (middle terms) | mean bpd | sd within image | sd of one estimate | images | network forwards | est. s | forwards/image for ±0.02 on one image |\n|---|---|---|---|---|---|---|---|')
        for k, r in St['by_k'].items():
            L.append(f"| {k} | {r['mean_bpd']:.3f} | {math.sqrt(r['var_within_image']):.3f} | {math.sqrt(r['var_one_estimate']):.3f} | {r['images_needed']} | "
                     f"{r['forwards_needed']} | {r['seconds_est']:.0f} | {r['forwards_per_image_single_image_interval']} |")
        fl = full_loop_cost(St, St['half_width_bpd'])
        L.append(f"\nThe exact route, calc_bpd_loop (T=1000 forwards per image), needs about {fl['full_loop_images_needed']} images for the same interval "
                 f"(between-image sd {math.sqrt(fl['var_between_images']):.3f}): {fl['full_loop_forwards_needed']} forwards.\n")
    G = R.get('gpu')
    if G:
        L.append(f"**{'GPU' if R['meta'].get('gpu') else 'GPU section'}** ({R['meta'].get('gpu', R['meta']['device'])}), `{G['preset']}` preset, batch {G['batch']}:\n")
        L.append('| variant | img/s | × diffusers fp32 | × paper TPU v3-8 (2,688 img/s) | peak mem MiB | warm-up s |\n|---|---|---|---|---|---|')
        for k, r in G['rows'].items():
            L.append(f"| {k} | {r['img_per_s']:.0f} | {fmt(r.get('vs_diffusers_fp32'))} | {r['vs_paper']:.2f} | {r['peak_mem_mb']:.0f} | {fmt(r.get('warmup_s'), 1)} |")
        for k, v in G.items():
            if k.startswith('sample_') and 'x1000_s ' in k: L.append(f"\n{G['sample_n']} samples × 1000 steps ({k.split(' ', 1)[1]}): {v:.1f} s (paper, 256 samples on a TPU v3-8: {PAPER_TPU_SAMPLE_S} s)")
    return '\n'.join(L)

# ---------------------------------------------------------------------------------------------------------------- main
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help="tiny sizes (preset 'tiny', T=10 chains, no compile): a smoke test in seconds, not a measurement")
    p.add_argument('--json', help='write all results to this JSON file')
    p.add_argument('--render', help='print (and with --md write) the table of a saved JSON run instead of measuring')
    p.add_argument('--md', help='write the markdown table to this file')
    p.add_argument('--threads', type=int, default=1, help='torch.set_num_threads (default 1: on a shared 2-core machine 2 threads are slower, OpenMP barriers wait on descheduled threads)')
    p.add_argument('--device', default='auto', help="'auto' (cuda if available), 'cpu' or 'cuda'")
    p.add_argument('--data', default='fashion_mnist', help="the images to train and score on: a load_images name or path (its test split), 28x28 grayscale for the default presets")
    p.add_argument('--synthetic', action='store_true', help='random uint8 images instead of --data (no dataset needed; the table says so)')
    p.add_argument('--no-compile', dest='compile', action='store_false', help='leave out the torch.compile variants')
    p.add_argument('--variants', default='', help='only these training variants (names separated by ";"), e.g. "+compile;all + compile"')
    p.add_argument('--e2e', default='bf16', help='precisions for the end-to-end ddpm_nb.train.train() rows, comma-separated (fp32,bf16)')
    p.add_argument('--diffusers-bf16', action='store_true', help='also time the diffusers loop with bf16 autocast + channels_last')
    p.add_argument('--gpu-section', action='store_true', help='run the GPU section on this device too (with --quick: a tiny smoke test of that code on the CPU)')
    p.add_argument('--skip', default='', help='comma-separated sections to skip: peak,train,e2e,sample,bpd,gpu')
    p.add_argument('--preset', default=None); p.add_argument('--batch', type=int, default=None)
    p.add_argument('--rounds', type=int, default=None); p.add_argument('--steps', type=int, default=None)
    p.add_argument('--sample-steps', type=int, default=None); p.add_argument('--sample-block', type=int, default=None)
    p.add_argument('--sample-batch', type=int, default=None); p.add_argument('--bpd-T', type=int, default=None)
    p.add_argument('--bpd-batch', type=int, default=None); p.add_argument('--bpd-rounds', type=int, default=None)
    a = p.parse_args(argv)
    full = dict(preset='fashion_mnist', batch=16, rounds=3, steps=1, sample_steps=30, sample_block=10, sample_batch=4,
                bpd_T=10, bpd_batch=4, bpd_rounds=3, pilot_images=8, pilot_k=[1, 8], e2e_steps=3, matmul_n=2048,
                gpu_steps=20, gpu_sample_steps=100, gpu_preset='cifar10', gpu_batch=128, gpu_sample_n=256, sample_bf16=True)
    quick = dict(preset='tiny', batch=4, rounds=1, steps=1, sample_steps=4, sample_block=2, sample_batch=2,
                 bpd_T=4, bpd_batch=2, bpd_rounds=1, pilot_images=2, pilot_k=[1, 2], e2e_steps=0, matmul_n=256,
                 gpu_steps=2, gpu_sample_steps=4, gpu_preset='tiny', gpu_batch=4, gpu_sample_n=4, sample_bf16=False)
    for k, v in (quick if a.quick else full).items():
        if getattr(a, k, None) is None: setattr(a, k, v)
    if a.quick: a.compile = False
    a.e2e = [v.strip() for v in a.e2e.split(',') if v.strip()]
    a.variants = [v.strip() for v in a.variants.split(';') if v.strip()]
    a.skip = {s.strip() for s in a.skip.split(',') if s.strip()}
    return a

def load_bench_images(a):
    "The uint8 images the sections use: `--data`'s test split, or with `--synthetic` 1024 random 28x28 ones; no data and no flag: a clear exit."
    if a.synthetic: return torch.randint(0, 256, (1024, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    from ddpm_nb.data import load_images
    try: return load_images(a.data, split='test')[0]
    except FileNotFoundError as e:                          # DataUnavailableError (offline, not on the Hub) is one too
        raise SystemExit(f"bench.py: no images to benchmark on: {e}. Set $DDPM_NB_DATA to a directory holding Fashion-MNIST, "
                         "pass --data NAME_OR_PATH, or pass --synthetic to time on random images (the table then says so).") from None

def main(argv=None):
    a = parse(argv)
    if a.render:                                            # re-render a saved run's table, measuring nothing
        md = to_markdown(json.loads(Path(a.render).read_text()))
        print(md)
        if a.md: Path(a.md).write_text(md + '\n')
        return md
    t_start = time.perf_counter()
    torch.set_num_threads(a.threads)
    warnings.filterwarnings('ignore', category=FutureWarning)
    device = torch.device('cuda' if a.device == 'auto' and torch.cuda.is_available() else ('cpu' if a.device == 'auto' else a.device))
    log = lambda s: print(f'[{time.perf_counter() - t_start:6.1f}s] {s}', file=sys.stderr, flush=True)
    R = {'meta': machine_info(device, a.threads)}
    R['meta']['command'] = 'python bench/bench.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    R['meta']['quick'] = a.quick
    R['meta']['settings'] = {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(a).items()}
    log(f"{R['meta'].get('cpu_model')}, torch {torch.__version__}, {a.threads} thread(s), device {device}")
    if 'peak' not in a.skip:
        R['matmul_peak'] = matmul_peak(device, a.matmul_n, 3)
        log("matmul peak: " + ', '.join(f"{k} {v['gflops_best']:.0f} GFLOP/s" for k, v in R['matmul_peak'].items()))
    images = load_bench_images(a)
    R['meta']['data'] = 'synthetic: random uint8 images (--synthetic)' if a.synthetic else f'{a.data} test split'
    ours = theirs = None
    if 'train' not in a.skip:
        R['train'], ours, theirs, _ = bench_train(a, device, images, log)
        if 'e2e' not in a.skip and a.e2e_steps > 0:
            R['train_e2e'] = [bench_train_e2e(a, device, images, p, False, log) for p in a.e2e]
    if ours is None: ours, theirs = build_pair(a.preset, device)
    if 'sample' not in a.skip: R['sampling'] = bench_sampling(a, device, ours, theirs, log)
    if 'bpd' not in a.skip: R['bpd'] = bench_bpd(a, device, ours, images, log)
    if (device.type == 'cuda' or a.gpu_section) and 'gpu' not in a.skip: R['gpu'] = bench_gpu(a, device, log)
    try: R['meta']['loadavg_end'] = list(os.getloadavg())
    except OSError: pass
    R['meta']['wall_s'] = time.perf_counter() - t_start
    md = to_markdown(R)
    print(md)
    if a.json: Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(R, indent=1, default=str))
    if a.md: Path(a.md).parent.mkdir(parents=True, exist_ok=True); Path(a.md).write_text(md + '\n')
    return R

if __name__ == '__main__':
    main()
