"""Cost of torch.use_deterministic_algorithms in ddpm_nb.train.train on this CPU, fp32 and bf16, batch 128 and 32
(median img/s after 2 warm-up steps).

    python bench/deterministic_cost.py
"""
import argparse, statistics, tempfile
from pathlib import Path
from ddpm_nb.config import TrainConfig
from ddpm_nb.train import read_metrics, train
from ddpm_nb.data import load_images

def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split('\n\n')[0]).parse_args(argv)   # no options: --help, then exit
    imgs = load_images('fashion_mnist', 'test')[0][:2048]
    for prec, det, bs in [(p, d, b) for b in (128, 32) for p in ('fp32', 'bf16') for d in (True, False)]:
        n = 6 if bs == 128 else 14
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / 'r'
            train(TrainConfig.from_recipe('fast', batch_size=bs, steps=n, log_every=1, save_every=10**6, out=str(out),
                                          precision=prec, deterministic=det, device='cpu', sample_n=1, sample_steps=1),
                  images=imgs, progress=False)
            rows = read_metrics(out)[2:]
        print(f"batch {bs} {prec} deterministic={det}: {statistics.median(r['img_per_s'] for r in rows):.1f} img/s",
              flush=True)


if __name__ == '__main__': main()
