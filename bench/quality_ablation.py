r"""The recipe ablation of 14_quality: which changes to the `fast` recipe give better samples after the main job's
15-minute CPU budget.

Every variant is `RECIPES['fast']` with one change (and 'fast' itself). Its budget is the images it trains in 15 minutes
at its own throughput, measured through `train()` on this machine by `bench/cpu_speed.py`, so a wider or slower variant
trains fewer images. The number of steps is fixed before training, so the result does not depend on what else the
machine does while it trains (run it niced); a killed variant resumes from its last checkpoint. Each is scored by
`ddpm_nb.evaluate.score_checkpoint` with the package's sampler (SDE-DPM-Solver++, 20 calls), n samples against the
first n test images and against the held-out slice.

    python bench/cpu_speed.py --seconds 40 --json bench/results/DATE_cpu_img_s.json          # idle machine
    python bench/quality_ablation.py --cpu-img-s bench/results/DATE_cpu_img_s.json --out runs/ablation \
        --only min-snr5,attn14
    python bench/quality_ablation.py --only fast --images 2000        # one variant, tiny budget (smoke test)
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ddpm_nb.config import RECIPES

BASE = {k: v for k, v in RECIPES['fast'].items() if k not in ('steps', 'sampler', 'sample_steps')}
VARIANTS = {   # name: TrainConfig fields on top of BASE
    'fast':             {},
    'min-snr5':         dict(snr_gamma=5.0),
    'attn14':           dict(model={**BASE['model'], 'attn_resolutions': [14]}),
    'ch32':             dict(model={**BASE['model'], 'ch': 32}),
    'ch48':             dict(model={**BASE['model'], 'ch': 48, 'num_groups': 16}),
    'dropout0.1':       dict(model={**BASE['model'], 'dropout': 0.1}),
    'bs64-lr1.4e-3':    dict(batch_size=64, lr=1.4e-3),
    'ema-pow4':         dict(ema_power=4.0),
    'ema-pow12':        dict(ema_power=12.0),
}
SAMPLER = ('dpm++sde', 20)   # the package's sampler at its call count (`ddpm_nb.cli.SAMPLER_CALLS`)

def variant_shape(v:dict)->tuple:
    "(batch size, model config): what a variant's training speed depends on."
    return v.get('batch_size', BASE['batch_size']), v.get('model', BASE['model'])

def speed_key(v:dict)->str:
    "The variant's key in the CPU throughput table (`bench/cpu_speed.py` measures one row per key)."
    b, m = variant_shape(v)
    return f"bs{b}-ch{m['ch']}-attn{int(m['attn_resolutions'] != [])}-drop{m['dropout']}"


def budget(v:dict, a)->int:
    """Training images of a variant: its measured img/s times the budget's seconds; with --base-images, that many
    images times its img/s over the base recipe's (the main job's images, so that the main job itself is the 'fast'
    row); or --images."""
    if a.images is not None: return a.images
    sp = json.loads(Path(a.cpu_img_s).read_text())
    if a.base_images: return int(a.base_images * sp[speed_key(v)] / sp[speed_key({})])
    return int(sp[speed_key(v)] * 60 * a.minutes)

def run_one(name, a):
    from ddpm_nb.config import TrainConfig
    from ddpm_nb.train import train
    from ddpm_nb.evaluate import score_checkpoint
    from ddpm_nb.checkpoint import list_checkpoints
    v = VARIANTS[name]
    images = budget(v, a)
    cfg = TrainConfig.from_recipe('fast', **{**BASE, **v})
    steps = max(1, images // cfg.batch_size)
    out = Path(a.out) / name
    cfg = TrainConfig.from_dict({**cfg.to_dict(), 'steps': steps, 'out': str(out), 'save_every': max(1, steps // 6),
                                 'keep': 1, 'sample_every': 0, 'sample_n': 16, 'device': 'cpu',
                                 'precision': a.precision, 'minutes': None})
    t0 = time.time()
    train(cfg, resume=out.exists() and bool(list_checkpoints(out)), progress=False)
    r = score_checkpoint(out, n=a.n, sampler=SAMPLER[0], steps=SAMPLER[1], held_out=True)
    return [{'variant': name, 'images': steps * cfg.batch_size, 'steps': steps, 'batch_size': cfg.batch_size,
             'sampler': f'{SAMPLER[0]} {SAMPLER[1]}', 'fid': r['fid'], 'kid_mean': r['kid_mean'],
             'held_out': r['held_out'],
             'precision': r['precision'], 'train_s_this_sitting': time.time() - t0, 'speed_key': speed_key(v),
             'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
             'config': {k_: v_ for k_, v_ in cfg.to_dict().items() if k_ in
                        ('lr', 'lr_schedule', 'ema_power', 'ema_decay', 'batch_size', 'model', 'model_mean_type',
                         'snr_gamma', 'warmup', 'recipe')}}]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default='runs/ablation')
    ap.add_argument('--only', default=None, help='comma-separated variant names (default: all)')
    ap.add_argument('--cpu-img-s', default=None, help='JSON from bench/cpu_speed.py: speed_key -> img/s on this CPU')
    ap.add_argument('--minutes', type=float, default=15.0, help='the CPU budget each variant is sized to')
    ap.add_argument('--base-images', type=int, default=None,
                    help="instead: the images the main job trained in its 15 minutes, scaled by each variant's speed")
    ap.add_argument('--precision', default='auto', help="the runs' precision (the main job's: auto)")
    ap.add_argument('--images', type=int, default=None, help='instead: this many training images for every variant')
    ap.add_argument('--n', type=int, default=1000, help='samples (and test images) for FID/KID')
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
    if a.images is None and a.cpu_img_s is None:
        raise SystemExit('give --cpu-img-s (from bench/cpu_speed.py) or --images')
    base = ([sys.executable, __file__, '--out', a.out, '--minutes', str(a.minutes)]
            + (['--base-images', str(a.base_images)] if a.base_images else [])
            + ['--n', str(a.n), '--precision', a.precision, '--results', str(res)]
            + (['--images', str(a.images)] if a.images else ['--cpu-img-s', a.cpu_img_s]))
    done = {json.loads(l)['variant'] for l in res.read_text().splitlines()} if res.exists() else set()
    pending, running = [n for n in names if n not in done], []
    env = dict(os.environ,
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // a.jobs))))
    while pending or running:
        while pending and len(running) < a.jobs:
            n = pending.pop(0)
            log = open(Path(a.out) / f'{n}.log', 'a')
            running.append((n, subprocess.Popen(base + ['--worker', n], stdout=log, stderr=subprocess.STDOUT, env=env)))
        time.sleep(1)
        for n, p in list(running):
            if p.poll() is not None:
                running.remove((n, p)); print(f'{n}: exit {p.returncode}', flush=True)
    rows = [json.loads(l) for l in res.read_text().splitlines()] if res.exists() else []
    for r in sorted(rows, key=lambda r: (r['sampler'], r['fid'])):
        print(f"{r['sampler']:14s} {r['variant']:16s} images {r['images']:6d} FID {r['fid']:8.2f} "
              f"(held out {r['held_out']['fid']:.2f}) KID {r['kid_mean']:.4f}")


if __name__ == '__main__': main()
