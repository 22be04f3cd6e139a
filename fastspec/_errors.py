"""Exception types raised by fastspec."""


class OracleError(ValueError):
    """The user's oracle returned something that is not a valid answer.

    Raised when a marginal oracle returns rows of the wrong shape, non-finite
    or negative values, or rows that do not sum to one on free positions, and
    when a denoiser returns non-finite or wrongly shaped output. The message
    names the round, the row of the batch, the position (or chain step) and the
    offending values. No sample is returned from a call that raised it.
    """
