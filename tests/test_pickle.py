"""Arguments of fastspec.sample pickle: fastspec.cluster sends them to Dask workers."""

import pickle

import numpy as np
import pytest

import fastspec

SLOTS = fastspec.schedules.Schedule.__slots__

@pytest.mark.parametrize("schedule", [
    fastspec.schedules.ve(20, 80.0, 0.002),
    fastspec.schedules.vp(100),
    fastspec.schedules.Schedule(a=[0.5, 0.5], b=[0.5, 0.5], c=[0.3, 0.0], s=[1.0, 1.0],
                                sigma=[0.6, 0.4], init_scale=1.0, final_s=2.0,
                                final_sigma=0.1, name="mine"),
])
def test_schedule_pickles_and_stays_frozen(schedule):
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule and copy is not schedule
    for key in SLOTS:
        a, b = getattr(copy, key), getattr(schedule, key)
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b) and not a.flags.writeable
        else:
            assert a == b
    with pytest.raises(AttributeError, match="frozen"):
        copy.a = np.zeros(2)


def test_pickled_schedule_gives_the_same_samples():
    model = fastspec.models.PointCloud(np.eye(3))
    sched = fastspec.schedules.ve(30, 80.0, 0.002)
    a = fastspec.sample(model, schedule=sched, n_samples=3, seed=1, method="block")
    b = fastspec.sample(model, schedule=pickle.loads(pickle.dumps(sched)), n_samples=3, seed=1,
                        method="block")
    assert np.array_equal(a.samples, b.samples)
