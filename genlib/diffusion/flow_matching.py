"""Flow matching: straight-path velocity regression and Euler sampling (Chapter 8)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlib import checks
from genlib.diffusion.schedules import _noise
from genlib.diffusion.model import DiffusionConfig, make_net


# ----------------------------------------------------------------------------- flow matching


@dataclass(frozen=True)
class FlowMatchingConfig:
    """Flow matching's network (it has no schedule, no T and no objective to choose). Defaults: digits."""

    dims: int = 64                             # D
    shape: tuple[int, int] | None = (8, 8)     # image shape for the U-Net (None: vectors)
    net: str = "unet"                          # "unet" | "mlp"
    width: int = 32                            # U-Net base channels or MLP hidden units
    layers: int = 3                            # hidden layers of the MLP
    fourier: int = 0                           # MLP: Fourier features of x at this many frequencies
    clip: float | None = 1.0                   # sampling: clip the end point to [−clip, clip] (None: no clipping)
    freqs: tuple[float, ...] = ()              # U-Net: per-pixel Fourier features sin/cos(ω x) at these ω

    def __post_init__(self):
        # the shared fields are checked by DiffusionConfig's rules (one place for them)
        DiffusionConfig(**{k: getattr(self, k) for k in _SHARED_FIELDS})

    @classmethod
    def for_dataset(cls, name: str, **overrides) -> "FlowMatchingConfig":
        """:meth:`DiffusionConfig.for_dataset`'s network for ``name`` (U-Net and clipping for images, an MLP
        with Fourier features for 2-D toys)."""
        return cls.from_diffusion(DiffusionConfig.for_dataset(name, **overrides))

    @classmethod
    def from_diffusion(cls, config: DiffusionConfig) -> "FlowMatchingConfig":
        """The network fields of a :class:`DiffusionConfig` (its schedule, T and objective dropped)."""
        return cls(**{k: getattr(config, k) for k in _SHARED_FIELDS})


_SHARED_FIELDS = ("dims", "shape", "net", "width", "layers", "fourier", "clip", "freqs")


class FlowMatching(nn.Module):
    """Flow matching with straight paths: x_t = (1 − t) x_0 + t ε, t ∈ [0, 1], whose velocity
    dx_t/dt = ε − x_0 a network v_θ(x_t, t) regresses; sampling integrates dx/dt = v_θ from t = 1
    (noise) to t = 0 (data) with Euler steps. Same networks as :class:`Diffusion`. A
    :class:`DiffusionConfig` is accepted too and converted (:meth:`FlowMatchingConfig.from_diffusion`)."""

    def __init__(self, config: FlowMatchingConfig):
        super().__init__()
        if isinstance(config, DiffusionConfig):
            config = FlowMatchingConfig.from_diffusion(config)
        if not isinstance(config, FlowMatchingConfig):
            raise TypeError(f"config must be a FlowMatchingConfig, got {type(config).__name__}")
        self.config = config
        self.net = make_net(config)

    def velocity(self, xt: torch.Tensor, t) -> torch.Tensor:
        return self.net(xt, torch.as_tensor(t, dtype=xt.dtype, device=xt.device).expand(len(xt)))

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of ‖v_θ(x_t, t) − (ε − x_0)‖² with t ~ U(0, 1), ε ~ N(0, I)."""
        checks.tensor("x", x0, (None, self.config.dims), finite=True, floating=True)
        checks.no_labels(y, "flow matching")
        t = torch.rand(len(x0), 1, generator=generator).to(x0.device)  # (B, 1)
        eps = _noise(x0, generator)
        xt = (1 - t) * x0 + t * eps
        return (self.net(xt, t[:, 0]) - (eps - x0)).pow(2).mean()

    @torch.no_grad()
    def sample(self, n: int, *, y: torch.Tensor | None = None, steps: int = 100,
               generator: torch.Generator | None = None, trajectory: bool = False, x_T: torch.Tensor | None = None):
        """x_1 ~ N(0, I), then x_{t−h} = x_t − h v_θ(x_t, t) for ``steps`` steps of h = 1/steps."""
        checks.positive_int("n", n)
        checks.no_labels(y, "flow matching")
        checks.positive_int("steps", steps)
        if x_T is not None:
            checks.tensor("x_T", x_T, (n, self.config.dims), finite=True, floating=True)
        p = next(self.parameters())
        x = torch.randn(n, self.config.dims, generator=generator).to(p.device) if x_T is None else x_T
        visited = [(1.0, x.cpu())]
        for i in range(steps):
            t = 1 - i / steps
            x = x - self.velocity(x, t) / steps
            if trajectory:
                visited.append((1 - (i + 1) / steps, x.cpu()))
        if self.config.clip is not None:
            x = x.clamp(-self.config.clip, self.config.clip)
        return (x, visited) if trajectory else x
