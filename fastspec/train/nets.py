"""The torch networks of the pretrained models (training only; needs torch).

Each class has a numpy twin in :mod:`fastspec.models.pretrained` that reads the
same ``state_dict`` names; ``tests/test_pretrained.py`` checks that both give the
same outputs. Layers follow torch conventions (``Linear.weight`` is (out, in)).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def gelu(x):
    """GELU, tanh approximation (the numpy twin uses the same formula)."""
    return F.gelu(x, approximate="tanh")


class ResidualBlock(nn.Module):
    """``h + fc2(gelu(fc1(norm(h)) + cond(c)))``, with dropout before ``fc2``."""

    def __init__(self, width, cond_width=0, dropout=0.0):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.cond = nn.Linear(cond_width, width) if cond_width else None
        self.drop = nn.Dropout(dropout)

    def forward(self, h, c=None):
        u = self.fc1(self.norm(h))
        if self.cond is not None:
            u = u + self.cond(c)
        return h + self.fc2(self.drop(gelu(u)))


class MaskedMLP(nn.Module):
    """Any-order AR network for short sequences: one-hot context -> logits.

    Parameters
    ----------
    n, q : int
        Sequence length and alphabet size.
    width, depth : int
        Hidden width and number of residual blocks.
    dropout : float
        Dropout inside the blocks (training only).

    Notes
    -----
    ``forward(ctx)``: ``ctx`` int64 (B, n), ``-1`` = free; returns logits (B, n, q).
    The input is the one-hot of each position over ``q + 1`` channels (the last
    one meaning "free"), flattened position-major.
    """

    def __init__(self, n, q, width=512, depth=3, dropout=0.0):
        super().__init__()
        self.n, self.q = n, q
        self.embed = nn.Linear(n * (q + 1), width)
        self.blocks = nn.ModuleList([ResidualBlock(width, 0, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n * q)

    def forward(self, ctx):
        channel = torch.where(ctx < 0, torch.full_like(ctx, self.q), ctx)
        x = F.one_hot(channel, self.q + 1).to(self.embed.weight.dtype).flatten(1)
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)).view(-1, self.n, self.q)


class EDMDenoiser(nn.Module):
    """Denoiser with EDM preconditioning around the data mean.

    ``D(z, sigma) = mean + c_skip (z - mean) + c_out F(c_in (z - mean), log(sigma) / 4)``
    with ``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``,
    ``c_in = 1 / sqrt(sigma^2 + sd^2)`` and ``sd = sigma_data`` (Karras et al. 2022,
    Table 1). ``F``: a residual GELU MLP; each block receives an embedding of
    ``c_noise`` (its value and sines / cosines at fixed frequencies).

    Parameters
    ----------
    dim : int
        Data dimension.
    mean : sequence of float (dim,)
        Per-coordinate data mean (training split).
    sigma_data : float
        RMS of ``x - mean`` (training split).
    sigma_min, sigma_max : float
        Range of the training noise levels (recorded for the user).
    width, depth, cond_width, n_freq : int
        Hidden width, residual blocks, width of the noise embedding, number of
        Fourier frequencies.
    """

    def __init__(self, dim, mean, sigma_data, sigma_min, sigma_max, width=256, depth=3,
                 cond_width=128, n_freq=6, dropout=0.0):
        super().__init__()
        self.sigma_data = float(sigma_data)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(dim))
        # Frequencies pi * 2^k: c_noise spans about [-1.6, 1.4] over sigma in [0.002, 300].
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_freq, dtype=torch.float32))
        self.inp = nn.Linear(dim, width)
        self.emb1 = nn.Linear(2 * n_freq + 1, cond_width)
        self.emb2 = nn.Linear(cond_width, cond_width)
        self.blocks = nn.ModuleList([ResidualBlock(width, cond_width, dropout)
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, dim)

    def network(self, x, c_noise):
        c = c_noise.reshape(-1, 1)
        angles = c * self.freqs
        e = gelu(self.emb2(gelu(self.emb1(torch.cat([c, angles.sin(), angles.cos()], 1)))))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out(self.norm(h))

    def forward(self, z, sigma):
        s = sigma.reshape(-1, 1)
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (s * s + sd2)
        c_out = s * self.sigma_data / torch.sqrt(s * s + sd2)
        c_in = 1.0 / torch.sqrt(s * s + sd2)
        centred = z - self.mean
        return self.mean + c_skip * centred + c_out * self.network(c_in * centred,
                                                                   torch.log(s[:, 0]) / 4.0)


class TransformerLayer(nn.Module):
    """Pre-norm encoder layer: full self-attention, then a GELU MLP (4x width)."""

    def __init__(self, d, heads, dropout=0.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        B, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(B, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.drop(self.proj((att @ v).transpose(1, 2).reshape(B, n, d)))
        return x + self.drop(self.fc2(gelu(self.fc1(self.norm2(x)))))


class MaskedTransformer(nn.Module):
    """Bidirectional transformer masked LM: ``forward(ctx)`` (B, n), ``-1`` = free ->
    logits (B, n, q). Symbol ``q`` of the token embedding is the mask token."""

    def __init__(self, n, q, d=128, depth=4, heads=4, dropout=0.0):
        super().__init__()
        self.n, self.q = n, q
        self.tok = nn.Embedding(q + 1, d)
        # Token and position embeddings start at one scale (GPT-2's 0.02): with torch's
        # default N(0, 1) tokens the positions were drowned out and the model, blind to
        # order, stayed at the unigram loss.
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos = nn.Parameter(torch.randn(n, d) * 0.02)
        self.layers = nn.ModuleList([TransformerLayer(d, heads, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, q)

    def forward(self, ctx):
        x = self.tok(torch.where(ctx < 0, torch.full_like(ctx, self.q), ctx)) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


#: Network class of each shipped model, by the ``arch`` recorded in its weight file.
ARCHITECTURES = {"MaskedMLP": MaskedMLP, "EDMDenoiser": EDMDenoiser,
                 "MaskedTransformer": MaskedTransformer}


def from_weights(arrays, config):
    """Rebuild the torch module of a weight file (see
    :func:`fastspec.models.pretrained.load_weights`), in eval mode, float32."""
    kwargs = dict(config["kwargs"])
    if config["arch"] == "EDMDenoiser":
        kwargs["mean"] = arrays["mean"].tolist()
    module = ARCHITECTURES[config["arch"]](**kwargs)
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays.items()})
    return module.eval()
