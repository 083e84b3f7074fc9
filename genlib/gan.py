r"""Generative adversarial networks (Chapter 5).

A generator G_θ pushes noise forward, x = G_θ(z) with z ~ p(z) = N(0, I_L), and so defines a
distribution p_g that has samples but no density. A discriminator D_φ(x) ∈ (0, 1) is trained to
tell data from samples; the two play the minimax game (Goodfellow et al. 2014)

    min_θ max_φ V(D, G),   V = E_{x~p_data}[log D(x)] + E_{z~p(z)}[log(1 − D(G(z)))].

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)), and then
V(D*, G) = 2 JS(p_data ‖ p_g) − log 4, which is smallest, −log 4, exactly when p_g = p_data.

Losses, written on the discriminator's logit a = logit D(x) (so log D = −softplus(−a) and
log(1 − D) = −softplus(a)), each to be *minimised*:

* discriminator:            −E[log D(x)] − E[log(1 − D(G(z)))]            (= −V)
* generator, minimax:        E[log(1 − D(G(z)))]                            (saturates when D(G(z)) ≈ 0)
* generator, non-saturating: −E[log D(G(z))]                                (same fixed point, strong gradient)

Training alternates n_D discriminator steps (``TrainConfig.k``) with one generator step
(:class:`AdversarialStep`, a ``step=`` for :func:`genlib.train.fit`). Two counters to mode collapse
are options of the discriminator: a *minibatch feature* (``minibatch_std``: the batch's standard deviation is one more
input, as in Karras et al. 2018, a simple form of Salimans et al. 2016's minibatch discrimination),
and *packing* (``pack``, PacGAN, Lin et al. 2018: ``pack`` samples judged at once, all real or all
generated). Either way a generator that repeats itself is easy to spot.

Models: MLPs for 2-D data and flat images, DCGAN-style convolutional networks (Radford et al. 2016)
for 8x8 and 28x28 images, and class-conditional variants (Mirza & Osindero 2014) that feed a one-hot
label to both players. A GAN has ``sample`` but no ``log_prob``.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, data, nets
from genlib.family import Family

ARCHS = ("mlp", "conv")
GENERATOR_LOSSES = ("nonsaturating", "minimax")
LOSSES = ("gan", "hinge", "wasserstein")   # the game: Goodfellow et al.'s, the hinge loss, Wasserstein (WGAN)
OUTPUTS = ("linear", "sigmoid")


@dataclass(frozen=True)
class GANConfig:
    """A GAN's networks. Defaults are the book profile's ring of Gaussians (2-D, MLPs)."""

    dims: int = 2                        # D, size of one data point (2 for the toys, 64 for 8x8 digits)
    shape: tuple[int, ...] | None = None # (H, W) for images; needed by arch="conv"
    latent_dim: int = 2                  # L, size of z
    hidden: int = 128                    # MLP width (conv: channels of the first conv layer)
    layers: int = 2                      # hidden layers of each MLP
    arch: str = "mlp"                    # "mlp" | "conv" (DCGAN-style, images only)
    output: str = "linear"               # generator output: "linear" (real data) | "sigmoid" (pixels in [0, 1])
    n_classes: int = 0                   # > 0: conditional GAN (one-hot label to G and D)
    pack: int = 1                        # PacGAN: samples the discriminator judges together (1 = plain GAN)
    minibatch_std: bool = False          # give D the minibatch's standard deviation as an extra feature
    spectral_norm: bool = False          # divide each of D's weight matrices by its largest singular value

    def __post_init__(self):
        checks.positive_int("dims", self.dims)
        checks.positive_int("latent_dim", self.latent_dim)
        checks.positive_int("hidden", self.hidden)
        checks.positive_int("layers", self.layers)
        checks.choice("arch", self.arch, ARCHS)
        checks.choice("output", self.output, OUTPUTS)
        checks.non_negative_int("n_classes", self.n_classes)
        checks.positive_int("pack", self.pack)
        if not isinstance(self.spectral_norm, bool) or not isinstance(self.minibatch_std, bool):
            raise ValueError(f"spectral_norm and minibatch_std must be True or False, got "
                             f"{self.spectral_norm!r} and {self.minibatch_std!r}")
        if self.arch == "conv":
            if self.shape is None or len(self.shape) != 2 or self.shape[0] * self.shape[1] != self.dims \
                    or self.shape[0] % 4 or self.shape[1] % 4:
                raise ValueError(f"arch='conv' needs shape=(H, W) with H*W = dims and H, W divisible by 4, "
                                 f"got shape={self.shape!r}, dims={self.dims}")

    @classmethod
    def for_dataset(cls, name: str, **overrides) -> "GANConfig":
        """Images: pixels in [0, 1] from a sigmoid; 8x8 digits or 28x28 MNIST."""
        base = {"digits": dict(dims=64, shape=(8, 8)), "mnist": dict(dims=784, shape=(28, 28)),
                "mnist5k": dict(dims=784, shape=(28, 28))}
        checks.choice("dataset", name, base)
        defaults = dict(latent_dim=16, hidden=256, output="sigmoid")
        return cls(**{**defaults, **base[name], **overrides})


# ----------------------------------------------------------------------------- networks


def one_hot(y: torch.Tensor | None, n_classes: int) -> torch.Tensor | None:
    """Labels (B,) -> one-hot (B, n_classes) floats, or None for an unconditional model."""
    if n_classes == 0:
        checks.no_labels(y, "this GAN (n_classes=0)")
        return None
    if y is None:
        raise ValueError(f"a conditional GAN (n_classes={n_classes}) needs labels y")
    return F.one_hot(y.long(), n_classes).float()


class Generator(nn.Module):
    """G_θ: z (B, L) [and one-hot label (B, C)] -> x (B, D)."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = c = config
        inputs = c.latent_dim + c.n_classes
        if c.arch == "mlp":
            self.net = nets.mlp(inputs, c.dims, c.hidden, c.layers, act=nn.ReLU)
        else:  # DCGAN: project to (2C, H/4, W/4), then two stride-2 transposed convolutions
            h, w = c.shape[0] // 4, c.shape[1] // 4
            self.net = nn.Sequential(
                nn.Linear(inputs, 2 * c.hidden * h * w), nn.BatchNorm1d(2 * c.hidden * h * w), nn.ReLU(),
                nn.Unflatten(1, (2 * c.hidden, h, w)),                                         # (B, 2C, H/4, W/4)
                nn.ConvTranspose2d(2 * c.hidden, c.hidden, 4, 2, 1), nn.BatchNorm2d(c.hidden), nn.ReLU(),  # H/2
                nn.ConvTranspose2d(c.hidden, 1, 4, 2, 1),                                      # (B, 1, H, W)
                nn.Flatten(),                                                                  # (B, D)
            )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        label = one_hot(y, self.config.n_classes)
        x = self.net(z if label is None else torch.cat([z, label], 1))  # (B, D)
        return torch.sigmoid(x) if self.config.output == "sigmoid" else x


