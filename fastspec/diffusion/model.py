"""``DiffusionModel``: a diffusion model seen through its denoiser oracle."""

import numbers

import numpy as np

from .._errors import OracleError


class DiffusionModel:
    """A model on ``R^dim`` reached through its denoiser.

    Parameters
    ----------
    denoise : callable
        ``denoise(z, sigma) -> x_hat``: ``z`` float64 ``(K, dim)``, ``sigma``
        float64 ``(K,)`` (all > 0); returns ``(K, dim)`` floats,
        ``E[x | x + sigma * eps = z]`` row by row. Each sampling round makes
        exactly one call, with the rows of every sample stacked.
    dim : int
        Dimension ``d`` of the data (>= 1).

    Notes
    -----
    Every answer is checked: a wrong shape or a non-finite value raises
    :class:`fastspec.OracleError` naming the round, the chain step, sigma and
    the offending row, and no sample is returned. The samplers draw the law
    of the chain's last state ``y_N`` (see :mod:`fastspec.schedules`); for
    the final denoised estimate call
    ``model.denoise(y / schedule.final_s, np.full(len(y), schedule.final_sigma))``.

    Examples
    --------
    >>> import numpy as np, fastspec
    >>> def denoise(z, sigma):  # data ~ N(0, I)
    ...     return z / (1.0 + sigma[:, None] ** 2)
    >>> model = fastspec.DiffusionModel(denoise, dim=3)
    >>> sched = fastspec.schedules.ve(100, 80.0, 0.002)
    >>> fastspec.sample(model, schedule=sched, n_samples=2, seed=0).samples.shape
    (2, 3)
    """

    def __init__(self, denoise, dim):
        if not callable(denoise):
            raise ValueError(f"denoise must be callable, got {type(denoise).__name__}")
        if (not isinstance(dim, (numbers.Integral, np.integer)) or isinstance(dim, bool)
                or dim < 1):
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        self.denoise = denoise
        self.dim = int(dim)

    def __repr__(self):
        return f"{type(self).__name__}(dim={self.dim})"

    # -- engine protocol (see fastspec._engine) ---------------------------------
    def _request_rows(self, request):
        return request[0].shape[0]

    def _answer(self, requests, round_index):
        """One denoiser call for all ``requests`` ``(z, sigma, step)``, validated and split."""
        if len(requests) == 1:
            z, sigma, steps = requests[0]
        else:
            z = np.concatenate([r[0] for r in requests])
            sigma = np.concatenate([r[1] for r in requests])
            steps = np.concatenate([r[2] for r in requests])
        out = self.query(z, sigma, round_index=round_index, steps=steps)
        answers = []
        start = 0
        for r in requests:
            m = r[0].shape[0]
            answers.append(out[start:start + m])
            start += m
        return answers

    def query(self, z, sigma, round_index=None, steps=None):
        """Call the denoiser once and validate its answer.

        Parameters
        ----------
        z : ndarray (K, dim)
        sigma : ndarray (K,)
        round_index : int, optional
            For error messages.
        steps : ndarray (K,) of int, optional
            Chain step of each row, for error messages.

        Returns
        -------
        ndarray (K, dim) float64

        Raises
        ------
        OracleError
            Wrong shape or non-finite values.
        """
        where = "" if round_index is None else f" in round {round_index}"
        try:
            out = np.asarray(self.denoise(z, sigma), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, OracleError):
                raise
            raise OracleError(f"denoiser output{where} is not a float array: {exc}") from exc
        if out.shape != z.shape:
            raise OracleError(
                f"denoiser returned shape {out.shape}{where}, expected {z.shape} "
                f"(K={z.shape[0]} rows of dim={self.dim})")
        finite = np.isfinite(out).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            step = "?" if steps is None else int(steps[row])
            cols = np.flatnonzero(~np.isfinite(out[row]))[:5]
            vals = ", ".join(f"[{c}]={out[row, c]}" for c in cols)
            raise OracleError(
                f"denoiser returned non-finite values{where}: row {row} (chain step {step}, "
                f"sigma={sigma[row]:.6g}): {vals}")
        return out
