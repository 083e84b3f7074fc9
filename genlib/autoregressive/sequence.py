"""Sequence models (Chapter 6): dilated causal convolutions (WaveNet) over raster-ordered pixels, and
next-character models of text."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, nets
from genlib.autoregressive.common import categorical_inverse_cdf

# ----------------------------------------------------------------------------- dilated causal convolutions


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution over a sequence (B, C, T) whose output t sees inputs t − dilation·(k − 1) … t
    (``shift=0``) or strictly before t (``shift=1``, the first layer: it must not see x_t): left padding
    keeps the length, and nothing to the right of t ever enters."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 2, dilation: int = 1, shift: int = 0):
        super().__init__(in_channels, out_channels, checks.positive_int("kernel", kernel),
                         dilation=checks.positive_int("dilation", dilation))
        self.left, self.shift = dilation * (kernel - 1) + shift, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = super().forward(F.pad(x, (self.left, 0)))  # (B, C_out, T + shift)
        return h[..., : x.shape[-1]]  # with shift = 1 the last output is dropped: output t sees x_{<t}


@dataclass
class DilatedConfig:
    """WaveNet-style model of a flattened image: dilations 1, 2, 4, ... double the reach per layer."""

    dims: int = 64            # D, the sequence length (pixels in raster order)
    levels: int = 17          # V
    channels: int = 64
    n_layers: int = 6         # dilations 1, 2, ..., 2^(n_layers - 1)
    kernel: int = 2

    def __post_init__(self):
        for name in ("dims", "levels", "channels", "n_layers", "kernel"):
            checks.positive_int(name, getattr(self, name))

    @property
    def receptive_field(self) -> int:
        """How many earlier positions output t can see: the first layer's ``kernel`` positions before t,
        widened by (kernel − 1)·2^l by dilated layer l: kernel + (kernel − 1)(2^n − 1)."""
        return self.kernel + (self.kernel - 1) * (2 ** self.n_layers - 1)


class DilatedCausalModel(nn.Module):
    """p(x) = Π_t Cat(x_t; softmax(f(x_{<t}))) with f a stack of dilated causal convolutions over the
    raster-ordered pixels (gated residual layers, as in WaveNet, van den Oord et al. 2016)."""

    def __init__(self, config: DilatedConfig | None = None):
        super().__init__()
        self.config = c = config or DilatedConfig()
        self.first = CausalConv1d(c.levels, c.channels, c.kernel, 1, shift=1)
        self.layers = nn.ModuleList(CausalConv1d(c.channels, 2 * c.channels, c.kernel, 2 ** l) for l in range(c.n_layers))
        self.mix = nn.ModuleList(nn.Conv1d(c.channels, c.channels, 1) for _ in range(c.n_layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(c.channels, c.levels, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) integers -> (B, V, D) logits; output t depends only on x_{<t}."""
        h = self.first(F.one_hot(x.long(), self.config.levels).float().transpose(1, 2))  # (B, C, D)
        for conv, mix in zip(self.layers, self.mix):
            a, b = conv(h).chunk(2, dim=1)
            h = h + mix(torch.tanh(a) * torch.sigmoid(b))  # gated residual layer
        return self.out(h)

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) in nats, one pass. (B, D) -> (B,)."""
        if y is not None:
            raise ValueError("DilatedCausalModel is unconditional; got labels y")
        checks.images("x", x, dims=self.config.dims)
        checks.support("x", x, "categorical", levels=self.config.levels)
        return -F.cross_entropy(self.logits(x), x.long(), reduction="none").sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return -self.log_prob(x, y).mean()


# ----------------------------------------------------------------------------- next-character model


def text_corpus(max_chars: int | None = 200_000) -> str:
    """English prose that ships with Python: the help texts of ``pydoc_data.topics`` (the
    language reference shown by ``help("if")`` etc.), whitespace collapsed, at most ``max_chars``."""
    from pydoc_data.topics import topics

    text = " ".join(" ".join(topics[name].split()) for name in sorted(topics))
    return text if max_chars is None else text[:max_chars]


class Vocabulary:
    """Characters <-> integer codes; code 0 is reserved for "before the start of the text"."""

    def __init__(self, text: str):
        self.chars = ["\0"] + sorted(set(text) - {"\0"})
        self.index = {ch: k for k, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {checks.short(''.join(unknown))}")
        return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)

    def decode(self, codes) -> str:
        return "".join(self.chars[int(k)] for k in codes)


def windows(codes: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(contexts (N, context), targets (N,)): each character with the ``context`` characters before
    it, padded on the left with the start code 0."""
    padded = torch.cat([torch.zeros(context, dtype=torch.long), codes])
    return padded.unfold(0, context, 1)[: len(codes)], codes