class Discriminator(nn.Module):
    """D_φ: ``pack`` data points x (B, D) [and labels] -> one logit per pack (B / pack,).

    D(x) = sigmoid(logit). With ``pack`` = m the points are grouped in consecutive m-tuples
    (B must be a multiple of m): one real or one generated m-tuple is one input.
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = c = config
        if c.arch == "mlp":
            inputs = c.pack * (c.dims + c.n_classes) + int(c.minibatch_std)
            self.net = nets.mlp(inputs, 1, c.hidden, c.layers, act=lambda: nn.LeakyReLU(0.2))
        else:  # DCGAN: two stride-2 convolutions with leaky ReLUs; packs and one-hot label maps as channels
            h, w = c.shape[0] // 4, c.shape[1] // 4
            channels = c.pack * (1 + c.n_classes)
            self.features = nn.Sequential(
                nn.Conv2d(channels, c.hidden, 4, 2, 1), nn.LeakyReLU(0.2),             # (B/m, C, H/2, W/2)
                nn.Conv2d(c.hidden, 2 * c.hidden, 4, 2, 1), nn.LeakyReLU(0.2),         # (B/m, 2C, H/4, W/4)
                nn.Flatten(),                                                          # (B/m, 2C H W / 16)
            )
            self.head = nn.Linear(2 * c.hidden * h * w, 1)
        if c.spectral_norm:  # W -> W / σ_max(W), σ_max by one power iteration per training call (Miyato et al.)
            for module in list(self.modules()):
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if len(x) % c.pack:
            raise ValueError(f"batch of {len(x)} is not a multiple of pack={c.pack}")
        label = one_hot(y, c.n_classes)
        if c.arch == "mlp":
            inputs = x if label is None else torch.cat([x, label], 1)     # (B, D + C)
            inputs = inputs.reshape(len(x) // c.pack, -1)                 # (B/m, m (D + C))
            if c.minibatch_std:  # one number for the whole batch: mean over dims of the std over samples
                spread = x.std(0).mean().expand(len(inputs), 1)           # (B/m, 1)
                inputs = torch.cat([inputs, spread], 1)
            return self.net(inputs).squeeze(1)                            # (B/m,)
        images = x.reshape(len(x), 1, *c.shape)                           # (B, 1, H, W)
        if label is not None:                                             # label as constant maps
            images = torch.cat([images, label[:, :, None, None].expand(-1, -1, *c.shape)], 1)  # (B, 1 + C, H, W)
        images = images.reshape(len(x) // c.pack, -1, *c.shape)           # (B/m, m (1 + C), H, W)
        return self.head(self.features(images)).squeeze(1)                # (B/m,)


class GAN(nn.Module):
    """A generator and a discriminator. ``sample(n)``; no ``log_prob`` (p_g has no density)."""

    def __init__(self, config: GANConfig = GANConfig()):
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I_L), shape (n, L), on the model's device."""
        device = next(self.parameters()).device
        return torch.randn(n, self.config.latent_dim, generator=generator).to(device)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """−V(D, G) on a batch of data ``x`` (and labels ``y``) with fresh noise: the discriminator's loss."""
        fake = self.generator(self.noise(len(x), generator), y)
        return discriminator_loss(self.discriminator(x, y), self.discriminator(fake, y))

    @torch.no_grad()
    def sample(self, n: int, *, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               z: torch.Tensor | None = None) -> torch.Tensor:
        """n draws x = G(z) (n, D), in eval mode; ``z`` (n, L) may be given (interpolation, snapshots)."""
        checks.positive_int("n", n)
        if y is not None and self.config.n_classes:
            checks.labels("y", y, self.config.n_classes, n)
        if z is not None:
            checks.tensor("z", z, (n, self.config.latent_dim), finite=True, floating=True)
        was_training = self.training
        self.eval()
        z = self.noise(n, generator) if z is None else z
        x = self.generator(z, y)
        self.train(was_training)
        return x


