"""The analysis settings of the session's analysed runs (tests/analysis
conftest.py analyses them once for every test file here)."""

from seqembed.analysis.run import (
    DESIGN_GROUPS,
    DESIGN_PAIRS,
    AnalysisSettings,
    builtin_groups,
)

SEED_SETTINGS = AnalysisSettings(
    sides=("src",),
    groups=DESIGN_GROUPS,
    pairs=tuple(DESIGN_PAIRS),
    top_n=8,
    # 今天 occurs once: its self-similarity is null, with a reason.
    context_words=("很", "今天"),
)
BUILTIN_SETTINGS = AnalysisSettings(
    # "tiny" has one word in the vocabulary: its figures are null.
    groups={**builtin_groups(), "tiny": ["天气", "不存在"]},
    pairs=(("天气", "下雨"), ("学习", "不存在"), ("weather", "rain")),
    top_n=10,
)
