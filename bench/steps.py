"""The training steps that every training benchmark here times: ddpm_nb's and diffusers' loop, on the same weights.

`build_pair` makes ddpm_nb's U-Net and diffusers' `UNet2DModel` with the same weights; `ours_step` and `diffusers_step`
return one optimizer step of each as a function of a batch (x0, t, noise), with the measures a benchmark varies:
bf16 autocast, channels_last inputs, torch.compile. Neither has EMA or gradient clipping: both do the same work.
Imported by `train_speed.py`, `train_step.py` and `gpu_speed.py`, not run on its own.
"""
from __future__ import annotations
import copy
import torch
import torch.nn.functional as F

from common import count_flops


def linear_diffusion(T:int=1000):
    "ddpm_nb's diffusion with the paper's linear schedule (β from 1e-4 to 0.02 over T steps)."
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.schedules import get_beta_schedule
    return GaussianDiffusion(get_beta_schedule('linear', T))

def linear_scheduler(T:int=1000, **kw):
    "diffusers' `DDPMScheduler` with the same schedule; `kw` for its sampling options (variance_type, clip_sample)."
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=T, beta_schedule='linear', beta_start=1e-4, beta_end=0.02, **kw)

def adam(params, kind:str='default', lr:float=2e-4, cls=torch.optim.Adam):
    "An Adam (or `cls`, e.g. AdamW) in one of torch's implementations: 'default', 'foreach' or 'fused'."
    kw = {'default': {}, 'foreach': {'foreach': True}, 'fused': {'fused': True}}[kind]
    return cls(params, lr=lr, **kw)

def build_pair(name:str, device='cpu', seed:int=0, **overrides):
    """ddpm_nb's UNet (`UNet.from_preset(name, **overrides)`) and diffusers' UNet2DModel with the same, perturbed,
    weights (through the package's interop), both on `device`."""
    from diffusers import UNet2DModel
    from ddpm_nb.unet import UNet
    import ddpm_nb.interop   # UNet.to_diffusers_config, .to_diffusers_state_dict, .from_diffusers
    torch.manual_seed(seed)
    ours = UNet.from_preset(name, **overrides)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():   # the zero-initialised last layers would make the two trivially equal: perturb every weight
        for p in ours.parameters(): p.add_(torch.randn(p.shape, generator=g) * 0.02)
    theirs = UNet2DModel(**ours.to_diffusers_config())
    theirs.load_state_dict(ours.to_diffusers_state_dict())
    return ours.to(device), theirs.to(device)

def shared_pair(ctx:dict, preset:str, device):
    "The pair kept in `ctx` (the training section's, when it ran), else a new `build_pair(preset)`, kept there."
    if 'pair' not in ctx: ctx['pair'] = build_pair(preset, device)
    return ctx['pair']

def same_loss(ours, theirs, diffusion, sched, x0, t, noise):
    "Each library's loss on one batch in eval mode (no dropout), without gradients: equal when the weights are."
    ours.eval(); theirs.eval()
    with torch.no_grad():
        lo = diffusion.training_losses(ours, x0, t, noise=noise)['loss'].mean().item()
        lt = F.mse_loss(theirs(sched.add_noise(x0, noise, t), t).sample, noise).item()
    ours.train(); theirs.train()
    return lo, lt

def step_flops(model, diffusion, x0, t, noise):
    "FLOPs of one training step's forward and backward on a copy of `model` (the optimizer's are not counted)."
    m = copy.deepcopy(model)
    return count_flops(lambda: diffusion.training_losses(m, x0, t, noise=noise)['loss'].mean().backward())

def _cl(x): return x.contiguous(memory_format=torch.channels_last)

def ours_step(model, diffusion, opt, device, bf16:bool=False, cl:bool=False, compiled:bool=False):
    """ddpm_nb's training step as `Trainer` runs it, less EMA and clipping: `training_losses` (under bf16 autocast with
    `bf16`, on channels_last inputs with `cl`, through `torch.compile` with `compiled`), backward, `opt.step()`."""
    net = torch.compile(model) if compiled else model
    amp, dev = (torch.bfloat16 if bf16 else None), torch.device(device).type
    def step(x0, t, noise):
        if cl: x0, noise = _cl(x0), _cl(noise)
        with torch.autocast(dev, dtype=amp, enabled=amp is not None):
            loss = diffusion.training_losses(net, x0, t, noise=noise)['loss'].float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step

def diffusers_step(model, sched, opt, device, bf16:bool=False, cl:bool=False, compiled:bool=False):
    """diffusers' training loop (its train_unconditional example, less EMA and accelerate): `add_noise`, the UNet
    (autocast, layout and compile as in `ours_step`), MSE on ε, backward, `opt.step()`."""
    net = torch.compile(model) if compiled else model
    amp, dev = (torch.bfloat16 if bf16 else None), torch.device(device).type
    def step(x0, t, noise):
        if cl: x0, noise = _cl(x0), _cl(noise)
        noisy = sched.add_noise(x0, noise, t)
        with torch.autocast(dev, dtype=amp, enabled=amp is not None):
            pred = net(noisy, t).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step
