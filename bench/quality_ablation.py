"""The recipe ablation of 14_quality: which recipe gives the best samples after a 15-minute CPU budget.

Each variant trains the fashion_mnist preset with `ddpm_nb.train.train` for the number of images the 2-core CPU trains in
15 minutes at that variant's measured throughput (`--cpu-img-s`), then is scored by `ddpm_nb.evaluate.score_checkpoint`
(n samples against the first n test images in the classifier's feature space). Quality after a number of images does not
depend on the machine that computed them, so the variants can run on a GPU, several at once, in fp32 without TF32 (the
CPU's arithmetic); their budget is still the CPU's 15 minutes.

    python bench/quality_ablation.py --out runs/ablation --jobs 8 --device cuda      # every variant
    python bench/quality_ablation.py --only fast --images 2000 --device cpu           # one variant, tiny budget (smoke test)
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time
from pathlib import Path

BASE = dict(preset='fashion_mnist', steps=100_000, warmup=100, lr_schedule='cosine', ema_power=7.0, model={'dropout': 0.0},
            batch_size=32, lr=1e-3)
VARIANTS = {   # name: TrainConfig fields on top of BASE ('paper' replaces BASE by the paper's recipe at the old main job's batch)
    'paper':            dict(recipe='paper'),
    'fast':             {},
    'lr5e-4':           dict(lr=5e-4),
    'lr2e-3':           dict(lr=2e-3),
    'lr3e-3':           dict(lr=3e-3),
    'const-lr':         dict(lr_schedule='constant'),
    'ema0.999':         dict(ema_power=None, ema_decay=0.999),
    'ema-pow17':        dict(ema_power=16.97),
    'bs16-lr7e-4':      dict(batch_size=16, lr=7e-4),
    'bs64-lr1.4e-3':    dict(batch_size=64, lr=1.4e-3),
    'bs128-lr2e-3':     dict(batch_size=128, lr=2e-3),
    'v-pred':           dict(model_mean_type='v'),
    'min-snr5':         dict(snr_gamma=5.0),
    'no-attn':          dict(model={'dropout': 0.0, 'attn_resolutions': []}),
    'ch48':             dict(model={'dropout': 0.0, 'ch': 48, 'num_groups': 16}),
    'ch24-noattn':      dict(model={'dropout': 0.0, 'ch': 24, 'attn_resolutions': [], 'num_groups': 8}),
    'dropout0.1':       dict(model={'dropout': 0.1}),
}
def variant_shape(v:dict)->tuple:
    "(batch size, model overrides): what a variant's training speed depends on."
    return v.get('batch_size', 128 if v.get('recipe') == 'paper' else BASE['batch_size']), v.get('model', BASE['model'])

def speed_key(v:dict)->str:
    "The variant's key in the CPU throughput table (`bench/cpu_speed.py` measures one row per key)."
    b, m = variant_shape(v)
    return f"bs{b}-ch{m.get('ch', 32)}-attn{int(m.get('attn_resolutions', [14]) != [])}"


def run_one(name, a):
    import torch
    from ddpm_nb.train import TrainConfig, train
    from ddpm_nb.evaluate import score_checkpoint, reference_images
    torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
    v = VARIANTS[name]
    kw = dict(v); rec = kw.pop('recipe', None)
    if a.images is not None: images = a.images
    else:
        sp = json.loads(Path(a.cpu_img_s).read_text())
        scale = sp['_bf16']['bs32-ch32-attn1'] / sp['bs32-ch32-attn1'] if a.bf16_budget else 1.0
        images = int(sp[speed_key(v)] * scale * 60 * a.minutes)
    if rec == 'paper':
        cfg = TrainConfig(preset='fashion_mnist', batch_size=128)
    else: cfg = TrainConfig.from_recipe('fast', **{**BASE, **kw})
    steps = max(1, images // cfg.batch_size)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), 'steps': steps, 'out': str(Path(a.out) / name), 'save_every': steps,
                                 'keep': 1, 'sample_every': 0, 'sample_n': 16, 'device': a.device, 'precision': 'fp32',
                                 'deterministic': False, 'minutes': None})
    t0 = time.time()
    train(cfg, progress=False)
    tt = time.time() - t0
    ref = reference_images('fashion_mnist', a.n)
    rows = []
    for sampler, k in [('ddim', 25), ('ancestral', 100)]:
        r = score_checkpoint(Path(a.out) / name, n=a.n, sampler=sampler, steps=k, ref=ref, device=a.device, batch_size=a.n)
        rows.append({'variant': name, 'images': steps * cfg.batch_size, 'steps': steps, 'batch_size': cfg.batch_size,
                     'sampler': f'{sampler} {k}', 'fid': r['fid'], 'kid_mean': r['kid_mean'], 'train_s': tt,
                     'speed_key': speed_key(v), 'config': {k_: v_ for k_, v_ in cfg.to_dict().items() if k_ in
                     ('lr', 'lr_schedule', 'ema_power', 'ema_decay', 'batch_size', 'model', 'model_mean_type', 'snr_gamma', 'warmup', 'recipe')}})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='runs/ablation')
    ap.add_argument('--only', default=None, help='comma-separated variant names (default: all)')
    ap.add_argument('--cpu-img-s', default='bench/results/cpu_img_s.json', help='JSON: speed_key -> img/s on the 2-core CPU')
    ap.add_argument('--minutes', type=float, default=15.0, help='the CPU budget the image counts are sized for')
    ap.add_argument('--bf16-budget', action='store_true', help="scale every budget by the CPU's measured bf16/fp32 speed ratio (what --precision auto trains at there)")
    ap.add_argument('--images', type=int, default=None, help='instead: this many training images for every variant')
    ap.add_argument('--n', type=int, default=1000, help='samples (and test images) for FID/KID')
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--jobs', type=int, default=1, help='variants trained at once (separate processes)')
    ap.add_argument('--results', default=None, help='append result rows (JSON lines) here (default: OUT/results.jsonl)')
    ap.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    res = Path(a.results or Path(a.out) / 'results.jsonl')
    if a.worker:
        rows = run_one(a.worker, a)
        with open(res, 'a') as f:
            for r in rows: f.write(json.dumps(r) + '\n')
        return
    names = a.only.split(',') if a.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown: raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    base = [sys.executable, __file__, '--out', a.out, '--cpu-img-s', a.cpu_img_s, '--minutes', str(a.minutes), '--n', str(a.n),
            '--device', a.device, '--results', str(res)] + (['--images', str(a.images)] if a.images else []) + (['--bf16-budget'] if a.bf16_budget else [])
    pending, running = list(names), []
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    while pending or running:
        while pending and len(running) < a.jobs:
            n = pending.pop(0)
            log = open(Path(a.out) / f'{n}.log', 'w')
            running.append((n, subprocess.Popen(base + ['--worker', n], stdout=log, stderr=subprocess.STDOUT, env=env)))
        time.sleep(1)
        for n, p in list(running):
            if p.poll() is not None:
                running.remove((n, p)); print(f'{n}: exit {p.returncode}', flush=True)
    rows = [json.loads(l) for l in res.read_text().splitlines()] if res.exists() else []
    for r in sorted(rows, key=lambda r: (r['sampler'], r['fid'])):
        print(f"{r['sampler']:14s} {r['variant']:16s} images {r['images']:6d} FID {r['fid']:8.2f} KID {r['kid_mean']:.4f}")


if __name__ == '__main__': main()
