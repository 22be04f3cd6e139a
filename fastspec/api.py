"""``fastspec.sample``: one entry point for every model family and method."""

from ._checks import check_flag, check_int
from ._driver import Pipeline, run_rounds
from ._options import SampleOptions
from ._rules import METHODS, check_method
from ._seeds import SampleStreams
from ._sizer import check_block_size, check_row_cost

__all__ = ["METHODS", "sample"]


def check_model(model, what="model must be"):
    """``model`` itself; TypeError unless it implements :class:`fastspec._driver.Pipeline`
    (:class:`fastspec.ARModel`, :class:`fastspec.DiffusionModel`). ``what`` starts the
    message."""
    if not isinstance(model, Pipeline):
        raise TypeError(f"{what} a fastspec.ARModel or fastspec.DiffusionModel (or "
                        "implement fastspec._driver.Pipeline: batch_sampler and call_oracle), "
                        f"got {type(model).__name__}")
    return model


def check_n_samples(n_samples):
    """``n_samples`` as an int >= 1 (TypeError for another type, ValueError below 1)."""
    return check_int("n_samples", n_samples, 1)


def check_max_rows(max_rows):
    """``max_rows``: "auto", None or an int >= 1 (rows per oracle call)."""
    if isinstance(max_rows, str) and max_rows == "auto":
        return max_rows
    return check_int("max_rows", max_rows, 1, what=' (rows per oracle call) or "auto"',
                     allow_none=True)


def sample(model, *, n_samples=1, method="auto", draft=None, seed=None, order=None, given=None,
           block_size="auto", row_cost=None, schedule=None, max_rows="auto", progress=False):
    """Draw exact samples from ``model`` with few sequential oracle rounds.

    Parameters
    ----------
    model : ARModel or DiffusionModel
        The model, reachable only through its oracle.
    n_samples : int, default 1
        Independent samples to draw. They share every oracle round, so the
        rounds of a batch are about those of one sample.
    method : {"auto", "sequential", "token", "block", "srs"}, default "auto"
        ``"sequential"``: one round per step (ancestral sampling).
        ``"token"``: per-position speculative verification.
        ``"block"``: sequence-level prefix-optimal verification.
        ``"srs"``: speculative rejection sampling.
        ``"auto"``: ``"block"``, the fewest rounds in the project's benchmarks.
        Every method draws from exactly the same law.
    draft : None, ARModel or DiffusionModel, default None
        A cheap model that drafts each speculated block step by step (one call
        of it per drafted step, batched over the samples; each step conditioned
        on the ones drafted before it), which the target then verifies with
        the method's rule: the law does not change. An :class:`ARModel` with
        the target's ``n`` and ``q`` for an AR target, a
        :class:`DiffusionModel` with its ``dim`` for a diffusion target (the
        cheap denoiser is called at the same ``z`` and ``sigma`` as the
        target). Each draft is anchored on the target's own marginal (denoiser
        value) from its last round, which the draft model corrects for the steps
        drawn since. Methods "token" and "block" only. ``None``: autospeculation,
        the target's own marginals (denoiser value) at the round's context.
        ``stats.draft_calls`` and ``stats.draft_rows`` count its cost apart
        from the target's; diffusion drafts hold ``O(k dim)`` per sample for a
        block of ``k`` steps. docs/ALGORITHMS.md, section 7.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of randomness. The seed becomes one root ``SeedSequence``;
        sample ``i`` draws only from its own PCG64 stream, seeded with the
        words ``4 i .. 4 i + 3`` of the root's ``generate_state`` (not from a
        ``SeedSequence.spawn`` child; ``fastspec._seeds``), so it is the same
        whatever ``n_samples``, ``max_rows`` and ``NUMBA_NUM_THREADS`` are. A
        SeedSequence is used as given (the same one gives the same samples); a
        Generator is consumed once (two 64-bit draws).
    order : None, array_like of int, "confidence" or a numba.njit policy
        AR only. ``None`` draws a uniformly random order of the free positions
        per sample; an array (a permutation of ``range(n)``, or of the free
        positions when ``given`` is shared) is used for every sample, pinned
        positions skipped. ``"confidence"``: at each step the free position whose
        marginal has the highest maximum probability (ties to the lowest index),
        its symbol from that marginal (LLaDA's low-confidence remasking, one
        token per step); every method but "srs" draws exactly that sampler's law
        (docs/ALGORITHMS.md, section 8). A ``numba.njit`` function
        ``policy(marginals (F, q), positions (F,)) -> position`` of one context's
        free-position marginals replaces the confidence rule.
    given : None or array_like of int, shape (n,) or (n_samples, n)
        AR only: exact infilling. Entries ``>= 0`` are pinned symbols, ``-1``
        marks the positions to draw; the free positions are drawn exactly from
        the sequential law given the pinned ones.
    block_size : "auto" or int, default "auto"
        Length of each speculated block. ``"auto"`` starts near the square
        root of the number of steps and adapts to the accepted lengths,
        aiming at the fewest rounds.
    row_cost : None or float > 0, default None
        Methods "token" and "block" with ``block_size="auto"`` only: size blocks
        for the least oracle *cost* instead of the fewest rounds. It is the
        cost of one oracle row relative to a round's fixed cost per sample: for
        an oracle whose call with K rows takes ``t0 + K * t1`` seconds, that is
        ``t1 / t0`` with one sample per call and ``n_samples * t1 / t0`` when
        ``n_samples`` samples share each call. The rule never looks at
        ``n_samples`` itself, so sample ``i`` does not depend on the batch. The
        law of the samples does not change; see docs/BENCHMARKS.md.
    schedule : Schedule, optional
        Diffusion only: the Gaussian chain to run
        (default ``fastspec.schedules.ve(1000, 80.0, 0.002)``).
    max_rows : "auto", None or int, default "auto"
        At most this many rows per oracle call: a round with more rows is sent
        as several calls (still one round; ``stats.oracle_calls`` counts them),
        each verified as it arrives and then dropped, so the memory a round
        holds is one call's rows plus a few numbers (AR: a few windows of
        marginals; diffusion: ``O(d)``) per sample. ``"auto"``: as many rows as
        keep one call within ``fastspec._driver.MEMORY_BUDGET`` (64 MiB, float64
        answers, as wide as the call's widest row with the positions protocol;
        diffusion counts the request and the draft states too).
        ``None``: one call per round, however large. The samples do not
        depend on it.
    progress : bool, default False
        Show a progress bar on stderr (tqdm), updated once per round.

    Returns
    -------
    SampleResult
        ``samples``, ``stats`` (rounds, oracle rows and calls, per-sample
        rounds, accepted lengths), and for AR models ``orders`` and
        ``log_prob``; ``print(result.stats)`` gives a short summary.

    Raises
    ------
    TypeError
        For an argument of the wrong type (``model`` not a fastspec model,
        ``draft`` not a model of its family, ``n_samples`` a float,
        ``progress`` not a bool, ...); the message names it
        (:mod:`fastspec._checks`).
    ValueError
        For an argument of the right type with an invalid value; the message
        says what is allowed.
    OracleError
        If the oracle returns an invalid answer where the samplers use it (no
        sample is returned). Exceptions raised by the oracle itself pass
        through unchanged, with a note naming the round.

    Examples
    --------
    >>> import fastspec
    >>> model = fastspec.models.CurieWeiss(n=64, J=1.0)
    >>> res = fastspec.sample(model, n_samples=4, seed=0)
    >>> res.samples.shape
    (4, 64)
    """
    return _sample(model, n_samples=n_samples, method=method, draft=draft, seed=seed,
                   order=order, given=given, block_size=block_size, row_cost=row_cost,
                   schedule=schedule, max_rows=max_rows, progress=progress)


