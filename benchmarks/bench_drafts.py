"""asv: draft models against autospeculation on the shipped models (issue 20)."""
import numpy as np

from fastspec.api import _sample
from fastspec.models import pretrained
from fastspec.schedules import ve


def _pair(name):
    if name == "digits_ar":
        return pretrained.digits_ar(), pretrained.digits_mixture(), {}
    if name == "text_mlm":
        return pretrained.text_mlm(), pretrained.text_bigram(), {}
    return (pretrained.digits_denoiser(), pretrained.digits_gaussian(),
            {"schedule": ve(200, 80.0, 0.002)})


class DraftRounds:
    """Target rounds per call (16 samples, 2 seeds): autospeculation, anchored and plain drafts."""
    params = (["digits_ar", "text_mlm", "digits_denoiser"], ["none", "anchored", "plain"])
    param_names = ["target", "draft"]
    timeout = 600

    def setup(self, name, variant):
        model, draft, kw = _pair(name)
        self.stats = [_sample(model, n_samples=16, seed=s, draft=None if variant == "none"
                              else draft, _plain_drafts=variant == "plain", **kw).stats
                      for s in range(2)]

    def track_rounds(self, name, variant):
        return float(np.mean([st.rounds for st in self.stats]))
    track_rounds.unit = "target rounds per call"

    def track_draft_calls(self, name, variant):
        return float(np.mean([st.draft_calls for st in self.stats]))
    track_draft_calls.unit = "draft calls per call"
