"""Samplers written as one Python generator per sample (a *task*), driven in rounds.

``srs`` keeps this structure: its residual proposals run concurrently inside a
sample (:func:`concurrently`) and their number varies from sample to sample, which
a task expresses directly. A task yields a list of requests and receives the list
of their answers; :class:`TaskSampler` stacks the requests of every live task into
one round (so a call's rounds are the maximum, not the sum, of its samples') and
implements the round protocol of :mod:`fastspec._driver`.
"""

import numpy as np

from ._driver import RoundLog


class TaskSampler:
    """Drive generator tasks as a :class:`fastspec._driver.BatchSampler`.

    Subclasses say how requests stack (:meth:`_stack`, :meth:`_slice`,
    :meth:`_rows`) and how a call's answer is checked and kept
    (:meth:`_store`, :meth:`_split`).
    """

    def __init__(self, tasks, n_steps):
        self.tasks = tasks
        self.n_steps = n_steps
        self.results = [None] * len(tasks)
        self.pending = {}
        self.log = RoundLog.empty(len(tasks))
        for i, task in enumerate(tasks):
            self._advance(i, None, start=True)

    def _advance(self, i, answer, start=False):
        try:
            reqs = next(self.tasks[i]) if start else self.tasks[i].send(answer)
        except StopIteration as stop:
            self.results[i] = stop.value
            self.pending.pop(i, None)
            return
        if not reqs:
            raise RuntimeError("a sampler task yielded no request; this is a fastspec bug")
        self.pending[i] = reqs

    def plan(self):
        if not self.pending:
            return 0
        self._ids = list(self.pending)
        requests = [r for i in self._ids for r in self.pending[i]]
        self._counts = [len(self.pending[i]) for i in self._ids]
        self._sizes = [self._rows(r) for r in requests]
        per_task = np.add.reduceat(self._sizes, np.cumsum([0] + self._counts[:-1]))
        self.log.add_round(np.array(self._ids), np.asarray(per_task, dtype=np.int64))
        self._stacked = self._stack(requests)
        self._answer = None
        return int(sum(self._sizes))

    def request(self, start, stop):
        return self._slice(self._stacked, start, stop)

    def consume(self, answer, start, stop, where):
        self._answer = self._store(self._answer, answer, start, stop, where)

    def finish(self):
        answers = self._split(self._answer, self._sizes)
        self._stacked = self._answer = None
        pos = 0
        for i, m in zip(self._ids, self._counts):
            self._advance(i, answers[pos:pos + m])
            pos += m

    def progress(self):
        done = sum(1 for r in self.results if r is not None)
        return done * self.n_steps, len(self.results) * self.n_steps


def concurrently(subtasks, decide=None):
    """Run sub-tasks inside a task so that their requests share rounds.

    Use as ``results, done = yield from concurrently(subtasks, decide)``.

    Parameters
    ----------
    subtasks : list of generator
    decide : callable, optional
        Called before every round with the results so far (``None`` for
        sub-tasks still running) and the list of finished flags; return True
        to stop early, abandoning the unfinished sub-tasks.

    Returns
    -------
    results : list
        Each sub-task's result, ``None`` where it was abandoned.
    done : list of bool
        Whether each sub-task finished.
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