class CharModel(nn.Module):
    """p_θ(c_t | c_{t-k}, ..., c_{t-1}) = softmax(MLP(embeddings of the k previous characters)):
    next-character prediction as a classifier over the vocabulary (a chain rule with a window)."""

    def __init__(self, vocab_size: int, context: int = 16, embed: int = 16, hidden: int = 256):
        super().__init__()
        self.vocab_size, self.context = checks.positive_int("vocab_size", vocab_size), checks.positive_int("context", context)
        self.embed = nn.Embedding(vocab_size, checks.positive_int("embed", embed))
        self.mlp = nets.mlp(context * embed, vocab_size, checks.positive_int("hidden", hidden), 2, act=nn.ReLU)

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        """Logits (N, A), A the vocabulary size, of the next character after each context (N, k)."""
        return self.mlp(self.embed(contexts).flatten(1))  # (N, k, e) -> (N, k e) -> (N, A)

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(c_1, ..., c_T) = Σ_t log p(c_t | c_{<t}) of one encoded text (T,), in nats, and
        the per-character terms: returns (T,) — sum it for the whole string."""
        checks.support("codes", codes, "categorical", self.vocab_size)
        contexts, targets = windows(codes, self.context)
        return -F.cross_entropy(self(contexts), targets, reduction="none")

    def next_log_prob(self, prompt: torch.Tensor) -> torch.Tensor:
        """log p(next character | encoded ``prompt`` (T,)) over the vocabulary: (A,)."""
        codes = torch.cat([torch.zeros(self.context, dtype=torch.long), prompt.long()])
        return torch.log_softmax(self(codes[None, -self.context:])[0], 0)

    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, n_chars: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Continue the encoded ``prompt`` (T,) by ``n_chars`` characters, one at a time."""
        checks.positive("temperature", temperature)
        codes = torch.cat([torch.zeros(self.context, dtype=torch.long), prompt.long()])
        for _ in range(checks.positive_int("n_chars", n_chars)):
            logits = self(codes[None, -self.context:])[0] / temperature
            nxt = torch.multinomial(torch.softmax(logits, 0), 1, generator=generator)
            codes = torch.cat([codes, nxt])
        return codes[self.context:]


def char_loss(model: CharModel, batch) -> torch.Tensor:
    """``fit``'s loss: mean cross-entropy (nats per character) of a batch (contexts, targets)."""
    contexts, targets = batch
    return F.cross_entropy(model(contexts), targets)


