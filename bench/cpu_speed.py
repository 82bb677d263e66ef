"""Training throughput of the recipe ablation's network/batch shapes on this CPU, through `ddpm_nb.train.train` itself.

Writes {speed_key: img/s} (the steady-state median of the metrics rows after the first) for `quality_ablation.py`,
at the precision the runs use (`auto`: bf16 autocast where the CPU has it). Run it on an otherwise idle machine; it
records the load average. It runs from any directory (the sibling `quality_ablation.py` is found beside it).

    python bench/cpu_speed.py --seconds 40 --json bench/results/DATE_cpu_img_s.json
"""
from __future__ import annotations
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling modules, from any directory
from quality_ablation import VARIANTS, speed_key, variant_shape
SHAPES = {}   # speed_key: (batch_size, model overrides), one per shape, as the first variant with that shape has it
for v in VARIANTS.values(): SHAPES.setdefault(speed_key(v), variant_shape(v))

def measure(batch, model, precision, seconds, images):
    from ddpm_nb.config import TrainConfig
    from ddpm_nb.train import read_metrics, train
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / 'run'
        cfg = TrainConfig.from_recipe('fast', batch_size=batch, model=model, minutes=seconds / 60, out=str(out),
                                      log_every=5, save_every=10**6, precision=precision, device='cpu', sample_n=1,
                                      sample_steps=1)
        train(cfg, images=images, progress=False)
        rows = read_metrics(out)[1:]
    return statistics.median(r['img_per_s'] for r in rows) if rows else float('nan')

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seconds', type=float, default=40)
    ap.add_argument('--json', required=True)
    ap.add_argument('--precision', default='auto')
    ap.add_argument('--only', default=None)
    a = ap.parse_args(argv)
    from ddpm_nb.data import load_images
    images = load_images('fashion_mnist', 'train')[0][:8192]
    res = {'_meta': {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'threads': torch.get_num_threads(),
                     'loadavg_start': list(os.getloadavg()), 'torch': torch.__version__, 'seconds_each': a.seconds,
                     'precision': a.precision}}
    keys = a.only.split(',') if a.only else list(SHAPES)
    for k in keys:
        b, m = SHAPES[k]
        res[k] = measure(b, m, a.precision, a.seconds, images)
        print(f'{k}: {res[k]:.1f} img/s ({a.precision})', flush=True)
    res['_meta']['loadavg_end'] = list(os.getloadavg())
    Path(a.json).write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