# ----------------------------------------------------------------------------- the losses


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−E[log D(x)] − E[log(1 − D(G(z)))] = −V(D, G), from logits a: log D = −softplus(−a)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """The generator's loss from the logits of D on generated samples.

    minimax:        E[log(1 − D(G(z)))] = −E[softplus(a)]   (the game's own term; flat where D ≈ 0)
    nonsaturating:  −E[log D(G(z))]    =  E[softplus(−a)]   (Goodfellow et al.'s practical choice)
    """
    checks.choice("generator loss", kind, GENERATOR_LOSSES)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, x: torch.Tensor, gamma: float) -> torch.Tensor:
    """(γ/2) E_x[‖∇_x logit D(x)‖²] on real data x (Mescheder et al. 2018); x must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)  # (B, D)
    return 0.5 * gamma * grad.pow(2).sum(1).mean()


def hinge_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The hinge loss (Lim & Ye 2017; Miyato et al. 2018), on the critic's score a (not squashed):

    discriminator: E[max(0, 1 − a(x))] + E[max(0, 1 + a(G(z)))];   generator: −E[a(G(z))].
    Returns (discriminator loss, generator loss) — the generator's from ``fake_logits`` as given."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean(), -fake_logits.mean()


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The Wasserstein critic's loss E[f(G(z))] − E[f(x)] (Arjovsky et al. 2017): minimising it
    maximises E_data[f] − E_g[f], which over 1-Lipschitz f is W₁(p_data, p_g) (Kantorovich–Rubinstein)."""
    return fake_scores.mean() - real_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, weight: float, y: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """λ E_x̂[(‖∇_x̂ f(x̂)‖ − 1)²] at x̂ = u x + (1 − u) G(z), u ~ U(0, 1) per pair (Gulrajani et al. 2017).

    The optimal 1-Lipschitz critic has gradient norm 1 on the segments between coupled points, so
    the penalty pushes f towards the constraint where it matters, softly."""
    u = torch.rand(len(real), 1, generator=generator).to(real.device)        # (B, 1)
    between = (u * real.detach() + (1 - u) * fake.detach()).requires_grad_(True)  # (B, D)
    (grad,) = torch.autograd.grad(critic(between, y).sum(), between, create_graph=True)  # (B, D)
    return weight * (grad.norm(dim=1) - 1).pow(2).mean()


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)), from the two densities at the same points."""
    return p_data / (p_data + p_g)


def two_sample_loss(discriminator: Discriminator, batch) -> torch.Tensor:
    """The discriminator's loss on a batch ``(real, fake)`` of two fixed samples (G held fixed)."""
    real, fake = batch
    return discriminator_loss(discriminator(real), discriminator(fake))


