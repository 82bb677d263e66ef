"""Fashion-MNIST with a learned β schedule against the linear and cosine schedules (15_learned_schedule).

Each schedule trains the 'fast' recipe's network (ch 24, no attention) from the same seed for the same number of steps,
with `ddpm_nb.toy.train_toy` (Adam, one-cycle lr, fresh random batches), through a `LearnedSchedule`: frozen at its base
for 'linear' and 'cosine' (so every run takes the same code path), trained for 'learned' (θ at the network's peak
learning rate) and 'learned-theta-lr30' (θ at 30 times it). The network's objective is L_simple
(`model_loss='simple'`); β, where it trains, follows the bound. Each model is scored on the bound in bits/dim
(`bpd_stratified`, k=50, on the first --n-bpd test images, with a 95% interval) and on FID/KID of --n-fid samples
(ancestral, 100 respaced steps) against the first --n-fid test images, in the classifier's feature space.

    python bench/learned_schedule.py --steps 1500 --json bench/results/2026-11-30_cpu_learned_schedule.json
    python bench/learned_schedule.py --steps 5 --n-bpd 4 --n-fid 20 --json /tmp/smoke.json        # smoke test
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path
import torch

VARIANTS = {'linear': ('linear', False), 'cosine': ('cosine', False), 'learned': ('linear', True),
            'learned-theta-lr30': ('linear', True)}
THETA_LR = {'learned-theta-lr30': 30.0}   # θ's peak learning rate as a multiple of the network's (default 1)

def run_one(name, X, test, ref, a):
    from ddpm_nb.config import TrainConfig, build_model
    from ddpm_nb.schedules import get_beta_schedule
    from ddpm_nb.learned_schedule import LearnedSchedule
    from ddpm_nb.toy import train_toy
    from ddpm_nb.evaluate import bpd_stratified, mean_ci
    from ddpm_nb.sample import sample
    from ddpm_nb.metrics import fid_kid
    from ddpm_nb.classifier import fmnist_features
    base, learn = VARIANTS[name]
    torch.manual_seed(a.seed)
    model = build_model(TrainConfig.from_recipe('fast'), in_ch=1, resolution=28)
    sched = LearnedSchedule(get_beta_schedule(base, a.T), knots=a.knots, model_loss='simple').requires_grad_(learn)
    data_fn = lambda n, generator: X[torch.randint(len(X), (n,), generator=generator)]
    row = dict(schedule=name, base=base, learned=learn, T=a.T, knots=a.knots, steps=a.steps, batch=a.batch, lr=a.lr,
               seed=a.seed, theta_lr=a.lr * THETA_LR.get(name, 1.0), load_before=list(os.getloadavg()))
    t0 = time.time()
    losses = train_toy(sched, model, data_fn, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed,
                       diffusion_lr=row['theta_lr'])
    row['train_s'] = time.time() - t0
    row['loss_last100'] = sum(losses[-100:]) / len(losses[-100:])
    d = sched.frozen()
    model.eval()
    t0 = time.time()
    r = bpd_stratified(d, model, test, k=50, generator=torch.Generator().manual_seed(1))
    ci = mean_ci(r['bpd'])
    row.update(bpd=ci['mean'], bpd_lo=ci['lo'], bpd_hi=ci['hi'], bpd_se=ci['se'], n_bpd=ci['n'],
               prior_bpd=r['prior'].mean().item(), decoder_bpd=r['decoder'].mean().item(),
               middle_bpd=r['middle'].mean().item(), bpd_s=time.time() - t0)
    t0 = time.time()
    x = sample(model, d, a.n_fid, 'ancestral', 100, generator=torch.Generator().manual_seed(0), shape=(1, 28, 28),
               batch_size=100)
    q = fid_kid(x, ref, feature_fn=fmnist_features)
    row.update(fid=q['fid'], kid_mean=q['kid_mean'], kid_std=q['kid_std'], n_fid=a.n_fid, fid_s=time.time() - t0)
    log_snr = d.schedule.snr.log()
    row.update(log_snr_1=log_snr[0].item(), log_snr_T=log_snr[-1].item(), betas=d.betas.tolist(),
               load_after=list(os.getloadavg()))
    if a.samples:
        from ddpm_nb.grid import save_image_grid
        save_image_grid(x[:64], Path(a.samples) / f'learned_schedule_{name}.png')
    return row

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=1500); p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-3); p.add_argument('--T', type=int, default=1000)
    p.add_argument('--knots', type=int, default=20); p.add_argument('--seed', type=int, default=0)
    p.add_argument('--n-bpd', type=int, default=500); p.add_argument('--n-fid', type=int, default=1000)
    p.add_argument('--only', nargs='*', default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument('--json', required=True)
    p.add_argument('--samples', default=None, help='folder for a 64-sample grid per schedule')
    a = p.parse_args(argv)
    from ddpm_nb.data import load_images, to_model_range
    from ddpm_nb.evaluate import reference_images
    X = to_model_range(load_images('fashion_mnist', 'train')[0])
    test = to_model_range(reference_images(n=a.n_bpd))
    ref = reference_images(n=a.n_fid)
    out = Path(a.json); rows = json.loads(out.read_text()) if out.exists() else []
    for name in a.only:
        row = run_one(name, X, test, ref, a)
        row.update(machine=platform.processor() or platform.machine(), torch=torch.__version__,
                   threads=torch.get_num_threads(), date=time.strftime('%Y-%m-%d'),
                   command='python bench/learned_schedule.py ' + ' '.join(sys.argv[1:] if argv is None else argv))
        rows = [r for r in rows if r['schedule'] != name] + [row]
        tmp = out.with_suffix('.tmp'); tmp.write_text(json.dumps(rows, indent=1)); tmp.replace(out)
        print(f"{name}: bound {row['bpd']:.4f} [{row['bpd_lo']:.4f}, {row['bpd_hi']:.4f}] bits/dim, "
              f"FID {row['fid']:.2f}, train {row['train_s']:.0f} s, "
              f"log-SNR ends {row['log_snr_1']:.2f} / {row['log_snr_T']:.2f}", flush=True)

if __name__ == '__main__': main()
