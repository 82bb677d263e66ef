"""What every benchmark here measures with: the machine's description, interleaved timing, ratios within a round,
peak memory, FLOP counts, the matmul peak, a fixed pool of training batches, and the images to train on.

Imported by the scripts beside it (`bench.py`, `train_speed.py`, `train_step.py`, ...), not run on its own.
"""
from __future__ import annotations
import ctypes, datetime, os, platform, statistics, subprocess, threading, time

import torch


def now_utc(): return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')

def median(xs): return statistics.median(xs) if xs else float('nan')

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)

CPU_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512_fp16')   # the ones that set the speed

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
        info['cpu_flags'] = sorted(f for f in kv.get('Flags', '').split() if f in CPU_FLAGS)
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
            sync(self.device); torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
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

def matmul_peak(device, n:int, rounds:int):
    "Matmul throughput (GFLOP/s) of an n x n product in fp32 and bf16, interleaved; best and median over rounds."
    res = {}
    mats = {dt: (torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt))
            for dt in (torch.float32, torch.bfloat16)}
    reps = 20 if device.type == 'cuda' else 1
    fns = {str(dt).split('.')[-1]: (lambda a=a, b=b: [a @ b for _ in range(reps)]) for dt, (a, b) in mats.items()}
    for f in fns.values(): f()                                    # warm up
    ts = interleave(fns, rounds, device)
    for k, v in ts.items():
        g = [2 * n ** 3 * reps / s / 1e9 for s in v]
        res[k] = {'n': n, 'gflops_best': max(g), 'gflops_median': median(g)}
    return res

class Timed(torch.nn.Module):
    "Wraps a network and adds up the time spent inside it, so a loop's overhead is measured in the same run."
    def __init__(self, net, device):
        super().__init__(); self.net, self.device, self.seconds, self.calls = net, device, 0.0, 0
    def forward(self, *args, **kw):
        sync(self.device); t0 = time.perf_counter()
        out = self.net(*args, **kw)
        sync(self.device); self.seconds += time.perf_counter() - t0; self.calls += 1
        return out

class Batches:
    "A fixed pool of (x0, t, noise) training batches on the device, cycled; made once, outside the timings."
    def __init__(self, images, B, n, T, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, images.shape[0], (n, B), generator=g)
        self.items = [(images[i].float().div(127.5).sub(1).to(device),
                       torch.randint(0, T, (B,), generator=g).to(device),
                       torch.randn((B, *images.shape[1:]), generator=g).to(device)) for i in idx]
        self.i = 0
    def next(self):
        b = self.items[self.i % len(self.items)]; self.i += 1
        return b

def load_bench_images(a, script='bench.py'):
    """The uint8 images the sections use: `a.data`'s test split, or with `a.synthetic` 1024 random 28x28 ones;
    no data and no flag: a clear exit, naming `script`."""
    if a.synthetic:
        return torch.randint(0, 256, (1024, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    from ddpm_nb.data import load_images
    try: return load_images(a.data, split='test')[0]
    except FileNotFoundError as e:                          # DataUnavailableError (offline, not on the Hub) is one too
        raise SystemExit(f"{script}: no images to benchmark on: {e}. Set $DDPM_NB_DATA to a directory holding "
                         "Fashion-MNIST, pass --data NAME_OR_PATH, or pass --synthetic to time on random images "
                         "(the table then says so).") from None