def _split(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = batch[0]
    return x, (batch[1] if len(batch) > 1 else None)


def batch_loss(model: GAN, batch) -> torch.Tensor:
    """−V(D, G) on one batch of data (and labels) with fresh noise: the discriminator's loss. This is
    the ``loss`` handed to :func:`genlib.train.fit` (used there only to evaluate held-out data)."""
    return model.loss(*_split(batch))


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """How the two players are trained (Adam with β1 = 0.5, as DCGAN)."""

    k: int = 1                          # n_D: discriminator steps per generator step
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    generator_loss: str = "nonsaturating"   # for loss="gan": the generator's loss
    loss: str = "gan"                   # "gan" (log D), "hinge" or "wasserstein" (a critic; use with gp > 0)
    r1: float = 0.0                     # γ of the R1 gradient penalty (γ/2) E‖∇_x D(x)‖² on real data (0: none)
    gp: float = 0.0                     # λ of the WGAN-GP penalty λ E(‖∇ f(x̂)‖ − 1)² between real and fake (0: none)
    ema: float = 0.0                    # decay β of an exponential moving average of G's weights (0: none);
                                        # the average replaces G's weights at the end (``finish``)
    snapshot_every: int = 0             # generator steps between snapshots (0: none)
    snapshot_size: int = 512            # samples per snapshot (from one fixed z)

    def __post_init__(self):
        checks.positive_int("k", self.k)
        checks.positive("lr_g", self.lr_g)
        checks.positive("lr_d", self.lr_d)
        checks.choice("generator_loss", self.generator_loss, GENERATOR_LOSSES)
        checks.choice("loss", self.loss, LOSSES)
        checks.non_negative("r1", self.r1)
        checks.non_negative("gp", self.gp)
        checks.in_unit_interval("ema", self.ema)
        checks.non_negative_int("snapshot_every", self.snapshot_every)
        checks.positive_int("snapshot_size", self.snapshot_size)


@dataclass
class Snapshot:
    step: int                      # generator steps taken
    samples: torch.Tensor          # (snapshot_size, D) = G(z_fixed), on the CPU


class AdversarialStep:
    """One optimisation step of a GAN on one minibatch, for ``fit(..., step=...)``.

    Every call takes a discriminator step on the minibatch; every n_D-th call (n_D = ``k``) also takes a
    generator step, so there are n_D discriminator steps per generator step. The two players have
    their own Adam optimisers (created here). Returns the discriminator's loss (−V) of the batch.
    ``log`` keeps, per generator step, both losses, the mean D on real and on generated points (for
    a critic, σ of its score) and the norm of the generator's gradient;
    ``snapshots`` keeps G(z_fixed) every ``snapshot_every`` generator steps (and at step 0);
    ``history`` is the per-epoch :class:`~genlib.train.History` of the :func:`fit_gan` run that drove
    this step (None until then), its ``log`` this step's ``log``.
    """

    def __init__(self, model: GAN, config: TrainConfig | None = None,
                 generator: torch.Generator | None = None):
        self.config = config = TrainConfig() if config is None else config
        self.opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=config.lr_d, betas=config.betas)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), lr=config.lr_g, betas=config.betas)
        self.generator = generator
        self.calls = self.steps = 0
        self.log: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": [], "g_grad": []}
        self.snapshots: list[Snapshot] = []
        self.history = None  # set by fit_gan when its run ends
        self._ema = ({k: v.detach().clone() for k, v in model.generator.state_dict().items()}
                     if config.ema else None)
        self._z = model.noise(config.snapshot_size, generator) if config.snapshot_every else None
        if self._z is not None:
            self._snapshot(model)

    def __call__(self, model: GAN, batch) -> torch.Tensor:
        x, y = _split(batch)
        n = len(x) - len(x) % model.config.pack           # whole packs only
        x, y = x[:n], (None if y is None else y[:n])
        c = self.config
        # discriminator: minimise its loss with G fixed (the fake batch is detached)
        fake = model.generator(model.noise(n, self.generator), y).detach()
        if c.r1:
            x = x.detach().requires_grad_(True)
        real_logits, fake_logits = model.discriminator(x, y), model.discriminator(fake, y)
        d_loss = self.discriminator_loss(real_logits, fake_logits)
        penalised = d_loss
        if c.r1:
            penalised = penalised + r1_penalty(real_logits, x, c.r1)
        if c.gp:
            penalised = penalised + gradient_penalty(model.discriminator, x, fake, c.gp, y, self.generator)
        self.opt_d.zero_grad(set_to_none=True)
        penalised.backward()
        self.opt_d.step()
        self.calls += 1
        if self.calls % c.k == 0:
            self._generator_step(model, n, y, d_loss, real_logits, fake_logits)
        return d_loss.detach()

    def state_dict(self) -> dict:
        """What a resumed run needs beyond the model's weights and the random states: both players'
        Adam states, the generator's weight average, the step counters and the log."""
        return copy.deepcopy({"opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict(), "ema": self._ema,
                              "calls": self.calls, "steps": self.steps, "log": self.log})  # a copy, not live tensors

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output (the optimisers must belong to a model of the same shape)."""
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        if (state["ema"] is None) != (self._ema is None):
            raise ValueError("the saved step and this one disagree on the weight average (TrainConfig.ema)")
        if self._ema is not None:
            for key, value in state["ema"].items():
                self._ema[key].copy_(value)
        self.calls, self.steps = int(state["calls"]), int(state["steps"])
        self.log = {k: list(v) for k, v in state["log"].items()}

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss of the configured game (without penalties)."""
        if self.config.loss == "hinge":
            return hinge_losses(real_logits, fake_logits)[0]
        if self.config.loss == "wasserstein":
            return critic_loss(real_logits, fake_logits)
        return discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The generator's loss of the configured game: −E[score of G(z)] for hinge and Wasserstein."""
        if self.config.loss == "gan":
            return generator_loss(fake_logits, self.config.generator_loss)
        return -fake_logits.mean()

    def _generator_step(self, model, n, y, d_loss, real_logits, fake_logits):
        fake_logits_g = model.discriminator(model.generator(model.noise(n, self.generator), y), y)
        g_loss = self.generator_loss(fake_logits_g)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()                                    # D's grads are cleared at its next step
        grad_norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.generator.parameters() if p.grad is not None))
        self.opt_g.step()
        self.steps += 1
        if self._ema is not None:  # θ_avg ← β θ_avg + (1 − β) θ (buffers such as batch-norm statistics copied)
            with torch.no_grad():
                for key, value in model.generator.state_dict().items():
                    if value.dtype.is_floating_point:
                        self._ema[key].mul_(self.config.ema).add_(value, alpha=1 - self.config.ema)
                    else:
                        self._ema[key].copy_(value)
        for key, value in (("d_loss", d_loss), ("g_loss", g_loss), ("d_real", torch.sigmoid(real_logits).mean()),
                           ("d_fake", torch.sigmoid(fake_logits).mean()), ("g_grad", grad_norm)):
            self.log[key].append(float(value.detach()))
        if self.config.snapshot_every and self.steps % self.config.snapshot_every == 0:
            self._snapshot(model)

    def finish(self, model: GAN) -> None:
        """At the end of training: give G the averaged weights (when ``ema`` > 0; otherwise nothing)."""
        if self._ema is not None:
            model.generator.load_state_dict(self._ema)

    def _snapshot(self, model: GAN) -> None:
        y = None
        if model.config.n_classes:
            y = torch.arange(len(self._z), device=self._z.device) % model.config.n_classes
        self.snapshots.append(Snapshot(self.steps, model.sample(len(self._z), y=y, z=self._z).cpu()))


