"""GenRM benchmark formats: each a :class:`PairwiseFormat` subclass (one module here, or
anywhere importable) whose ``convert`` turns one raw record into
:class:`genrm.records.PairwiseSample` (several as :class:`plumbing.data.Many`); each benchmark
is a YAML in ``conf/data/`` that names its format class as ``_target_`` (settings under
``params:``) and says where its data lives.

A format may list ``breakdowns``: sample ``meta`` keys the summary reports by (besides the
subset), e.g. RM-Bench's difficulty."""

from __future__ import annotations

from typing import Tuple

from plumbing.data import DataFormat


class PairwiseFormat(DataFormat):
    """A format of pairwise judgement items, the kind GenRM training and evaluation read."""

    produces = "pairwise"  # convert() returns genrm.records.PairwiseSample
    breakdowns: Tuple[str, ...] = ()
