"""The peer a user would pick instead of ddpm_nb: diffusers trained with diffusers' recipe, or with ddpm_nb's `fast`
recipe.

`--recipe diffusers` (the default) is what diffusers' `examples/unconditional_image_generation/train_unconditional.py`
does, as a user runs it on a CPU (fp32): `UNet2DModel` of the same shape as ddpm_nb's preset
(`UNet.to_diffusers_config`, the same initial weights), `DDPMScheduler` (linear β, 1000 steps, ε-prediction),
`F.mse_loss` on ε, AdamW (lr 2e-4, β = (0.95, 0.999), weight decay 1e-6, ε 1e-8), cosine decay with linear warm-up
(`get_cosine_schedule_with_warmup`), gradient clipping at 1, random horizontal flips, batch 128, and `EMAModel` with its
warm-up (inv_gamma 1, power 3/4, max decay 0.9999).

`--recipe fast` is the comparison on equal terms: diffusers' network, scheduler and EMA trained with ddpm_nb's own
`fast` recipe (`ddpm_nb.config.RECIPES['fast']` on `TrainConfig`'s defaults). `UNet2DModel` of the fast recipe's network
(the preset with 24 channels, no attention, 8 groups, dropout 0; the same initial weights), `DDPMScheduler` (linear β
1e-4..0.02, T = 1000, ε-prediction), `F.mse_loss` on ε, Adam (not AdamW: lr 1e-3, β = (0.9, 0.999), ε 1e-8, no
weight decay, fused as ddpm_nb's trainer runs it), ddpm_nb's `lr_at` (linear warm-up over 100 steps, then cosine to
zero over the planned steps), gradient clipping at 1, batch 32 drawn epoch by epoch (`DataOrder`), ddpm_nb's random
flips where the data allow them (`default_flip`), bf16 autocast where `resolve_precision('auto', cpu)` picks it (CPUs
with AMX/AVX512-BF16), and diffusers' own `EMAModel` with warm-up (inv_gamma 1, power 2/3: its advice for short runs)
in place of ddpm_nb's power-function EMA.

The length is `--steps N` (a fixed number of optimizer steps, the cosine planned over them: the same work whatever the
machine's load) or `--minutes M` (wall-clock: the cosine is planned over the number of steps that fit, measured on the
first steps; a user would pick `--num_epochs` to fit; this gives the peer the best plan it could have). Checkpoints are
written in ddpm_nb's format (EMA weights converted with `UNet.from_diffusers`; the config records the recipe, the steps,
the images seen, the precision and the seconds; the diffusion section records the variance `DDPMScheduler` samples
with), the last one when the run ends, so `ddpm_nb.checkpoint.load_model` loads them and `ddpm_nb.evaluate.score_run`
scores both libraries' runs with the same sampler and the same classifier.

    python bench/diffusers_train.py --minutes 15 --out runs/diffusers_15min                 # diffusers' recipe
    python bench/diffusers_train.py --recipe fast --steps 5383 --out runs/diffusers_fast    # ddpm_nb's fast recipe
"""
from __future__ import annotations
import argparse, json, math, os, platform, time
from pathlib import Path
import torch
import torch.nn.functional as F

# DDPMScheduler's variance_type as ddpm_nb's model_var_type: what its step computes, for `sample(..., variance='model')`
VARIANCE = {'fixed_small': 'fixedsmall', 'fixed_large': 'fixedlarge'}