def fit_gan(model: GAN, data: torch.Tensor | tuple, *, epochs: int, batch_size: int = 128,
            config: TrainConfig | None = None, generator: torch.Generator | None = None,
            device: torch.device | str = "cpu", progress: bool = False) -> AdversarialStep:
    """Train both players for ``epochs`` passes over ``data`` (a tensor, or ``(x, y)`` for a conditional
    GAN) with :func:`genlib.train.fit`; return the :class:`AdversarialStep` with its log and snapshots
    (``step.history`` is fit's history, whose ``log`` is the step's per-generator-step log).
    There is no validation loss to stop on: a GAN's losses say little about its samples."""
    from genlib.train import fit

    model.to(device)
    step = AdversarialStep(model, config, generator)
    history = fit(model, batch_loss, data, epochs=epochs, batch_size=batch_size, device=device,
                  generator=generator, progress=progress, step=step)
    step.finish(model)
    history.log = step.log  # the series per generator step, in the History every family's train returns
    step.history = history
    return step


# ----------------------------------------------------------------------------- the chapter's image GANs

DIGITS_EPOCHS = 40      # the book profile's passes over the 1,000 training digits (batch 64: 640 generator steps)
DIGITS_R1 = 1.0         # γ of R1 for the digits' discriminator (pixels in [0, 1])


