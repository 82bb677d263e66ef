"""The peer a user would pick instead of ddpm_nb: diffusers' recipe for unconditional DDPM training, for a wall-clock budget.

What diffusers' `examples/unconditional_image_generation/train_unconditional.py` does, as a user runs it on a CPU (fp32):
`UNet2DModel` of the same shape as ddpm_nb's preset (`UNet.to_diffusers_config`, the same initial weights), `DDPMScheduler`
(linear β, 1000 steps, ε-prediction), `F.mse_loss` on ε, AdamW (lr 2e-4, β = (0.95, 0.999), weight decay 1e-6, ε 1e-8),
cosine decay with linear warm-up (`get_cosine_schedule_with_warmup`), gradient clipping at 1, random horizontal flips,
and `EMAModel` with its warm-up (inv_gamma 1, power 3/4, max decay 0.9999).

The budget is wall-clock: the cosine schedule is planned over the number of steps that fit `--minutes`, measured on the
first steps (a user would pick `--num_epochs` to fit; this gives the peer the best plan it could have). Checkpoints are
written in ddpm_nb's format (EMA weights converted with `UNet.from_diffusers`, with their step and elapsed seconds), so
`ddpm_nb.evaluate.score_run` scores both runs with the same sampler and the same classifier.

    python bench/diffusers_train.py --minutes 15 --out runs/diffusers_15min
"""
from __future__ import annotations
import argparse, json, math, os, platform, time
from pathlib import Path
import torch
import torch.nn.functional as F


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--minutes', type=float, default=15.0, help='wall-clock budget (training only; data loading excluded)')
    ap.add_argument('--out', default='runs/diffusers_15min', help='run directory (checkpoints ckpt-*)')
    ap.add_argument('--preset', default='fashion_mnist', help='ddpm_nb UNet preset whose shape the UNet2DModel takes')
    ap.add_argument('--dataset', default='fashion_mnist')
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--lr', type=float, default=2e-4)
    ap.add_argument('--warmup', type=int, default=500, help="diffusers' default; capped at 10%% of the planned steps")
    ap.add_argument('--save-every-minutes', type=float, default=3.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: all cores)')
    a = ap.parse_args(argv)

    from diffusers import UNet2DModel, DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel
    from ddpm_nb.unet import UNet
    from ddpm_nb.data import load_images, to_model_range
    from ddpm_nb.checkpoint import CKPT_FORMATS, save_checkpoint, latest_checkpoint
    from ddpm_nb.diffusion import GaussianDiffusion

    if a.threads: torch.set_num_threads(a.threads)
    out = Path(a.out)
    if latest_checkpoint(out) is not None: raise SystemExit(f"{out} already holds checkpoints; choose another --out")
    images, _ = load_images(a.dataset, split='train')
    N, C, H, W = images.shape
    torch.manual_seed(a.seed)
    ours = UNet.from_preset(a.preset, in_ch=C, resolution=H)
    net = UNet2DModel(**ours.to_diffusers_config())
    net.load_state_dict(ours.to_diffusers_state_dict())
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear', beta_start=1e-4, beta_end=0.02)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    ema = EMAModel(net.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75,
                   model_cls=UNet2DModel, model_config=net.config)
    g = torch.Generator().manual_seed(a.seed + 1)

    def batch():
        idx = torch.randint(0, N, (a.batch_size,), generator=g)
        x = to_model_range(images[idx])
        flip = torch.rand(a.batch_size, generator=g) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def step(lr_sched=None):
        x = batch()
        noise = torch.randn(x.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (a.batch_size,), generator=g)
        loss = F.mse_loss(net(sched.add_noise(x, noise, t), t).sample.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        if lr_sched is not None: lr_sched.step()
        ema.step(net.parameters())
        return loss.item()

    budget = 60 * a.minutes
    config = {'format': CKPT_FORMATS[-1], 'model': {'class': 'UNet', 'config': dict(ours.config, dropout=0.0)},
              'diffusion': GaussianDiffusion.from_config(   # DDPMScheduler's process, as ddpm_nb samples it
                  dict(beta_schedule='linear', T=1000, beta_start=1e-4, beta_end=0.02, model_mean_type='eps',
                       model_var_type='fixedlarge', loss_type='mse')).to_config(),
              'dataset': {'name': a.dataset, 'split': 'train', 'n': N, 'shape': [C, H, W]},
              'provenance': {'what': "diffusers' train_unconditional.py recipe (UNet2DModel, DDPMScheduler, AdamW, cosine, EMAModel)",
                             'command': 'python bench/diffusers_train.py ' + ' '.join(f'--{k.replace("_", "-")} {v}' for k, v in vars(a).items() if v is not None),
                             'machine': platform.processor() or platform.machine(), 'threads': torch.get_num_threads(),
                             'lr': a.lr, 'batch_size': a.batch_size}}

    def save(n, elapsed):
        ema.store(net.parameters()); ema.copy_to(net.parameters())
        sd = UNet.from_diffusers(net.state_dict(), config=ours.config).state_dict()
        ema.restore(net.parameters())
        cfg = dict(config, elapsed=elapsed)
        cfg['provenance'] = dict(config['provenance'], images_seen=n * a.batch_size, wall_time_s=elapsed)
        save_checkpoint(out, n, cfg, sd, sd, state=None, keep=100)

    net.train()
    t0 = time.time(); n = 0
    # plan: 3 warm-up steps, then time 10 steps and fix the cosine schedule over the steps that fit in the budget
    def planning_step():                          # the start of a linear warm-up while the plan is measured
        for g_ in opt.param_groups: g_['lr'] = a.lr * (n + 1) / 100
        return step()
    for _ in range(3): planning_step(); n += 1
    t1 = time.time()
    for _ in range(10): planning_step(); n += 1
    per_step = (time.time() - t1) / 10
    planned = max(n + 10, int(n + (budget - (time.time() - t0)) / per_step))
    warm = min(a.warmup, planned // 10)
    for g_ in opt.param_groups: g_['lr'] = a.lr; g_['initial_lr'] = a.lr
    lr_sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=warm, num_training_steps=planned)
    config['provenance'].update(planned_steps=planned, warmup=warm)
    next_save, losses = 60 * a.save_every_minutes, []
    while True:
        losses.append(step(lr_sched)); n += 1
        el = time.time() - t0
        if n % 10 == 0:
            print(json.dumps({'step': n, 'loss': sum(losses) / len(losses), 'lr': lr_sched.get_last_lr()[0],
                              'elapsed': round(el, 1)}), flush=True)
            losses = []
        if el >= budget or n >= planned:
            save(n, el); break
        if el >= next_save:
            save(n, el); next_save += 60 * a.save_every_minutes
    print(json.dumps({'done': True, 'steps': n, 'elapsed': round(time.time() - t0, 1), 'out': str(out)}), flush=True)


if __name__ == '__main__': main()
