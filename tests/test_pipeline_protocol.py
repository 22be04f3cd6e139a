"""fastspec.sample dispatches through the Pipeline protocol with typed options (issue 21)."""

import dataclasses
import inspect

import numpy as np
import pytest

import fastspec
from fastspec._options import AR_ONLY, DIFFUSION_ONLY, SampleOptions
from fastspec.models import CurieWeiss


class Relabelled:
    """A third model family: any object with the protocol's two methods (here delegating
    to an AR model)."""

    def __init__(self, inner):
        self.inner = inner

    def batch_sampler(self, method, streams, options):
        return self.inner.batch_sampler(method, streams, options)

    def call_oracle(self, args, counter, where):
        return self.inner.call_oracle(args, counter, where)


@pytest.mark.parametrize("method", ["sequential", "block"])
def test_a_third_family_needs_no_change_to_sample(method):
    model = CurieWeiss(n=16, J=1.0)
    ours = fastspec.sample(Relabelled(model), n_samples=3, seed=1, method=method)
    direct = fastspec.sample(model, n_samples=3, seed=1, method=method)
    assert np.array_equal(ours.samples, direct.samples)
    assert ours.stats.rounds == direct.stats.rounds


def test_an_object_without_the_protocol_is_refused():
    class Half:
        def batch_sampler(self, method, streams, options):
            raise AssertionError("never called")
    with pytest.raises(TypeError, match="implement fastspec._driver.Pipeline"):
        fastspec.sample(Half())


def test_options_are_the_keywords_of_sample():
    """Each user keyword a pipeline reads is one field; the rest are test hooks or reserved."""
    fields = {f.name for f in dataclasses.fields(SampleOptions)}
    keywords = set(inspect.signature(fastspec.sample).parameters)
    assert fields - keywords == {"parallel", "rule", "draft"} - keywords
    assert set(AR_ONLY) | set(DIFFUSION_ONLY) <= fields & keywords
    with pytest.raises(dataclasses.FrozenInstanceError):
        SampleOptions().order = [0]


def test_each_family_refuses_the_others_fields():
    ar = CurieWeiss(n=4, J=1.0)
    den = fastspec.DiffusionModel(lambda z, s: z / (1 + s[:, None] ** 2), dim=2)
    with pytest.raises(ValueError, match="schedule is for DiffusionModel only"):
        fastspec.sample(ar, schedule=fastspec.schedules.ve(4, 1.0, 0.1))
    for key in AR_ONLY:
        with pytest.raises(ValueError, match=f"{key} is for ARModel only"):
            fastspec.sample(den, **{key: [0, 1]})
