r"""Energy-based models (Chapter 3).

A network assigns every point a scalar energy E_θ(x); the model is the normalised Boltzmann density

    p_θ(x) = exp(−E_θ(x)) / Z(θ),    Z(θ) = ∫ exp(−E_θ(x)) dx,

so low energy means high probability, and ratios p_θ(x₁)/p_θ(x₂) = exp(E_θ(x₂) − E_θ(x₁)) need no Z.
The log-likelihood gradient splits into a data term and a model term (∇_θ log Z = E_{p_θ}[∇_θ E_θ]):

    ∇_θ E_data[log p_θ(x)] = −E_{x∼p_data}[∇_θ E_θ(x)] + E_{x̂∼p_θ}[∇_θ E_θ(x̂)],

"push the energy of data down, push the energy of model samples up". Contrastive divergence (CD)
minimises the surrogate  mean E_θ(x) − mean E_θ(x̂)  (whose gradient is minus the above) with x̂ drawn
by a few steps of Langevin dynamics (the book's convention, as in chapters 1 and 8),

    x_{t+1} = x_t − (η/2) ∇_x E_θ(x_t) + σ ε_t,    ε_t ∼ N(0, I),

which samples p_θ as η → 0 when σ = √η; practice for images decouples σ from η (a "colder",
sharper sampler). Chains persist between updates in a replay buffer (persistent CD, or persistent
short-run MCMC: unlike Hinton's CD-k, the chains do not start at the data), a small fraction
restarting from noise each time. The surrogate's gradient equals minus the log-likelihood gradient
in expectation over exact model samples, and only when λ = 0.

Contents: :func:`langevin`, :class:`ReplayBuffer`, :class:`EnergyNet` (an MLP E: R^D → R) inside
:class:`EBM` (network + sampler settings + buffer), :func:`cd_loss` and the training loss object
:class:`ContrastiveDivergence` for :func:`genlib.train.fit`, :func:`grad_terms` (the two terms of the
gradient, measured), and :class:`GridDensity`, which normalises a 2-D energy by quadrature on a grid
(exact log-likelihoods and exact samples, for teaching and testing).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from genlib import checks, data, metrics, nets
from genlib._core import rand, randn
from genlib.family import Family

Energy = Callable[[torch.Tensor], torch.Tensor]  # (B, D) -> (B,)


# ----------------------------------------------------------------------------- Langevin dynamics


def energy_grad(energy: Energy, x: torch.Tensor) -> torch.Tensor:
    """∇_x E(x) for a batch ``x`` (B, D) -> (B, D); no gradient reaches the energy's parameters."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
    return grad


def langevin(energy: Energy, x0: torch.Tensor, n_steps: int, step_size: float,
             noise_scale: float | None = None, clip_grad: float | None = None,
             bounds: tuple[float, float] | None = None, generator: torch.Generator | None = None,
             return_chain: bool = False):
    r"""Run ``n_steps`` of Langevin dynamics from ``x0`` (B, D) on ``energy``.

    ``x ← x − (step_size / 2) · ∇_x E(x) + noise_scale · ε`` with ε standard normal (η = step_size,
    the convention of chapters 1 and 8); ``noise_scale=None`` means √step_size, the discretised
    Langevin diffusion whose stationary law tends to exp(−E)/Z as the step shrinks. ``clip_grad``
    clamps every gradient entry to ±clip_grad; ``bounds=(low, high)`` clamps the chain to a box (pixels). Returns the final states (B, D),
    detached, or with ``return_chain`` the whole chain (n_steps + 1, B, D).
    """
    checks.non_negative_int("n_steps", n_steps)
    checks.positive("step_size", step_size)
    checks.tensor("x0", x0, finite=True, floating=True)
    if clip_grad is not None:
        checks.positive("clip_grad", clip_grad)  # -1 would clamp every gradient entry to -1
    sigma = math.sqrt(step_size) if noise_scale is None else checks.non_negative("noise_scale", noise_scale)
    x = x0.detach().clone()
    chain = [x] if return_chain else None
    for _ in range(n_steps):
        grad = energy_grad(energy, x)
        if clip_grad is not None:
            grad = grad.clamp(-clip_grad, clip_grad)
        x = x - 0.5 * step_size * grad + sigma * randn(x.shape, x, generator)
        if bounds is not None:
            x = x.clamp(*bounds)
        if return_chain:
            chain.append(x)
    return torch.stack(chain) if return_chain else x


