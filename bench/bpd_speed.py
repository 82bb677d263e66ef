#!/usr/bin/env python
"""Likelihood speed: calc_bpd_loop against its bound (T network forwards per image), and what the stratified estimator
`ddpm_nb.evaluate.bpd_stratified` costs for a 95% interval of +-0.02 bits/dim on a dataset's mean bpd, from a pilot.

    python bench/bpd_speed.py [--quick] [--bpd-T T] [--bpd-batch B] [--bpd-rounds N] [--json out.json]

The model is $DDPM_NB_BENCH_CKPT if set, else runs/fashion_mnist (under the current directory) if it holds a
checkpoint, else the package's shipped weights; for another preset, the untrained network.
"""
from __future__ import annotations
import math, os, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling modules, from any directory
import runner
from common import PeakMem, Timed, interleave, median, ratio_median
from steps import linear_diffusion, shared_pair

SKIP = ('bpd',)
FULL = dict(bpd_T=10, bpd_batch=4, bpd_rounds=3, pilot_images=8, pilot_k=[1, 8])
QUICK = dict(bpd_T=4, bpd_batch=2, bpd_rounds=1, pilot_images=2, pilot_k=[1, 2])

def add_args(p):
    p.add_argument('--bpd-T', type=int, default=None); p.add_argument('--bpd-batch', type=int, default=None)
    p.add_argument('--bpd-rounds', type=int, default=None)

def find_trained(preset):
    """A trained fashion_mnist model and where it came from: $DDPM_NB_BENCH_CKPT if set (it must load), else the run
    directory runs/fashion_mnist under the current directory if it holds a checkpoint, else the package's shipped
    weights; None for other presets."""
    if preset != 'fashion_mnist': return None
    from ddpm_nb.checkpoint import load_model
    env = os.environ.get('DDPM_NB_BENCH_CKPT')
    if env: return load_model(env)[0], env
    if Path('runs/fashion_mnist').is_dir():
        try: return load_model('runs/fashion_mnist')[0], 'runs/fashion_mnist'
        except FileNotFoundError: pass                      # a run directory without a checkpoint yet
    return load_model('fashion_mnist')[0], 'fashion_mnist (shipped weights)'

def bench_bpd(a, device, ours, images, log):
    "calc_bpd_loop against T bare forwards (interleaved whole runs), and the stratified estimator's cost from a pilot."
    T, B = a.bpd_T, a.bpd_batch
    trained = find_trained(a.preset)
    untrained = (ours, 'random init (+0.02 N(0,1) perturbation): no trained checkpoint found')
    model, src = trained if trained else untrained
    model = model.to(device).eval()
    x0 = images[:B].float().div(127.5).sub(1).to(device)
    d = linear_diffusion(T)
    timed = Timed(model, device)
    def bpd(): d.calc_bpd_loop(timed, x0, generator=torch.Generator(device=device).manual_seed(0))
    def bare():
        with torch.no_grad():
            for i in range(T - 1, -1, -1): model(x0, torch.full((B,), i, device=device, dtype=torch.long))
    bpd(); timed.seconds = 0.0
    ts = interleave({'calc_bpd_loop': bpd, 'bare forwards': bare}, a.bpd_rounds, device)
    res = {'T': T, 'batch': B, 'model': src, 'rounds': a.bpd_rounds,
           'calc_bpd_loop_img_per_s': B / median(ts['calc_bpd_loop']),
           'bound_img_per_s': B / median(ts['bare forwards']),
           'fraction_of_bound': ratio_median(ts['bare forwards'], ts['calc_bpd_loop']),
           'fraction_of_bound_in_run': timed.seconds / sum(ts['calc_bpd_loop'])}
    with PeakMem(device) as pm: d.calc_bpd_loop(model, x0[:B], generator=torch.Generator(device=device).manual_seed(0))
    res['peak_mem_mb'] = pm.peak_mb
    log(f"bpd: calc_bpd_loop at {100 * res['fraction_of_bound']:.1f}% of the forward bound "
        f"(in-run {100 * res['fraction_of_bound_in_run']:.1f}%)")
    res['stratified'] = stratified_cost(a, device, model, images, src, log)
    return res

