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

Training alternates k discriminator steps with one generator step (:class:`AdversarialStep`, a
``step=`` for :func:`genlib.train.fit`). Two counters to mode collapse are options of the
discriminator: a *minibatch feature* (``minibatch_std``: the batch's standard deviation is one more
input, as in Karras et al. 2018, a simple form of Salimans et al. 2016's minibatch discrimination),
and *packing* (``pack``, PacGAN, Lin et al. 2018: ``pack`` samples judged at once, all real or all
generated). Either way a generator that repeats itself is easy to spot.

Models: MLPs for 2-D data and flat images, DCGAN-style convolutional networks (Radford et al. 2016)
for 8x8 and 28x28 images, and class-conditional variants (Mirza & Osindero 2014) that feed a one-hot
label to both players. A GAN has ``sample`` but no ``log_prob``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, data
from genlib.family import Family

ARCHS = ("mlp", "conv")
GENERATOR_LOSSES = ("nonsaturating", "minimax")
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

    def __post_init__(self):
        checks.positive_int("dims", self.dims)
        checks.positive_int("latent_dim", self.latent_dim)
        checks.positive_int("hidden", self.hidden)
        checks.positive_int("layers", self.layers)
        checks.choice("arch", self.arch, ARCHS)
        checks.choice("output", self.output, OUTPUTS)
        checks.non_negative_int("n_classes", self.n_classes)
        checks.positive_int("pack", self.pack)
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


def _mlp(inputs: int, hidden: int, layers: int, outputs: int, act: type[nn.Module]) -> nn.Sequential:
    sizes = [inputs] + [hidden] * layers
    body = [m for a, b in zip(sizes[:-1], sizes[1:]) for m in (nn.Linear(a, b), act())]
    return nn.Sequential(*body, nn.Linear(hidden, outputs))


class Generator(nn.Module):
    """G_θ: z (B, L) [and one-hot label (B, C)] -> x (B, D)."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = c = config
        inputs = c.latent_dim + c.n_classes
        if c.arch == "mlp":
            self.net = _mlp(inputs, c.hidden, c.layers, c.dims, nn.ReLU)
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
            self.net = _mlp(inputs, c.hidden, c.layers, 1, lambda: nn.LeakyReLU(0.2))
        else:  # DCGAN: two stride-2 convolutions with leaky ReLUs; packs and one-hot label maps as channels
            h, w = c.shape[0] // 4, c.shape[1] // 4
            channels = c.pack * (1 + c.n_classes)
            self.features = nn.Sequential(
                nn.Conv2d(channels, c.hidden, 4, 2, 1), nn.LeakyReLU(0.2),             # (B/m, C, H/2, W/2)
                nn.Conv2d(c.hidden, 2 * c.hidden, 4, 2, 1), nn.LeakyReLU(0.2),         # (B/m, 2C, H/4, W/4)
                nn.Flatten(),                                                          # (B/m, 2C H W / 16)
            )
            self.head = nn.Linear(2 * c.hidden * h * w, 1)

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

    k: int = 1                          # discriminator steps per generator step
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    generator_loss: str = "nonsaturating"
    r1: float = 0.0                     # γ of the R1 gradient penalty (γ/2) E‖∇_x D(x)‖² on real data (0: none)
    snapshot_every: int = 0             # generator steps between snapshots (0: none)
    snapshot_size: int = 512            # samples per snapshot (from one fixed z)

    def __post_init__(self):
        checks.positive_int("k", self.k)
        checks.positive("lr_g", self.lr_g)
        checks.positive("lr_d", self.lr_d)
        checks.choice("generator_loss", self.generator_loss, GENERATOR_LOSSES)
        checks.non_negative_int("snapshot_every", self.snapshot_every)
        checks.positive_int("snapshot_size", self.snapshot_size)


@dataclass
class Snapshot:
    step: int                      # generator steps taken
    samples: torch.Tensor          # (snapshot_size, D) = G(z_fixed), on the CPU


class AdversarialStep:
    """One optimisation step of a GAN on one minibatch, for ``fit(..., step=...)``.

    Every call takes a discriminator step on the minibatch; every k-th call also takes a
    generator step, so there are k discriminator steps per generator step. The two players have
    their own Adam optimisers (created here). Returns the discriminator's loss (−V) of the batch.
    ``log`` keeps, per generator step, both losses and the mean D on real and on generated points;
    ``snapshots`` keeps G(z_fixed) every ``snapshot_every`` generator steps (and at step 0).
    """

    def __init__(self, model: GAN, config: TrainConfig | None = None,
                 generator: torch.Generator | None = None):
        self.config = config = TrainConfig() if config is None else config
        self.opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=config.lr_d, betas=config.betas)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), lr=config.lr_g, betas=config.betas)
        self.generator = generator
        self.calls = self.steps = 0
        self.log: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
        self.snapshots: list[Snapshot] = []
        self._z = model.noise(config.snapshot_size, generator) if config.snapshot_every else None
        if self._z is not None:
            self._snapshot(model)

    def __call__(self, model: GAN, batch) -> torch.Tensor:
        x, y = _split(batch)
        n = len(x) - len(x) % model.config.pack           # whole packs only
        x, y = x[:n], (None if y is None else y[:n])
        # discriminator: minimise −V with G fixed (the fake batch is detached)
        fake = model.generator(model.noise(n, self.generator), y).detach()
        if self.config.r1:
            x = x.detach().requires_grad_(True)
        real_logits, fake_logits = model.discriminator(x, y), model.discriminator(fake, y)
        d_loss = discriminator_loss(real_logits, fake_logits)
        if self.config.r1:
            d_loss = d_loss + r1_penalty(real_logits, x, self.config.r1)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.calls += 1
        if self.calls % self.config.k == 0:
            self._generator_step(model, n, y, d_loss, real_logits, fake_logits)
        return d_loss.detach()

    def _generator_step(self, model, n, y, d_loss, real_logits, fake_logits):
        fake_logits_g = model.discriminator(model.generator(model.noise(n, self.generator), y), y)
        g_loss = generator_loss(fake_logits_g, self.config.generator_loss)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()                                    # D's grads are cleared at its next step
        self.opt_g.step()
        self.steps += 1
        for key, value in (("d_loss", d_loss), ("g_loss", g_loss), ("d_real", torch.sigmoid(real_logits).mean()),
                           ("d_fake", torch.sigmoid(fake_logits).mean())):
            self.log[key].append(float(value.detach()))
        if self.config.snapshot_every and self.steps % self.config.snapshot_every == 0:
            self._snapshot(model)

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
    step.history = fit(model, batch_loss, data, epochs=epochs, batch_size=batch_size, device=device,
                       generator=generator, progress=progress, step=step)
    step.history.log = step.log
    return step


# ----------------------------------------------------------------------------- the ring experiment


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

    def run(self, seed: int, pack: int = 1, minibatch_std: bool = False) -> dict:
        """Train one GAN (``pack`` = 1: plain; > 1: PacGAN) from ``seed``; return its samples, the
        snapshots and, at each evaluation, the modes covered and the high-quality fraction."""
        from genlib import data, metrics, seed_everything
        from genlib.train import fit

        gen = seed_everything(seed)
        x = data.toy("8gaussians", self.n, seed=seed, noise=self.std)
        model = GAN(GANConfig(hidden=self.hidden, latent_dim=self.latent_dim, pack=pack, minibatch_std=minibatch_std))
        every = max(1, self.steps // self.evals)
        step = AdversarialStep(model, TrainConfig(lr_g=self.lr_g, lr_d=self.lr_d, snapshot_every=every,
                                                  snapshot_size=self.n_eval), gen)
        epochs = math.ceil(self.steps / math.ceil(self.n / self.batch_size))  # one generator step per batch
        fit(model, batch_loss, x, epochs=epochs, batch_size=self.batch_size, generator=gen, progress=False, step=step)
        centres = metrics.ring_centres()
        curve = [metrics.mode_coverage(s.samples, centres, self.std) for s in step.snapshots]
        final = metrics.mode_coverage(model.sample(self.n_eval, generator=gen), centres, self.std)
        return {"model": model, "step": step, "final": final,
                "steps": [s.step for s in step.snapshots],
                "modes": [c["modes"] for c in curve], "high_quality": [c["high_quality"] for c in curve]}


# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> GAN:
    """Chapter 5, section 5: the conditional DCGAN (the chapter's one image GAN)."""
    return GAN(GANConfig.for_dataset(params.dataset, arch="conv", latent_dim=params.latent_dim,
                                     hidden=params.hidden, n_classes=10))


def _train(model: GAN, params, generator: torch.Generator, options: dict):
    if options.get("precision", "fp32") != "fp32" or options.get("compile", False):
        raise ValueError("the GAN's two-player update (gan.fit_gan) runs in fp32 and uncompiled; "
                         "drop --precision/--compile")
    train = data.images(params.dataset, "train")
    step = fit_gan(model, (train.scaled(), train.y), epochs=params.epochs, batch_size=64,
                   config=TrainConfig(lr_g=1e-3, lr_d=1e-3), generator=generator,
                   device=options.get("device", "cpu"), progress=options.get("progress", False))
    return step.history  # its log: the losses per generator step, which the chapter plots


def _samples(model: GAN, n: int, generator: torch.Generator) -> torch.Tensor:
    """Labels drawn at the training set's class frequencies, then G(z, y): a sampler of p(x)."""
    y_train = data.digits("train").y
    y = y_train[torch.randint(len(y_train), (n,), generator=generator)]  # (n,) labels as often as in training
    return model.sample(n, y=y, generator=generator)                      # (n, D) in [0, 1] from a sigmoid


FAMILY = Family(
    name="gan", chapter="05_gans", model=GAN, build=_build, train=_train, samples=_samples, labels=True,
    inputs=lambda model, x, levels, generator: x.float() / (levels - 1),  # pixels in [0, 1], as trained
    smoke={"epochs": 1, "latent_dim": 4, "hidden": 8},
    describe=lambda model, params: f"conditional DCGAN (L = {model.config.latent_dim}, {model.config.hidden} channels)",
    remarks=lambda model, params, seed: [
        "class-conditional (chapter 5 trains one image GAN, conditional): trained on (image, label) pairs, sampled "
        "with random labels at the training frequencies - a sampler of p(x), but it used the labels, which the "
        "unconditional rows did not",
        "no density: G pushes z forward and p_g has no likelihood",
        "no latent features: the GAN has no encoder (the discriminator's features are not its latents)"])