def digits_config(dataset: str = "digits", latent_dim: int = 16, hidden: int = 32, **overrides) -> GANConfig:
    """The chapter's DCGAN for ``dataset`` (unconditional; ``n_classes=10`` for the conditional one)."""
    return GANConfig.for_dataset(dataset, arch="conv", latent_dim=latent_dim, hidden=hidden, **overrides)


def digits_train_config(**overrides) -> TrainConfig:
    """The chapter's training of the image GANs: Adam (β1 = 0.5), both learning rates 1e-3, and R1
    with γ = ``DIGITS_R1`` (pass ``r1=0.0`` for the plain game)."""
    return TrainConfig(**{"lr_g": 1e-3, "lr_d": 1e-3, "r1": DIGITS_R1, **overrides})


# ----------------------------------------------------------------------------- the ring experiment


STABLE_RING_STEPS = 3000   # generator steps of the stabilised ring runs (balanced learning rates)
STABLE_RING_R1 = 0.1       # γ of R1 on the ring
STABLE_RING_EMA = 0.99     # decay of the generator's weight average on the ring (evaluated with the average)


@dataclass(frozen=True)
class RingExperiment:
    """Mode collapse on the ring of 8 Gaussians (``genlib.data.toy("8gaussians", noise=std)``)."""

    std: float = 0.05        # σ of each Gaussian; high quality = within 3σ of a mode
    n: int = 10_000          # training points
    steps: int = 1500        # generator steps
    batch_size: int = 256    # samples per minibatch (a packed discriminator sees batch_size / pack packs)
    hidden: int = 64         # width of both MLPs (2 hidden layers)
    latent_dim: int = 16     # L
    lr_g: float = 1e-3       # the generator learns 10x faster than the discriminator,
    lr_d: float = 1e-4       # as in the mode-collapse demonstrations of Metz et al. (2017)
    n_eval: int = 2500       # samples counted per evaluation
    evals: int = 20          # evaluations (and snapshots) over training

    def run(self, seed: int, **options) -> dict:
        """Train one GAN from ``seed``; return its samples, the snapshots and, at each evaluation, the
        modes covered and the high-quality fraction. ``options`` change the model (a field of
        :class:`GANConfig`: ``pack``, ``minibatch_std``, ``spectral_norm``) or its training (a field of
        :class:`TrainConfig`: ``r1``, ``gp``, ``loss``, ``generator_loss``, ``lr_g``, ``lr_d``, ``k``)."""
        from genlib import data, metrics, seed_everything
        from genlib.train import fit

        model_fields, train_fields = set(GANConfig.__dataclass_fields__), set(TrainConfig.__dataclass_fields__)
        unknown = set(options) - model_fields - train_fields
        if unknown:
            raise ValueError(f"unknown ring option(s) {sorted(unknown)}; choose from the fields of GANConfig "
                             f"and TrainConfig")
        gen = seed_everything(seed)
        x = data.toy("8gaussians", self.n, seed=seed, noise=self.std)
        model = GAN(GANConfig(**{"hidden": self.hidden, "latent_dim": self.latent_dim,
                                 **{k: v for k, v in options.items() if k in model_fields}}))
        every = max(1, self.steps // self.evals)
        k = options.get("k", 1)
        train = TrainConfig(**{"lr_g": self.lr_g, "lr_d": self.lr_d, "snapshot_every": every,
                               "snapshot_size": self.n_eval, **{k_: v for k_, v in options.items() if k_ in train_fields}})
        step = AdversarialStep(model, train, gen)
        batches = math.ceil(self.n / self.batch_size)
        epochs = math.ceil(self.steps * k / batches)  # one generator step per k batches
        tic = time.process_time()
        fit(model, batch_loss, x, epochs=epochs, batch_size=self.batch_size, generator=gen, progress=False, step=step)
        step.finish(model)
        seconds = time.process_time() - tic
        centres = metrics.ring_centres()
        curve = [metrics.mode_coverage(s.samples, centres, self.std) for s in step.snapshots]
        final = metrics.mode_coverage(model.sample(self.n_eval, generator=gen), centres, self.std)
        return {"model": model, "step": step, "final": final, "cpu_seconds": seconds,
                "steps": [s.step for s in step.snapshots],
                "modes": [c["modes"] for c in curve], "high_quality": [c["high_quality"] for c in curve]}


# ----------------------------------------------------------------------------- the Dirac-GAN


def dirac_gan(theta: float, psi: float, steps: int, lr: float, loss: str = "gan", r1: float = 0.0,
              simultaneous: bool = True) -> torch.Tensor:
    """Gradient descent on the Dirac-GAN (Mescheder et al. 2018): data δ₀, generator δ_θ, and a
    linear discriminator with logit a(x) = ψ x. Both players use genlib's losses (``loss`` "gan":
    −V and the non-saturating generator loss; "wasserstein": the critic's loss and −E[f(G(z))]),
    and the discriminator adds the R1 penalty (γ/2) ψ² when ``r1`` = γ > 0.

    The unique equilibrium is θ = ψ = 0. Returns the path (steps + 1, 2) of (θ, ψ). With
    ``simultaneous`` both players step from the same point; otherwise ψ steps first and θ answers."""
    checks.positive_int("steps", steps)
    checks.positive("lr", lr)
    checks.choice("loss", loss, ("gan", "wasserstein"))
    checks.non_negative("r1", r1)
    th = torch.tensor(float(theta), dtype=torch.float64, requires_grad=True)
    ps = torch.tensor(float(psi), dtype=torch.float64, requires_grad=True)
    real = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)       # the one data point, x = 0

    def d_grad(th, ps):
        real_logit, fake_logit = ps * real[:, 0], (ps * th.detach())[None]   # (1,) each
        d = critic_loss(real_logit, fake_logit) if loss == "wasserstein" else discriminator_loss(real_logit, fake_logit)
        if r1:
            d = d + r1_penalty(real_logit, real, r1)
        return torch.autograd.grad(d, ps)[0]

    def g_grad(th, ps):
        fake_logit = (ps.detach() * th)[None]
        g = -fake_logit.mean() if loss == "wasserstein" else generator_loss(fake_logit, "nonsaturating")
        return torch.autograd.grad(g, th)[0]

    path = [(th.item(), ps.item())]
    for _ in range(steps):
        if simultaneous:
            dps, dth = d_grad(th, ps), g_grad(th, ps)
            with torch.no_grad():
                ps -= lr * dps
                th -= lr * dth
        else:
            dps = d_grad(th, ps)
            with torch.no_grad():
                ps -= lr * dps
            dth = g_grad(th, ps)
            with torch.no_grad():
                th -= lr * dth
        path.append((th.item(), ps.item()))
    return torch.tensor(path, dtype=torch.float64)