def stratified_cost(a, device, model, images, src, log, half_width=0.02, z=1.959964):
    """Pilot of ddpm_nb.evaluate.bpd_stratified with the paper's T=1000: two independent estimates per image for each k
    give the within-image variance (k middle terms) and, with the spread over images, the variance of one estimate.
    Cost for a 95% interval of +-`half_width` bits/dim on the mean bpd of a dataset: n = (z s / h)^2 images x (k+1)
    forwards."""
    from ddpm_nb.evaluate import bpd_stratified
    d = linear_diffusion(1000)
    m = a.pilot_images
    x0 = images[-m:].float().div(127.5).sub(1).to(device)     # held apart from the batch used above
    out = {'pilot_images': m, 'half_width_bpd': half_width, 'confidence': 0.95, 'model': src, 'by_k': {}}
    timed = Timed(model, device)
    for k in a.pilot_k:
        e = [bpd_stratified(d, timed, x0, k=k, generator=torch.Generator().manual_seed(10 * k + r))['total_bpd']
             .double().cpu() for r in range(2)]
        within = ((e[0] - e[1]) ** 2 / 2).mean().item()          # E[(e1-e2)^2]/2 = per-image variance of one estimate
        total = torch.cat(e).var().item() if m > 1 else within     # over images and draws: what one dataset draw sees
        fwd_per_img = k + 1
        n_img = math.ceil((z * math.sqrt(total) / half_width) ** 2)
        k_single = math.ceil(k * (z * math.sqrt(within) / half_width) ** 2)   # one image to +-h: variance ~ 1/k
        s_fwd = timed.seconds / max(1, timed.calls) / m                    # seconds per network forward per image
        r = {'mean_bpd': torch.cat(e).mean().item(), 'var_within_image': within, 'var_one_estimate': total,
             'images_needed': n_img, 'forwards_needed': n_img * fwd_per_img,
             'seconds_est': n_img * fwd_per_img * s_fwd,
             'forwards_per_image_single_image_interval': k_single + 1}
        out['by_k'][str(k)] = r
        log(f"bpd_stratified k={k}: mean {r['mean_bpd']:.3f} bpd, sd within {math.sqrt(within):.3f}, "
            f"sd total {math.sqrt(total):.3f}; ±{half_width} needs {n_img} images x {fwd_per_img} forwards = "
            f"{r['forwards_needed']} forwards (~{r['seconds_est']:.0f} s)")
    out['seconds_per_forward_per_image'] = timed.seconds / max(1, timed.calls) / m
    best = min(out['by_k'], key=lambda k: out['by_k'][k]['forwards_needed'])
    out['best_k'] = int(best)
    out.update(full_loop_cost(out, half_width, z))
    return out

def full_loop_cost(st, half_width=0.02, z=1.959964, T=1000):
    """The exact calc_bpd_loop route to the same interval: its only randomness left is which images (and one x_t per
    term), so the images needed follow from the between-image variance (one estimate's variance minus the within-image
    part, taken at the pilot k with the smallest within-image variance), each image costing T forwards."""
    k = min(st['by_k'], key=lambda k: st['by_k'][k]['var_within_image']); r = st['by_k'][k]   # the most precise draw
    var_between = max(r['var_one_estimate'] - r['var_within_image'], 1e-12)
    n = math.ceil((z * math.sqrt(var_between) / half_width) ** 2)
    return {'var_between_images': var_between, 'full_loop_images_needed': n, 'full_loop_forwards_needed': n * T}

def run(a, device, images, log, R, ctx):
    "The likelihood rows into R['bpd']; the untrained network of the pair when no trained model fits the preset."
    if 'bpd' in a.skip: return
    ours, _ = shared_pair(ctx, a.preset, device)
    R['bpd'] = bench_bpd(a, device, ours, images, log)

def main(argv=None): return runner.main(argv, __doc__, [sys.modules[__name__]], 'bench/bpd_speed.py', peak=False)

if __name__ == '__main__': main()
