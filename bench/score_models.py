"""Score trained models with the quality protocol of 14_quality, and (optionally) their test-set bits/dim.

For each run or checkpoint: FID/KID of 1000 samples (100-step respaced ancestral, and DDIM 50) against the first 1000
test images, in the Fashion-MNIST classifier's space, plus the floor (the first 1000 training images against the same
test images). With --bpd, the bound on all 10 000 test images by the stratified estimator (K=20 geometric strata) with
its 95% interval. Writes one JSON file.

    python bench/score_models.py runs/fashion_mnist runs/diffusers_15min --json runs/scores.json [--bpd] [--device cuda]
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path
import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('runs', nargs='+', help='run dirs (newest checkpoint), checkpoint dirs or shipped names')
    ap.add_argument('--json', required=True)
    ap.add_argument('--n', type=int, default=1000)
    ap.add_argument('--protocols', default='ancestral:100,ddim:50')
    ap.add_argument('--bpd', action='store_true', help='also the test-set bits/dim (all test images, stratified K=20)')
    ap.add_argument('--bpd-n', type=int, default=10_000)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--batch-size', type=int, default=1000)
    ap.add_argument('--grid', default=None,
                    help='also save a grid of 64 DDIM-100 samples of each run into this directory')
    a = ap.parse_args(argv)
    from ddpm_nb.evaluate import score_run, reference_images, bpd_stratified, mean_ci
    from ddpm_nb.metrics import fid_kid
    from ddpm_nb.classifier import fmnist_features
    from ddpm_nb.data import load_images, to_model_range
    from ddpm_nb.grid import save_image_grid
    from ddpm_nb.checkpoint import load_model
    from ddpm_nb.sample import sample
    from functools import partial
    dev = torch.device(a.device)
    ref = reference_images('fashion_mnist', a.n)
    out = {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'device': str(dev), 'n': a.n,
           'torch': torch.__version__, 'gpu': torch.cuda.get_device_name() if dev.type == 'cuda' else None,
           'models': {}}
    floor = fid_kid(load_images('fashion_mnist', 'train')[0][:a.n], ref,
                    feature_fn=partial(fmnist_features, device=dev))
    out['floor_train_vs_test'] = {k: floor[k] for k in ('fid', 'kid_mean', 'kid_std')}
    print(f"floor (train vs test, n={a.n}): FID {floor['fid']:.3f}", flush=True)
    for run in a.runs:
        res = {}
        for proto in a.protocols.split(','):
            s, k = proto.split(':')
            r = score_run(run, n=a.n, sampler=s, steps=int(k), last_only=True, ref=ref, device=dev,
                          batch_size=a.batch_size)[-1]
            res[f'{s} {k}'] = r
            print(f"{run}: {s} {k}: FID {r['fid']:.3f} KID {r['kid_mean']:.5f} "
                  f"(step {r['step']}, {r['seconds']:.0f} s)", flush=True)
        if a.grid:
            model, diffusion, cfg = load_model(run, device=dev)
            x = sample(model, diffusion, 64, "ddim", 100, generator=torch.Generator().manual_seed(0), device=dev)
            save_image_grid(x, Path(a.grid) / f"{Path(str(run)).name}_ddim100.png", nrow=8)
        if a.bpd:
            model, diffusion, cfg = load_model(run, device=dev)
            test = load_images('fashion_mnist', 'test')[0][:a.bpd_n]
            t0 = time.time(); g = torch.Generator().manual_seed(0); vals = []
            for i in range(0, len(test), 1000):
                vals.append(bpd_stratified(diffusion, model, to_model_range(test[i:i + 1000]).to(dev), k=20,
                                           generator=g, spacing='geometric', batch_size=a.batch_size * 4)['bpd'])
            ci = mean_ci(torch.cat(vals))
            res['bpd'] = dict(ci, seconds=time.time() - t0, estimator='stratified, K=20 geometric')
            print(f"{run}: bpd {ci['mean']:.4f} [{ci['lo']:.4f}, {ci['hi']:.4f}] on {ci['n']} test images", flush=True)
        out['models'][str(run)] = res
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))
    Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == '__main__': main()
