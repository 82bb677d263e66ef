"""ddpm_nb: Denoising Diffusion Probabilistic Models (Ho et al. 2020), derived equation by equation and implemented in PyTorch.

`import ddpm_nb` gives the user's workflow: a noise schedule, a diffusion (or a respaced one), its network, a training
run, a trained model loaded back, and samples from it. Everything else lives in its module (`ddpm_nb.likelihood`,
`ddpm_nb.evaluate`, ...)."""
__version__ = "0.1.0"
from .schedules import get_beta_schedule
from .diffusion import GaussianDiffusion
from .respace import SpacedDiffusion
from .unet import UNet
from .config import TrainConfig
from .train import train
from .checkpoint import load_model
from .sample import sample

__all__ = ['get_beta_schedule', 'GaussianDiffusion', 'SpacedDiffusion', 'UNet', 'TrainConfig', 'train', 'load_model',
           'sample']