# ----------------------------------------------------------------------------- inversion and memorisation


def invert(model: GAN, x: torch.Tensor, steps: int = 300, lr: float = 0.05, y: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A GAN has no encoder: find codes z (N, L) with G(z) ≈ x (N, D) by minimising the squared error
    ‖G(z) − x‖² over z with Adam, from z ~ N(0, I). Returns (z, G(z)), detached. G is not trained."""
    checks.positive_int("steps", steps)
    checks.positive("lr", lr)
    if x.dim() != 2 or x.shape[1] != model.config.dims:
        raise ValueError(f"x must have shape (N, {model.config.dims}), got {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    z = model.noise(len(x), generator).requires_grad_(True)     # (N, L)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = (model.generator(z, y) - x).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.train(was_training)
    with torch.no_grad():
        return z.detach(), model.generator(z, y).detach()


def nearest_neighbours(x: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``x`` (N, D), the Euclidean distance to its nearest row of ``reference`` (M, D)
    and that row's index: the memorisation test (a sample much closer to a training image than test
    images are is a copy)."""
    if x.dim() != 2 or reference.dim() != 2 or x.shape[1] != reference.shape[1]:
        raise ValueError(f"x and reference must be (N, D) and (M, D), got {tuple(x.shape)} and {tuple(reference.shape)}")
    distance, index = torch.cdist(x.double(), reference.double()).min(1)
    return distance, index


# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> GAN:
    """Chapter 5's headline image model: the unconditional DCGAN (:func:`digits_config`), which sees images
    only, like every other row of the scoreboard."""
    return GAN(digits_config(params.dataset, latent_dim=params.latent_dim, hidden=params.hidden))


def _train(model: GAN, params, generator: torch.Generator, options: dict):
    """Chapter 5's recipe: :func:`fit_gan` on the training images for ``epochs`` passes (batch 64) with
    :func:`digits_train_config` (Adam β1 = 0.5, both learning rates 1e-3, R1 with γ = ``DIGITS_R1``)."""
    if options.get("precision", "fp32") != "fp32" or options.get("compile", False):
        raise ValueError("the GAN's two-player update (gan.fit_gan) runs in fp32 and uncompiled; "
                         "drop --precision/--compile")
    train = data.images(params.dataset, "train")
    step = fit_gan(model, train.scaled(), epochs=params.epochs, batch_size=64, config=digits_train_config(),
                   generator=generator, device=options.get("device", "cpu"), progress=options.get("progress", False))
    return step.history  # its log: the losses per generator step, which the chapter plots


def _samples(model: GAN, n: int, generator: torch.Generator) -> torch.Tensor:
    """x = G(z), z ~ N(0, I): (n, D) in [0, 1] from the generator's sigmoid."""
    return model.sample(n, generator=generator)


FAMILY = Family(
    name="gan", chapter="05_gans", model=GAN, build=_build, train=_train, samples=_samples,
    inputs=lambda model, x, levels, generator: x.float() / (levels - 1),  # pixels in [0, 1], as trained
    smoke={"epochs": 1, "latent_dim": 4, "hidden": 8}, budget=("epochs",),
    describe=lambda model, params: (f"DCGAN with R1 (L = {model.config.latent_dim}, "
                                    f"{model.config.hidden} channels)"),
    remarks=lambda model, params, seed: [
        f"chapter 5's headline image GAN: unconditional (images only, like every row), trained by gan.fit_gan with "
        f"gan.digits_train_config() - Adam (beta1 = 0.5, both learning rates 1e-3) and the R1 penalty on real "
        f"images, gamma = {DIGITS_R1}",
        "no density: G pushes z forward and p_g has no likelihood",
        "no latent features: the GAN has no encoder (the discriminator's features are not its latents)"])