# ----------------------------------------------------------------------------- replay buffer


class ReplayBuffer:
    """Persistent chains: ``size`` states (size, D), started as uniform noise on ``[low, high]^D``.

    :meth:`draw` hands out ``n`` random states, each replaced by fresh noise with probability
    ``reinit`` (so the buffer keeps meeting new starting points); :meth:`put` writes the advanced
    states back in their slots. The buffer never changes size. ``age`` (size,) counts, for every
    chain, the updates (calls of :meth:`put`) it has been advanced by since it last started from
    noise: times the sampler's steps per update, the chain's length in Langevin steps.
    """

    def __init__(self, size: int, dims: int, low: float, high: float, reinit: float = 0.05,
                 generator: torch.Generator | None = None):
        self.size, self.dims = checks.positive_int("buffer_size", size), checks.positive_int("dims", dims)
        self.low, self.high = checks.finite_number("low", low), checks.finite_number("high", high)
        self.reinit = checks.in_unit_interval("reinit", reinit, closed_right=True)
        self.x = self.noise(size, generator)  # (size, D)
        self.age = torch.zeros(size, dtype=torch.long)  # (size,) updates since the last restart
        self._fresh = torch.zeros(0, dtype=torch.bool)  # (n,) which of the last draw's states restarted

    def noise(self, n: int, generator: torch.Generator | None = None, like: torch.Tensor | None = None):
        """``n`` fresh starting points, uniform on the box. Shape (n, D)."""
        like = torch.empty(0) if like is None else like
        return self.low + (self.high - self.low) * rand((n, self.dims), like, generator)

    def draw(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, slots)``: ``n`` states (n, D) from random slots (n,), a ``reinit`` fraction re-noised."""
        slots = torch.randint(self.size, (n,), generator=generator)
        x = self.x[slots].clone()
        fresh = torch.rand(n, generator=generator) < self.reinit  # (n,) restart these chains
        x[fresh] = self.noise(int(fresh.sum()), generator, like=x)
        self._fresh = fresh
        return x, slots

    def put(self, slots: torch.Tensor, x: torch.Tensor) -> None:
        """Write states ``x`` (n, D) back into ``slots`` (n,). A slot drawn twice keeps its last state
        (an indexed write with repeated indices leaves the winner unspecified, so runs would differ).
        When ``slots`` are those of the last :meth:`draw`, each written chain's ``age`` grows by one
        (restarts from 1); any other write resets the written slots' age to 0 (unknown history)."""
        slots = slots.cpu()
        order = torch.arange(len(slots))
        last = torch.full((self.size,), -1).scatter_reduce(0, slots, order, reduce="amax")  # (size,)
        keep = last[slots] == order  # (n,) the last occurrence of each slot
        self.x[slots[keep]] = x.detach()[keep.to(x.device)].to(self.x.device, self.x.dtype)
        if len(self._fresh) == len(slots):
            self.age[slots[keep]] = torch.where(self._fresh[keep], 1, self.age[slots[keep]] + 1)
        else:
            self.age[slots[keep]] = 0
        self._fresh = torch.zeros(0, dtype=torch.bool)

    def reset(self, generator: torch.Generator | None = None) -> None:
        """Start every chain afresh: all ``size`` states uniform noise on the box again."""
        self.x = self.noise(self.size, generator)
        self.age = torch.zeros(self.size, dtype=torch.long)


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class EBMConfig:
    """An energy network and its sampler. Defaults are the book profile's 2-D toys."""

    dims: int = 2                      # D
    hidden: int = 64                   # width of each hidden layer
    layers: int = 2                    # hidden layers of the MLP
    low: float = -4.0                  # the box [low, high]^D: where chains start (uniform noise)
    high: float = 4.0
    clamp: bool = False                # keep chains inside the box (pixels)
    n_steps: int = 20                  # Langevin steps per training update (short-run)
    step_size: float = 0.04            # η (the drift is η/2 · ∇_x E)
    noise_scale: float | None = None   # σ (None: √η, the Langevin diffusion)
    clip_grad: float | None = None     # clamp each ∇_x E entry to ±clip_grad
    buffer_size: int = 2000            # persistent chains (0: every chain starts from noise)
    reinit: float = 0.05               # fraction of chains restarted from noise at each draw
    reg: float = 0.01                  # λ: weight of the energy regulariser λ (E(x)² + E(x̂)²)
    data_noise: float = 0.0            # std of Gaussian noise added to each training batch

    def __post_init__(self):
        for name in ("dims", "hidden", "layers", "n_steps"):
            checks.positive_int(name, getattr(self, name))
        checks.non_negative_int("buffer_size", self.buffer_size)
        if checks.finite_number("high", self.high) <= checks.finite_number("low", self.low):
            raise ValueError(f"high must be > low, got low={self.low!r}, high={self.high!r}")
        checks.positive("step_size", self.step_size)
        if self.noise_scale is not None:
            checks.non_negative("noise_scale", self.noise_scale)
        if self.clip_grad is not None:
            checks.positive("clip_grad", self.clip_grad)
        checks.in_unit_interval("reinit", self.reinit, closed_right=True)
        checks.non_negative("reg", self.reg)
        checks.non_negative("data_noise", self.data_noise)

    @classmethod
    def for_dataset(cls, name: str, **overrides) -> "EBMConfig":
        """Book-profile settings: a 2-D toy (box [−4, 4]², the Langevin diffusion σ = √η) or images
        (pixels in [0, 1], clamped chains, a large clipped step with small noise as in Du & Mordatch
        2019, and a stronger energy regulariser)."""
        from genlib import data

        data.check_dataset(name, data.TOYS + ("digits", "mnist5k", "mnist"))
        images = dict(low=0.0, high=1.0, clamp=True, n_steps=20, step_size=2.0, noise_scale=0.01,
                      clip_grad=0.03, buffer_size=2000, reinit=0.05, reg=1.0, data_noise=0.01)
        if name == "digits":
            base = dict(dims=64, hidden=128, layers=2, **images)
        elif name in ("mnist5k", "mnist"):
            base = dict(dims=784, hidden=512, layers=2, **images)
        else:
            base = {}
        return cls(**{**base, **overrides})


