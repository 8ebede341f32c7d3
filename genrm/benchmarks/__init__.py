"""GenRM benchmark formats. Each module turns one raw record of a data set into
:class:`genrm.records.PairwiseSample` (``convert(record, options)``); each benchmark is a
YAML in ``conf/data/`` that names its format module and where its data lives.

A module may list ``BREAKDOWNS``: sample ``meta`` keys the summary reports by (besides the
subset), e.g. RM-Bench's difficulty."""
