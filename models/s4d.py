"""S4D: a diagonal state-space layer in place of attention (non-attention reference).

Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space Models".
Per channel ``c`` (the model dim ``D``), a diagonal complex SSM of ``N/2`` modes (conjugate
pairs, so the state is ``N`` real numbers) discretised with zero-order hold:

    A_bar = exp(dt A),  B_bar = (exp(dt A) - 1) / A * B,
    kernel K[l] = 2 Re( sum_n C_n B_bar_n A_bar_n^l ),  l = 0..L-1      (paper eq. 5-6)

and ``y = K * u`` (causal convolution, by FFT of length ``2L``, ``O(L log L)``). Bidirectional
as the LRA configs of S4: a second kernel (own ``C``) runs over the reversed sequence and the
two outputs add. Init: ``A_n = -1/2 + i pi n`` (``init=lin``, S4D-Lin) or
``-1/2 + i N/pi (N/(2n+1) - 1)`` (``init=inv``, S4D-Inv), ``B = 1``, ``C ~ N(0, 1/2)``
complex, ``log dt ~ U[log 1e-3, log 1e-1]``. The block is S4's: ``GELU(y + D u)`` then a
position-wise linear ``D -> 2D`` with GLU (S4's ``postact: glu`` of its LRA configs), which also
keeps the parameters within 10 % of the Transformer's. No ``q/k/v``; ``heads`` is unused.

Padding: padded inputs are zeroed before the convolution, so appended padding cannot reach a
real position in either direction. Padding in the middle of a sequence is a gap of zeros
(the state decays across it). ``dropout`` is accepted and unused.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import Attention, register
from models.kernels import check_choice, check_int


def s4d_init_a(channels: int, modes: int, init: str) -> Tensor:
    """Complex diagonal A [channels, modes]: S4D-Lin or S4D-Inv (Gu et al. 2022, §4)."""
    n = torch.arange(modes, dtype=torch.float64)
    if init == "lin":
        imag = math.pi * n
    else:
        big = 2 * modes
        imag = big / math.pi * (big / (2 * n + 1) - 1)
    a = torch.complex(torch.full_like(n, -0.5), imag)
    return a.expand(channels, modes).clone()


def ssm_kernel(log_dt: Tensor, a: Tensor, b: Tensor, c: Tensor, length: int) -> Tensor:
    """ZOH kernel 2 Re(C B_bar A_bar^l): log_dt [D], a, b [D, M], c [S, D, M] -> [S, D, L]."""
    dta = a * log_dt.exp()[:, None]  # [D, M]
    b_bar = (torch.exp(dta) - 1) / a * b
    power = torch.exp(dta[..., None] * torch.arange(length, device=a.device))  # [D, M, L]
    return 2 * torch.einsum("sdm,dml->sdl", c * b_bar, power).real


def causal_conv(u: Tensor, kernel: Tensor) -> Tensor:
    """y[t] = sum_{s<=t} kernel[t-s] u[s] by FFT: u [B, D, L], kernel [D, L] -> [B, D, L]."""
    length = u.shape[-1]
    uf = torch.fft.rfft(u, n=2 * length)
    kf = torch.fft.rfft(kernel, n=2 * length)
    return torch.fft.irfft(uf * kf, n=2 * length)[..., :length]


@register("s4d")
class S4DMixing(Attention):
    """Bidirectional diagonal SSM layer ``Linear_GLU(GELU(SSM(u) + D u))`` (overrides ``forward``).

    Options:
        d_state: real state size ``N`` per channel (even int >= 2; default 64, ``N/2`` modes).
        init: ``lin`` (S4D-Lin, default) or ``inv`` (S4D-Inv).
    """

    exact = False
    complexity = "n log n"
    test_options = {"d_state": 8}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        d_state: int = 64,
        init: str = "lin",
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        check_int("d_state", d_state, 2)
        if d_state % 2:
            raise ValueError(f"option d_state must be even (conjugate pairs), got {d_state!r}")
        self.d_state, self.init = d_state, check_choice("init", init, ("lin", "inv"))
        modes = d_state // 2
        a = s4d_init_a(dim, modes, init)
        self.log_neg_a_re = nn.Parameter((-a.real).log().float())  # keeps Re(A) < 0
        self.a_im = nn.Parameter(a.imag.float())
        self.b = nn.Parameter(torch.view_as_real(torch.ones(dim, modes, dtype=torch.cfloat)))
        c = torch.randn(2, dim, modes, dtype=torch.cfloat)  # two directions, C ~ N(0, 1/2) each
        self.c = nn.Parameter(torch.view_as_real(c))
        log_dt = torch.rand(dim) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)
        self.log_dt = nn.Parameter(log_dt)
        self.skip = nn.Parameter(torch.randn(dim))
        self.to_out = nn.Linear(dim, 2 * dim)

    def kernels(self, length: int) -> Tensor:
        """The forward and backward convolution kernels [2, D, length]."""
        a = torch.complex(-self.log_neg_a_re.exp(), self.a_im)
        b, c = torch.view_as_complex(self.b), torch.view_as_complex(self.c)
        return ssm_kernel(self.log_dt, a, b, c, length)

    def ssm(self, u: Tensor, mask: Tensor) -> Tensor:
        """Bidirectional SSM output plus skip ``D u``: u [B, L, D], mask [B, L] -> [B, L, D]."""
        wide = torch.promote_types(u.dtype, torch.float32)  # FFTs run in >= float32
        u = u.to(wide).masked_fill(~mask[..., None], 0.0).transpose(1, 2)  # [B, D, L]
        k = self.kernels(u.shape[-1]).to(wide)
        fwd = causal_conv(u, k[0])
        bwd = causal_conv(u.flip(-1), k[1]).flip(-1)
        return (fwd + bwd + self.skip[:, None].to(wide) * u).transpose(1, 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask [B, N] bool -> [B, N, D]."""
        y = F.gelu(self.ssm(x, mask)).to(x.dtype)
        return F.glu(self.to_out(y), dim=-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, d_state={self.d_state}, init={self.init}"
