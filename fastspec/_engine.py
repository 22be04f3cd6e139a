"""The round engine: every sample's sampler shares each batched oracle call.

A sampler is written as a Python generator (a *task*). Whenever it needs the
oracle it yields a list of requests (model-specific: a block of AR contexts,
or a block of diffusion states) and receives the list of answers. The engine
collects the requests of every live task, makes **one** oracle call for all
of them (one *round*), splits the answer and resumes each task. So the rounds
of a call with 16 samples are the maximum, not the sum, of the samples' rounds.

Sub-samplers that run concurrently inside one task (the residual proposals of
``srs``) are merged into the same round by :func:`concurrently`.
"""

import gc
import time

import numpy as np


class RoundCounter:
    """Rounds, rows and oracle time for one ``sample`` call."""

    def __init__(self, n_tasks):
        self.rounds = 0
        self.rows = 0
        self.oracle_seconds = 0.0
        self.task_rounds = np.zeros(n_tasks, dtype=np.int64)
        self.task_rows = np.zeros(n_tasks, dtype=np.int64)


def run_rounds(model, tasks):
    """Drive ``tasks`` to completion, batching their requests into rounds.

    Parameters
    ----------
    model : object
        Provides ``_request_rows(request) -> int`` and
        ``_answer(requests, round_index) -> list`` which makes exactly one call
        of the user's oracle for all ``requests`` and validates its output.
    tasks : list of generator
        Each yields lists of requests and finally returns its result.

    Returns
    -------
    results : list
        The return value of each task, in order.
    counter : RoundCounter
    """
    # Thousands of live tasks make every cyclic-GC pass walk all of them (20,000
    # samples ran 30x slower with the GC on); tasks make no cycles needing it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_rounds(model, tasks)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run_rounds(model, tasks):
    counter = RoundCounter(len(tasks))
    results = [None] * len(tasks)
    pending = {}
    for i, task in enumerate(tasks):
        _advance(task, i, None, pending, results, start=True)
    while pending:
        ids = list(pending)
        requests = []
        owners = []
        for i in ids:
            reqs = pending[i]
            requests.extend(reqs)
            owners.append(len(reqs))
            rows = sum(model._request_rows(r) for r in reqs)
            counter.task_rounds[i] += 1
            counter.task_rows[i] += rows
            counter.rows += rows
        t0 = time.perf_counter()
        answers = model._answer(requests, counter.rounds)
        counter.oracle_seconds += time.perf_counter() - t0
        counter.rounds += 1
        start = 0
        for i, m in zip(ids, owners):
            _advance(tasks[i], i, answers[start:start + m], pending, results)
            start += m
    return results, counter


def _advance(task, i, answer, pending, results, start=False):
    try:
        reqs = next(task) if start else task.send(answer)
    except StopIteration as stop:
        results[i] = stop.value
        pending.pop(i, None)
        return
    if not reqs:
        raise RuntimeError("a sampler task yielded no request; this is a fastspec bug")
    pending[i] = reqs


def concurrently(subtasks, decide=None):
    """Run sub-tasks inside a task so that their requests share rounds.

    Use as ``results = yield from concurrently(subtasks, decide)``.

    Parameters
    ----------
    subtasks : list of generator
    decide : callable, optional
        Called after every round with the list of results so far (``None``
        for sub-tasks still running); return True to stop early, abandoning
        the unfinished sub-tasks.

    Returns
    -------
    list
        Each sub-task's result, ``None`` where it was abandoned.
    """
    results = [None] * len(subtasks)
    done = [False] * len(subtasks)
    pending = {}
    for j, sub in enumerate(subtasks):
        try:
            pending[j] = next(sub)
        except StopIteration as stop:
            results[j] = stop.value
            done[j] = True
    while pending:
        if decide is not None and decide(results, done):
            break
        ids = list(pending)
        requests = []
        sizes = []
        for j in ids:
            requests.extend(pending[j])
            sizes.append(len(pending[j]))
        answers = yield requests
        start = 0
        for j, m in zip(ids, sizes):
            try:
                pending[j] = subtasks[j].send(answers[start:start + m])
            except StopIteration as stop:
                results[j] = stop.value
                done[j] = True
                del pending[j]
            start += m
    for j in pending:
        subtasks[j].close()
    return results, done


def first_accepted_in_order(results, done):
    """``decide`` for :func:`concurrently` over rejection-sampling proposals.

    Each result's first item says whether that proposal was accepted. Stop once
    the lowest-index proposal not yet rejected is accepted (or all are done).
    Proposals are taken in index order, never in finishing order, which
    depends on the proposal's value and would bias the draw.
    """
    for j in range(len(done)):
        if not done[j]:
            return False
        if results[j][0]:
            return True
    return True