# ----------------------------------------------------------------------------- a causal transformer


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends to positions ≤ t only. With a ``cache``
    (a dict, filled on the first call) the keys and values of earlier positions are kept and only the
    new positions are computed: the KV cache of autoregressive generation."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width must be a multiple of heads, got width={width}, heads={heads}")
        self.heads = heads
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, h: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        B, T, E = h.shape
        q, k, v = (t.view(B, T, self.heads, E // self.heads).transpose(1, 2) for t in self.qkv(h).chunk(3, dim=2))
        past = 0
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)  # (B, heads, past + T, E/heads)
            cache["k"], cache["v"] = k, v
        scores = q @ k.transpose(2, 3) / math.sqrt(E // self.heads)  # (B, heads, T, past + T)
        later = torch.arange(past + T, device=h.device)[None, :] > past + torch.arange(T, device=h.device)[:, None]
        att = torch.softmax(scores.masked_fill(later, float("-inf")), dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, E))


class Block(nn.Module):
    """Pre-norm transformer block: h + attention(LN(h)), then h + MLP(LN(h))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.mlp = nets.mlp(width, width, 4 * width, 1)

    def forward(self, h: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        h = h + self.attn(self.ln1(h), cache)
        return h + self.mlp(self.ln2(h))


class CharTransformer(nn.Module):
    """p_θ(c_t | c_{<t}) from a small decoder-only transformer (token and learned position embeddings,
    ``n_layers`` causal blocks, a linear read-out): every position of a sequence in one pass, like
    PixelCNN; each output sees every earlier character up to ``max_len``. Sequences start with the
    start code 0, which is never predicted."""

    def __init__(self, vocab_size: int, max_len: int = 256, width: int = 64, heads: int = 4, n_layers: int = 2):
        super().__init__()
        self.vocab_size = checks.positive_int("vocab_size", vocab_size)
        self.max_len = checks.positive_int("max_len", max_len)
        self.embed = nn.Embedding(vocab_size, checks.positive_int("width", width))
        self.position = nn.Embedding(max_len, width)
        self.blocks = nn.ModuleList(Block(width, checks.positive_int("heads", heads))
                                    for _ in range(checks.positive_int("n_layers", n_layers)))
        self.ln = nn.LayerNorm(width)
        self.read_out = nn.Linear(width, vocab_size)

    def forward(self, codes: torch.Tensor, caches: list[dict] | None = None) -> torch.Tensor:
        """Logits (B, T, A) of the character after each position of ``codes`` (B, T). With ``caches``
        (one dict per block, from :meth:`new_caches`), ``codes`` continue the cached positions."""
        past = 0 if not caches or "k" not in caches[0] else caches[0]["k"].shape[2]
        T = codes.shape[1]
        if past + T > self.max_len:
            raise ValueError(f"at most max_len={self.max_len} positions, got {past + T}")
        h = self.embed(codes) + self.position(torch.arange(past, past + T, device=codes.device))
        for l, block in enumerate(self.blocks):
            h = block(h, None if caches is None else caches[l])
        return self.read_out(self.ln(h))

    def new_caches(self) -> list[dict]:
        return [{} for _ in self.blocks]

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(c_t | c_{<t}) of each character of one encoded text (T,), T < max_len, after the
        start code: (T,) nats, sum it for the whole string (as :meth:`CharModel.log_prob`)."""
        checks.support("codes", codes, "categorical", self.vocab_size)
        inputs = torch.cat([torch.zeros(1, dtype=torch.long, device=codes.device), codes[:-1]])
        return torch.log_softmax(self(inputs[None])[0], 1).gather(1, codes[:, None])[:, 0]

    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, n_chars: int, generator: torch.Generator | None = None,
               temperature: float = 1.0, cache: bool = True,
               callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
        """Continue the encoded ``prompt`` (T,) by ``n_chars`` characters. ``cache=True``: one pass over the
        prompt, then one position per step (keys and values of the past kept); ``cache=False``: the whole
        sequence again at every step. ``callback(step, logits)`` sees each step's logits (A,)."""
        checks.positive("temperature", temperature)
        n_chars = checks.positive_int("n_chars", n_chars)
        device = self.read_out.weight.device
        codes = torch.cat([torch.zeros(1, dtype=torch.long), prompt.long().cpu()]).to(device)
        if len(codes) + n_chars - 1 > self.max_len:
            raise ValueError(f"prompt + n_chars must fit in max_len={self.max_len}, got {len(codes) + n_chars - 1}")
        u = torch.rand(n_chars, generator=generator, dtype=torch.float64,
                       device=None if generator is None else generator.device).to(device)
        was_training = self.training
        self.eval()
        caches = self.new_caches() if cache else None
        new = codes
        try:
            for step in range(n_chars):
                logits = self(new[None], caches)[0, -1] if cache else self(codes[None])[0, -1]
                if callback is not None:
                    callback(step, logits)
                probs = torch.softmax(logits.double() / temperature, 0)
                nxt = categorical_inverse_cdf(probs[None], u[step : step + 1])
                codes = torch.cat([codes, nxt])
                new = nxt
        finally:
            self.train(was_training)
        return codes[1:].cpu()


def chunks(codes: torch.Tensor, length: int) -> torch.Tensor:
    """Non-overlapping pieces (N, length + 1) of an encoded text, each the start code 0 and ``length``
    characters: the transformer reads piece[:, :-1] and predicts piece[:, 1:]."""
    n = len(codes) // checks.positive_int("length", length)
    body = codes[: n * length].view(n, length)
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), body], 1)


def transformer_loss(model: CharTransformer, batch) -> torch.Tensor:
    """``fit``'s loss: mean cross-entropy (nats per character) over the pieces of a batch (from :func:`chunks`)."""
    (pieces,) = batch
    logits = model(pieces[:, :-1])  # (B, T, A)
    return F.cross_entropy(logits.transpose(1, 2), pieces[:, 1:])
