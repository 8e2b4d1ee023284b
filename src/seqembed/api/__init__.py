"""The library seqembed offers, one function or class per job.

``seqembed`` re-exports these names (lazily, so ``import seqembed`` stays
light); import them from there::

    runs       load_run, Run, Tables, Translation: translate, query tables
    training   train: a corpus in, a Run out
    analysis   analyze, AnalysisResult, Finding: figures beside chance
    plots      plot_map: the embedding map as a matplotlib Figure
    progress   Progress: what a long call reports to its callback
    data       builtin_corpus, builtin_user_dict: the corpus shipped with it

This layer sits above ``report`` and below ``serve`` and ``cli``: the command
line and the server are thin layers over these functions. None of them
prints; they log (logger ``seqembed``) and take an optional ``progress``
callback.
"""
