"""``progress=True``: a tqdm bar on stderr, updated once per round."""


class ProgressBar:
    """Steps done over all samples, with the rounds so far and the mean accepted length."""

    def __init__(self, sampler, method):
        from tqdm.auto import tqdm
        done, total = sampler.progress()
        self._bar = tqdm(total=total, initial=done, desc=f"fastspec {method}", unit="step",
                         leave=False, dynamic_ncols=True)

    def update(self, sampler, rounds):
        done, _ = sampler.progress()
        self._bar.update(done - self._bar.n)
        log = sampler.log
        postfix = {"rounds": rounds}
        if log.n_blocks:
            postfix["mean accepted"] = f"{log.n_accepted / log.n_blocks:.1f}"
        self._bar.set_postfix(postfix, refresh=False)

    def close(self):
        self._bar.close()
