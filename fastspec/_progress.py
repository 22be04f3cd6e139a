"""``progress=True``: a tqdm bar on stderr, updated once per round."""


class ProgressBar:
    """Steps done over all samples, with the rounds so far and the mean accepted length."""

    def __init__(self, sampler, method):
        from tqdm.auto import tqdm
        done, total = sampler.progress()
        self._bar = tqdm(total=total, initial=done, desc=f"fastspec {method}", unit="step",
                         dynamic_ncols=True)

    def update(self, sampler, rounds):
        done, _ = sampler.progress()
        log = sampler.log
        postfix = {"rounds": rounds}
        if log.n_blocks:
            postfix["mean accepted"] = f"{log.n_accepted / log.n_blocks:.1f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(done - self._bar.n)       # redraws at most every 0.1 s

    def close(self):
        self._bar.close()