@dataclass(frozen=True)
class TrainConfig:
    """How the book trains an EBM with :func:`genlib.train.fit` (Adam; no validation loss: the CD
    loss hovers near zero and measures nothing, so there is no early stopping)."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 2e-3

    @classmethod
    def for_dataset(cls, name: str, **overrides) -> "TrainConfig":
        """2-D toys: 100 epochs of batches of 128 at lr 2e-3; images: 30 epochs of 100 at lr 1e-3."""
        from genlib import data

        base = {} if name in data.TOYS else dict(epochs=30, batch_size=100, lr=1e-3)
        return cls(**{**base, **overrides})


class EnergyNet(nn.Module):
    """An MLP ``(B, D) -> (B,)`` with smooth (SiLU) activations, so ∇_x E is smooth for Langevin."""

    def __init__(self, dims: int, hidden: int, layers: int):
        super().__init__()
        self.net = nets.mlp(dims, 1, hidden, layers, act=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (B, D) -> (B,)


class EBM(nn.Module):
    """An energy-based model: ``energy`` E_θ(x), its unnormalised log-density −E_θ(x), a Langevin
    sampler with the settings of its :class:`EBMConfig`, and the replay buffer its training uses."""

    def __init__(self, config: EBMConfig = EBMConfig(), generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.net = EnergyNet(config.dims, config.hidden, config.layers)
        self.buffer = (ReplayBuffer(config.buffer_size, config.dims, config.low, config.high, config.reinit,
                                    generator) if config.buffer_size > 0 else None)

    def get_extra_state(self) -> torch.Tensor:
        """The replay buffer's chains (size, D) travel in the state dict, so a saved model samples
        ``from_buffer`` as the trained one did; (0, D) for a model without a buffer."""
        return self.buffer.x if self.buffer is not None else torch.empty(0, self.config.dims)

    def set_extra_state(self, state: torch.Tensor) -> None:
        """Restore the buffer's chains; a model without a buffer keeps none (it loads weights only)."""
        if self.buffer is None or state.numel() == 0:
            return
        if tuple(state.shape) != tuple(self.buffer.x.shape):
            raise ValueError(f"the saved replay buffer holds {tuple(state.shape)} chains, "
                             f"this model's holds {tuple(self.buffer.x.shape)}")
        self.buffer.x = state.detach().to(self.buffer.x.device, self.buffer.x.dtype).clone()

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """E_θ(x) for ``x`` (B, D) -> (B,)."""
        checks.tensor("x", x, (None, self.config.dims), finite=True, floating=True)
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy(x)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` starting points, uniform on the config's box. (n, D)"""
        like = next(self.parameters())
        low, high = self.config.low, self.config.high
        return low + (high - low) * rand((n, self.config.dims), like.detach(), generator)

    def langevin(self, x0: torch.Tensor, generator: torch.Generator | None = None,
                 return_chain: bool = False, **overrides):
        """:func:`langevin` on this energy from ``x0`` (B, D) with the config's sampler settings;
        ``overrides`` (``n_steps``, ``step_size``, ``noise_scale``, ``clip_grad``) replace them for this call."""
        c = self.config
        settings = dict(n_steps=c.n_steps, step_size=c.step_size, noise_scale=c.noise_scale, clip_grad=c.clip_grad)
        unknown = set(overrides) - set(settings)
        if unknown:
            raise TypeError(f"unknown sampler setting(s) {sorted(unknown)}; choose from: {', '.join(settings)}")
        settings.update(overrides)
        return langevin(self.energy, x0, bounds=(c.low, c.high) if c.clamp else None, generator=generator,
                        return_chain=return_chain, **settings)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """The contrastive-divergence loss of a batch ``x`` (B, D) against the model's own chains (the
        persistent ones of the replay buffer, advanced by the sampler): one :class:`ContrastiveDivergence` step."""
        checks.no_labels(y, "the EBM")
        return ContrastiveDivergence(generator)(self, (x,))

    def sample(self, n: int, *, y: torch.Tensor | None = None, n_steps: int | None = None,
               generator: torch.Generator | None = None, from_buffer: bool = False) -> torch.Tensor:
        """``n`` samples (n, D): Langevin chains started from uniform noise (or from the replay buffer)."""
        checks.positive_int("n", n)
        checks.no_labels(y, "the EBM")
        if from_buffer and self.buffer is not None:
            x0 = self.buffer.draw(n, generator)[0].to(next(self.parameters()).device)
        else:
            x0 = self.noise(n, generator)
        return self.langevin(x0, generator, **({} if n_steps is None else {"n_steps": n_steps}))


# ----------------------------------------------------------------------------- contrastive divergence


def cd_loss(model: EBM, x: torch.Tensor, x_hat: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    """The contrastive-divergence surrogate: mean E_θ(x) − mean E_θ(x̂) + λ mean(E_θ(x)² + E_θ(x̂)²).

    With exact model samples x̂ ∼ p_θ, its θ-gradient is in expectation −(the log-likelihood
    gradient), plus the regulariser's, which keeps energies near zero (the surrogate is otherwise
    invariant to E → E + c) and, for λ > 0, makes the objective differ from maximum likelihood.
    """
    e_data, e_model = model.energy(x), model.energy(x_hat.detach())  # (B,), (B',)
    return e_data.mean() - e_model.mean() + reg * ((e_data ** 2).mean() + (e_model ** 2).mean())


def grad_terms(model: nn.Module, x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of the likelihood gradient, flattened over all parameters (P,):
    ``g_data = mean ∇_θ E_θ(x)`` (pushes data energy down) and ``g_model = mean ∇_θ E_θ(x̂)``
    (pushes sample energy up); ∇_θ mean log p_θ(x) = −g_data + g_model."""
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        g_data = torch.autograd.grad(model.energy(x).mean(), params)
        g_model = torch.autograd.grad(model.energy(x_hat.detach()).mean(), params)
    flat = lambda g: torch.cat([t.reshape(-1) for t in g])  # noqa: E731
    return flat(g_data), flat(g_model)


@dataclass
class CDRecord:
    """What :class:`ContrastiveDivergence` saw at each training step (lists over steps)."""

    e_data: list[float] = field(default_factory=list)    # mean E_θ(x) of the data batch
    e_model: list[float] = field(default_factory=list)   # mean E_θ(x̂) of the model samples
    monitored_steps: list[int] = field(default_factory=list)
    g_data: list[float] = field(default_factory=list)    # ‖mean ∇_θ E(x)‖ at the monitored steps
    g_model: list[float] = field(default_factory=list)   # ‖mean ∇_θ E(x̂)‖
    g_diff: list[float] = field(default_factory=list)    # ‖−g_data + g_model‖: the update's size
    snapshots: list[tuple[int, dict, torch.Tensor]] = field(default_factory=list)  # (step, weights, x̂)


class ContrastiveDivergence:
    """The loss ``loss(model, batch)`` that :func:`genlib.train.fit` minimises to train an :class:`EBM`.

    Each call: draw chain states from the model's replay buffer (or fresh noise when it has none),
    run the model's Langevin sampler on them, put them back, and return :func:`cd_loss`. It keeps a
    :class:`CDRecord`: the mean energies every step, the norms of the two gradient terms every
    ``monitor_every`` steps, and a copy of the weights and samples every ``snapshot_every`` steps.
    """

    def __init__(self, generator: torch.Generator | None = None, monitor_every: int = 0,
                 snapshot_every: int = 0):
        self.generator = generator
        self.monitor_every = checks.non_negative_int("monitor_every", monitor_every)
        self.snapshot_every = checks.non_negative_int("snapshot_every", snapshot_every)
        self.step = 0
        self.record = CDRecord()

    def samples(self, model: EBM, n: int) -> torch.Tensor:
        """x̂: ``n`` chains advanced by the model's sampler (persistent when it has a buffer). (n, D)"""
        device = next(model.parameters()).device
        if model.buffer is None:
            return model.langevin(model.noise(n, self.generator), self.generator)
        x0, slots = model.buffer.draw(n, self.generator)
        x_hat = model.langevin(x0.to(device), self.generator)
        model.buffer.put(slots, x_hat)
        return x_hat

    def __call__(self, model: EBM, batch) -> torch.Tensor:
        x = checks.support("x", checks.images("x", batch[0], dims=model.config.dims), "real")
        if model.config.data_noise > 0:
            x = x + model.config.data_noise * randn(x.shape, x, self.generator)
        x_hat = self.samples(model, len(x))
        loss = cd_loss(model, x, x_hat, model.config.reg)
        self._observe(model, x, x_hat)
        return loss

    def _observe(self, model: EBM, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        step, r = self.step, self.record
        with torch.no_grad():
            r.e_data.append(float(model.energy(x).mean()))
            r.e_model.append(float(model.energy(x_hat).mean()))
        if self.monitor_every and step % self.monitor_every == 0:
            g_data, g_model = grad_terms(model, x, x_hat)
            r.monitored_steps.append(step)
            r.g_data.append(float(g_data.norm()))
            r.g_model.append(float(g_model.norm()))
            r.g_diff.append(float((g_model - g_data).norm()))
        if self.snapshot_every and step % self.snapshot_every == 0:
            weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            r.snapshots.append((step, weights, x_hat.detach().cpu().clone()))
        self.step += 1


# ----------------------------------------------------------------------------- 2-D: Z by quadrature


class GridDensity:
    r"""A 2-D energy normalised on a box by the midpoint rule: the model read as an exact density.

    The box ``bounds = (x_min, x_max, y_min, y_max)`` is cut into ``steps × steps`` cells of area
    ``h²`` with centres ``c_j``;  ``log Z ≈ log Σ_j exp(−E(c_j)) h²``  and
    ``log p(x) = −E(x) − log Z`` inside the box (−∞ outside). :meth:`sample` draws cells with
    probabilities ∝ exp(−E(c_j)) (exactly, by a categorical draw), then a uniform point in the cell
    (``jitter=False``: the centre itself, so that sample means of any f equal the grid's
    expectation Σ_j f(c_j) softmax(−E)_j without bias).
    """

    def __init__(self, energy: Energy, bounds: tuple[float, float, float, float] = (-4, 4, -4, 4),
                 steps: int = 200, device: torch.device | str = "cpu"):
        self.energy, self.bounds = energy, tuple(float(b) for b in bounds)
        self.steps = checks.positive_int("steps", steps)
        x_min, x_max, y_min, y_max = self.bounds
        self.hx, self.hy = (x_max - x_min) / steps, (y_max - y_min) / steps
        xs = x_min + self.hx * (torch.arange(steps) + 0.5)
        ys = y_min + self.hy * (torch.arange(steps) + 0.5)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        self.centres = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(device)  # (steps², 2), row-major in y

    def log_weights(self) -> torch.Tensor:
        """−E(c_j) + log h² for every cell (steps²,), differentiable in the energy's parameters."""
        return -self.energy(self.centres) + math.log(self.hx * self.hy)

    def log_z(self) -> torch.Tensor:
        """log Z(θ) by the midpoint rule (a scalar tensor, differentiable in θ)."""
        return torch.logsumexp(self.log_weights(), 0)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p_θ(x) = −E_θ(x) − log Z(θ) for ``x`` (N, 2) -> (N,); −∞ outside the box."""
        checks.support("x", checks.images("x", x, dims=2), "real")
        x_min, x_max, y_min, y_max = self.bounds
        inside = (x[:, 0] >= x_min) & (x[:, 0] <= x_max) & (x[:, 1] >= y_min) & (x[:, 1] <= y_max)
        log_p = -self.energy(x) - self.log_z()
        return torch.where(inside, log_p, torch.full_like(log_p, -math.inf))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, jitter: bool = True) -> torch.Tensor:
        """``n`` exact draws (n, 2) from the grid density (see the class docstring)."""
        probs = torch.softmax(self.log_weights().double().cpu(), 0)
        cells = torch.multinomial(probs, checks.positive_int("n", n), replacement=True, generator=generator)
        x = self.centres.cpu()[cells].clone()
        if jitter:
            u = torch.rand(n, 2, generator=generator) - 0.5
            x = x + u * torch.tensor([self.hx, self.hy])
        return x


# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> EBM:
    """Chapter 3, section 7: the image EBM (MLP energy, persistent CD with a replay buffer)."""
    return EBM(EBMConfig.for_dataset(params.image_dataset, n_steps=params.n_steps))


def _train(model: EBM, params, generator: torch.Generator, options: dict):
    """Chapter 3, section 7: persistent CD on the images, the chains drawn from ``generator`` as there."""
    from genlib.train import fit

    model.buffer.reset(generator)  # the chapter builds the model with this generator: the same starting chains
    settings = TrainConfig.for_dataset(params.image_dataset, epochs=params.image_epochs)
    x = data.images(params.image_dataset, "train").scaled()  # (N, D) in [0, 1]
    return fit(model, ContrastiveDivergence(generator), x, epochs=settings.epochs,
               batch_size=settings.batch_size, lr=settings.lr, generator=generator, **options)


def _remarks(model: EBM, params, seed: int) -> list[str]:
    """The replay buffer's chains scored like the samples, and the mean energies (no likelihood)."""
    T = model.config.n_steps
    train, test = (data.images(params.image_dataset, s).scaled() for s in ("train", "test"))
    gen = torch.Generator().manual_seed(seed + 2000)
    buffer = model.sample(len(test), generator=gen, from_buffer=True)  # the persistent chains, T more steps
    noise = model.sample(len(test), generator=gen)                     # the row's sampler: T steps from noise
    q = metrics.sample_quality(buffer, test)
    with torch.no_grad():
        energy = {name: float(model.energy(x).mean()) for name, x in
                  (("training images", train), ("test images", test), ("chains from noise", noise),
                   ("buffer chains", buffer))}
    return [f"samples: Langevin chains from uniform noise, T = {T} steps (the training chain length); the replay "
            f"buffer's chains (what training saw; 5% restarted from noise, as in training), advanced T steps, score "
            f"instead FD {q['frechet']:.2f}, P/R {q['precision']:.2f}/{q['recall']:.2f}",
            "no likelihood: Z(θ) is unknown; mean energy E_θ (nats, up to the unknown log Z): "
            + ", ".join(f"{k} {v:.3f}" for k, v in energy.items()),
            "no latent features: the energy network maps an image to one number"]


FAMILY = Family(
    name="ebm", chapter="03_energy_models", model=EBM, build=_build, train=_train,
    samples=lambda model, n, generator: model.sample(n, generator=generator),  # in [0, 1]: clamped chains
    describe=lambda model, params: f"EBM (MLP energy, persistent CD, T = {model.config.n_steps})",
    remarks=_remarks, density="energy only", dataset_key="image_dataset",
    inputs=lambda model, x, levels, generator: x.float() / (levels - 1),  # pixels in [0, 1], as trained
    smoke={"image_epochs": 1, "n_steps": 2})
