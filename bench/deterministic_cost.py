"""Cost of torch.use_deterministic_algorithms in ddpm_nb.train.train on this CPU, fp32 and bf16, batch 128 and 32 (median img/s after 2 warm-up steps).

    python bench/deterministic_cost.py
"""
import json, tempfile, statistics, sys, time
from pathlib import Path
import torch
from ddpm_nb.config import TrainConfig
from ddpm_nb.train import train
from ddpm_nb.data import load_images

def main():
    imgs = load_images('fashion_mnist', 'test')[0][:2048]
    for prec, det, bs in [(p, d, b) for b in (128, 32) for p in ('fp32', 'bf16') for d in (True, False)]:
        out = Path(tempfile.mkdtemp()) / 'r'
        n = 6 if bs == 128 else 14
        train(TrainConfig.from_recipe('fast', batch_size=bs, steps=n, log_every=1, save_every=10**6, out=str(out), precision=prec, deterministic=det,
                          device='cpu', sample_n=1, sample_steps=1), images=imgs, progress=False)
        rows = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()][2:]
        print(f"batch {bs} {prec} deterministic={det}: {statistics.median(r['img_per_s'] for r in rows):.1f} img/s", flush=True)


if __name__ == '__main__': main()