def recipe_defaults(recipe:str)->dict:
    "What `recipe` sets where the command line does not: batch, peak lr, warm-up steps, precision."
    if recipe == 'diffusers': return dict(batch_size=128, lr=2e-4, warmup=500, precision='fp32')
    from ddpm_nb.config import TrainConfig
    c = TrainConfig.from_recipe('fast')
    return dict(batch_size=c.batch_size, lr=c.lr, warmup=c.warmup_steps, precision=c.precision)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--recipe', choices=('diffusers', 'fast'), default='diffusers',
                    help="diffusers' train_unconditional recipe, or ddpm_nb's 'fast' recipe on diffusers' network, "
                         "scheduler and EMA")
    ap.add_argument('--minutes', type=float, default=None,
                    help='wall-clock budget (training only; data loading excluded); default 15 unless --steps is given')
    ap.add_argument('--steps', type=int, default=None, help='a fixed number of optimizer steps instead of --minutes')
    ap.add_argument('--out', default='runs/diffusers_15min', help='run directory (checkpoints ckpt-*)')
    ap.add_argument('--preset', default='fashion_mnist', help='ddpm_nb UNet preset whose shape the UNet2DModel takes')
    ap.add_argument('--dataset', default='fashion_mnist')
    ap.add_argument('--batch-size', type=int, default=None, help="default: the recipe's (diffusers 128, fast 32)")
    ap.add_argument('--lr', type=float, default=None,
                    help="peak learning rate; default: the recipe's (diffusers 2e-4, fast 1e-3)")
    ap.add_argument('--warmup', type=int, default=None,
                    help="linear warm-up steps; default: the recipe's (diffusers 500, capped at 10%% of the planned "
                         "steps; fast 100)")
    ap.add_argument('--precision', choices=('auto', 'fp32', 'bf16'), default=None,
                    help="autocast of the forward pass; default: the recipe's (diffusers fp32 as a user runs it, "
                         "fast 'auto')")
    ap.add_argument('--save-every-minutes', type=float, default=3.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: all cores)')
    a = ap.parse_args(argv)
    if a.steps is not None and a.minutes is not None: ap.error('give --steps or --minutes, not both')
    if a.steps is not None and a.steps < 1: ap.error(f'--steps must be a positive integer, got {a.steps}')
    if a.minutes is None and a.steps is None: a.minutes = 15.0
    for k, v in recipe_defaults(a.recipe).items():
        if getattr(a, k) is None: setattr(a, k, v)

    from diffusers import UNet2DModel, DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel
    from ddpm_nb.unet import UNet
    import ddpm_nb.interop   # UNet.to_diffusers_config, .to_diffusers_state_dict, .from_diffusers
    from ddpm_nb.data import load_images, to_model_range, random_flip, default_flip
    from ddpm_nb.checkpoint import CKPT_FORMATS, save_checkpoint, latest_checkpoint
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.machine import resolve_precision
    from ddpm_nb.config import RECIPES, TrainConfig, lr_at
    from ddpm_nb.train import DataOrder

    fast = a.recipe == 'fast'
    if a.threads: torch.set_num_threads(a.threads)
    out = Path(a.out)
    if latest_checkpoint(out) is not None: raise SystemExit(f"{out} already holds checkpoints; choose another --out")
    prec, why = resolve_precision(a.precision, torch.device('cpu'))
    amp = {'bf16': torch.bfloat16}.get(prec)
    images, _ = load_images(a.dataset, split='train')
    N, C, H, W = images.shape
    torch.manual_seed(a.seed)
    ours = UNet.from_preset(a.preset, in_ch=C, resolution=H, **(RECIPES['fast']['model'] if fast else {}))
    net = UNet2DModel(**ours.to_diffusers_config())
    net.load_state_dict(ours.to_diffusers_state_dict())
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear', beta_start=1e-4, beta_end=0.02,
                          prediction_type='epsilon')
    if fast:
        # Adam's betas, eps and weight decay, the clipping: ddpm_nb's defaults
        tc = TrainConfig.from_recipe('fast')
        opt = torch.optim.Adam(net.parameters(), lr=a.lr, betas=tuple(tc.adam_betas), eps=tc.adam_eps,
                               weight_decay=tc.weight_decay, fused=True)
        clip, flips = tc.grad_clip, default_flip(a.dataset)
        ema = EMAModel(net.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=2 / 3,
                       model_cls=UNet2DModel, model_config=net.config)
        order = DataOrder(N, a.batch_size, seed=a.seed)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=a.lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
        clip, flips = 1.0, True
        ema = EMAModel(net.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75,
                       model_cls=UNet2DModel, model_config=net.config)
    g = torch.Generator().manual_seed(a.seed + 1)

    def batch():
        if fast:
            x = to_model_range(images[order.next()])
            return random_flip(x, g) if flips else x
        idx = torch.randint(0, N, (a.batch_size,), generator=g)
        x = to_model_range(images[idx])
        flip = torch.rand(a.batch_size, generator=g) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def step(lr_sched=None):
        x = batch()
        noise = torch.randn(x.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (a.batch_size,), generator=g)
        with torch.autocast('cpu', dtype=amp, enabled=amp is not None):
            loss = F.mse_loss(net(sched.add_noise(x, noise, t), t).sample.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip if clip > 0 else float('inf'))
        opt.step(); opt.zero_grad(set_to_none=True)
        if lr_sched is not None: lr_sched.step()
        ema.step(net.parameters())
        return loss.item()

    var = VARIANCE.get(sched.config.variance_type)
    if var is None:
        raise SystemExit(f"DDPMScheduler's variance_type {sched.config.variance_type!r} has no ddpm_nb model_var_type")
    hyper = (dict(optimizer='Adam (fused)', lr=a.lr, betas=list(tc.adam_betas), eps=tc.adam_eps,
                  weight_decay=tc.weight_decay, lr_schedule="ddpm_nb.config.lr_at: linear warm-up, cosine to 0",
                  grad_clip=clip, data_order='epochs (DataOrder)', random_flip=flips,
                  ema="diffusers EMAModel(use_ema_warmup=True, inv_gamma=1, power=2/3, decay=0.9999)")
             if fast else
             dict(optimizer='AdamW', lr=a.lr, betas=[0.95, 0.999], eps=1e-8, weight_decay=1e-6,
                  lr_schedule='get_cosine_schedule_with_warmup', grad_clip=clip, data_order='uniform with replacement',
                  random_flip=flips,
                  ema="diffusers EMAModel(use_ema_warmup=True, inv_gamma=1, power=3/4, decay=0.9999)"))
    what = ("ddpm_nb's 'fast' recipe on diffusers (UNet2DModel, DDPMScheduler, Adam, lr_at cosine, "
            "bf16 autocast where native, EMAModel power 2/3)"
            if fast else
            "diffusers' train_unconditional.py recipe (UNet2DModel, DDPMScheduler, AdamW, cosine, EMAModel)")
    config = {'format': CKPT_FORMATS[-1], 'model': {'class': 'UNet', 'config': dict(ours.config, dropout=0.0)},
              # DDPMScheduler's process, and the variance its step samples with
              'diffusion': GaussianDiffusion.from_config(
                  dict(beta_schedule='linear', T=1000, beta_start=1e-4, beta_end=0.02, model_mean_type='eps',
                       model_var_type=var, loss_type='mse')).to_config(),
              'dataset': {'name': a.dataset, 'split': 'train', 'n': N, 'shape': [C, H, W]},
              'machine': {'device': 'cpu', 'precision': prec, 'precision_why': why, 'torch': torch.__version__,
                          'threads': torch.get_num_threads()},
              'provenance': {'what': what, 'recipe': a.recipe,
                             'command': 'python bench/diffusers_train.py '
                                        + ' '.join(f'--{k.replace("_", "-")} {v}'
                                                   for k, v in vars(a).items() if v is not None),
                             'machine': platform.processor() or platform.machine(), 'threads': torch.get_num_threads(),
                             'precision': prec, 'lr': a.lr, 'batch_size': a.batch_size, **hyper}}

    def save(n, elapsed):
        ema.store(net.parameters()); ema.copy_to(net.parameters())
        sd = UNet.from_diffusers(net.state_dict(), config=ours.config).state_dict()
        ema.restore(net.parameters())
        cfg = dict(config, elapsed=elapsed)
        cfg['provenance'] = dict(config['provenance'], steps=n, images_seen=n * a.batch_size, wall_time_s=elapsed)
        save_checkpoint(out, n, cfg, sd, sd, state=None, keep=100)

    net.train()
    t0 = time.time(); n = 0
    if a.steps is not None:                       # a fixed length: the schedule is planned over it from the start
        planned, budget = a.steps, float('inf')
    else:
        # plan: 3 warm-up steps, then time 10 steps and fix the cosine schedule over the steps that fit in the budget
        budget = 60 * a.minutes
        def planning_step():                      # the start of a linear warm-up while the plan is measured
            for g_ in opt.param_groups:
                g_['lr'] = lr_at(n, a.lr, a.warmup, 'cosine', 0.0) if fast else a.lr * (n + 1) / 100
            return step()
        for _ in range(3): planning_step(); n += 1
        t1 = time.time()
        for _ in range(10): planning_step(); n += 1
        per_step = (time.time() - t1) / 10
        planned = max(n + 10, int(n + (budget - (time.time() - t0)) / per_step))
    if fast:
        warm, lr_sched = a.warmup, None           # ddpm_nb's lr_at: warm-up as given, cosine over the planned steps
    else:
        warm = min(a.warmup, planned // 10)
        for g_ in opt.param_groups: g_['lr'] = a.lr; g_['initial_lr'] = a.lr
        lr_sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=warm, num_training_steps=planned)
    config['provenance'].update(planned_steps=planned, warmup=warm, budget_minutes=a.minutes)
    next_save, losses = 60 * a.save_every_minutes, []
    while True:
        if fast:
            lr = lr_at(n, a.lr, warm, 'cosine', n / planned)
            for g_ in opt.param_groups: g_['lr'] = lr
        else: lr = opt.param_groups[0]['lr']
        losses.append(step(lr_sched)); n += 1
        el = time.time() - t0
        if n % 10 == 0:
            print(json.dumps({'step': n, 'loss': sum(losses) / len(losses), 'lr': lr, 'elapsed': round(el, 1)}),
                  flush=True)
            losses = []
        if el >= budget or n >= planned:
            save(n, el); break
        if el >= next_save:
            save(n, el); next_save += 60 * a.save_every_minutes
    el = time.time() - t0
    print(json.dumps({'done': True, 'recipe': a.recipe, 'steps': n, 'images_seen': n * a.batch_size, 'precision': prec,
                      'elapsed': round(el, 1), 's_per_step': round(el / n, 3), 'out': str(out)}), flush=True)


if __name__ == '__main__': main()