def _sample(model, *, n_samples=1, method="auto", draft=None, seed=None, order=None, given=None,
            block_size="auto", row_cost=None, schedule=None, max_rows="auto", progress=False,
            _rule=None, _parallel=None, _sample_offset=0, _plain_drafts=False):
    """:func:`sample` with the hooks tests and :mod:`fastspec.cluster` need.

    ``_rule`` overrides the verification rule (``fastspec._rules.UNVERIFIED`` is
    the negative control); ``_parallel`` forces the serial (False) or parallel
    (True) kernels; samples are the streams ``_sample_offset ..`` of ``seed``;
    ``_plain_drafts`` drafts from the draft model alone, not anchored on the
    target (``fastspec._drafts.Drafter``; the benchmarks compare both).
    """
    check_model(model)
    n_samples = check_n_samples(n_samples)
    method = check_method(method)
    block_size = check_block_size(block_size)
    row_cost = check_row_cost(row_cost, method, block_size)
    max_rows = check_max_rows(max_rows)
    check_flag("progress", progress)
    streams = SampleStreams(seed, n_samples, offset=_sample_offset)
    if draft is not None:
        from ._drafts import Drafter, check_draft
        check_draft(draft, model, method)
        draft = Drafter(draft, max_rows, anchored=not _plain_drafts)
    options = SampleOptions(block_size=block_size, row_cost=row_cost, order=order, given=given,
                            schedule=schedule, draft=draft, parallel=_parallel, rule=_rule)
    sampler = model.batch_sampler(method, streams, options)
    bar = None
    if progress:
        from ._progress import ProgressBar
        bar = ProgressBar(sampler, method)
    return run_rounds(model, sampler, method, max_rows=max_rows, progress=bar)
