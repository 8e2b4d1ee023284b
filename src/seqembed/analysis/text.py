"""The analysis result as words and tables, for people.

``sections(result)`` turns the JSON result of ``run.analyze_run`` into
titled tables with a plain sentence each (``wording.Section``): each side's
sections (``side_text``), then the alignment, contextual and per-epoch
movement sections here. ``to_markdown`` writes them as Markdown, the CLI
draws the same sections with rich and the report as HTML: one source of the
wording, three renderings.
"""

from __future__ import annotations

from seqembed.analysis.side_text import side_sections
from seqembed.analysis.wording import (
    SIDE_NAMES,
    Section,
    drop_empty_columns,
    number,
    p_text,
    plural,
    sections_markdown,
)


def sections(result: dict, verbose: bool = True) -> list[Section]:
    out = []
    for side, data in result["sides"].items():
        out.extend(side_sections(side, data, verbose))
    if result.get("alignment"):
        out.append(_alignment(result["alignment"]))
    if result.get("contextual"):
        out.append(_contextual(result["contextual"]))
    for side, movement in (result.get("movement") or {}).items():
        out.append(_movement(side, movement))
    return [drop_empty_columns(section) for section in out]


def _alignment(alignment: dict) -> Section:
    title = "cross-lingual alignment (held-out dictionary words)"
    lexicon = alignment["lexicon"]
    if alignment["status"] != "ok":
        return Section(title, f"Not measured: {alignment['message']}.")
    rows = []
    for kind, space in alignment["spaces"].items():
        label = {"tgt": "decoder input", "out": "output projection"}.get(kind, kind)
        for name in ("trained", "initial", "shuffled"):
            scores = space.get(name)
            if not scores:
                continue
            rows.append(
                [
                    f"{label}, {name}",
                    *(
                        f"{scores['nn'][k]:.3f} / {scores['csls'][k]:.3f}"
                        for k in ("p_at_1", "p_at_5", "p_at_10")
                    ),
                ]
            )
        rows.append(
            [
                f"{label}, chance",
                *(f"{space['chance'][k]:.3f}" for k in ("p_at_1", "p_at_5", "p_at_10")),
            ]
        )
    verdicts = " ".join(
        f"{'Output projection' if f['space'] == 'out' else 'Decoder input'}: "
        f"{f['hits']} of {plural(f['n_test_words'], 'held-out word')} right at P@1 "
        f"({'above' if f['above_chance'] else 'not above'} chance, adjusted p = "
        f"{p_text(f['p_adjusted'])})."
        for f in alignment.get("findings", [])
    )
    return Section(
        title,
        f"{lexicon['name']}: {plural(lexicon['n_pairs'], 'dictionary pair')} in "
        "both vocabularies; the map is fitted on "
        f"{plural(lexicon['n_train_words'], 'source word')} and scored on "
        f"{lexicon['n_test_words']:,} others against the "
        "whole target vocabulary (nearest neighbour / CSLS). 'initial': the "
        "untrained embeddings; 'shuffled': translations permuted. " + verdicts,
        ["space", "P@1", "P@5", "P@10"],
        rows,
    )


def _contextual(contextual: dict) -> Section:
    summary = contextual["summary"]
    rows = []
    for word in contextual["words"]:
        nearest = word["nearest_contexts"][:1]
        farthest = word["farthest_contexts"][:1]
        rows.append(
            [
                word["word"],
                number(word["n_occurrences"]),
                number(word["self_similarity"])
                if word["self_similarity"] is not None
                else word["reason"] or "-",
                number(word["baseline"]),
                nearest[0]["sentence"] if nearest else "-",
                farthest[0]["sentence"] if farthest else "-",
            ]
        )
    return Section(
        "contextual states (encoder)",
        "Self-similarity: mean cosine of a word's encoder states across its "
        "training sentences; baseline: its states against random other tokens' "
        f"(all tokens average {summary['anisotropy']:.3f}). Self-similarity below "
        "1 means the state depends on the context.",
        [
            "word",
            "occurrences",
            "self-similarity",
            "baseline",
            "most typical",
            "least typical",
        ],
        rows,
    )


def _every(items: list, at_most: int) -> list:
    """At most ``at_most`` items, evenly spaced, always with the last one."""
    if len(items) <= at_most:
        return items
    step = -(-len(items) // (at_most - 1))
    return items[::step] + ([items[-1]] if (len(items) - 1) % step else [])


def _movement(side: str, movement: dict) -> Section:
    rows = [
        [
            str(e["epoch"]),
            number(e["step_mean"]),
            number(e["from_initial_mean"]),
            number(e["overlap_previous"]),
            number(e["overlap_final"]),
        ]
        for e in _every(movement["epochs"], 12)
    ]
    return Section(
        f"{SIDE_NAMES.get(side, side)}: movement per epoch",
        _settling_sentence(movement),
        ["epoch", "step", "from initial", "overlap previous", "overlap final"],
        rows,
    )


def _settling_sentence(movement: dict) -> str:
    """When the neighbour lists and the vectors settled, or that they had
    not by the last snapshot; the chance overlap where there is one."""
    k, last = movement["k"], movement["final_epoch"]
    stable = movement["neighbours_stable_epoch"]
    settled = movement["movement_settled_epoch"]
    step = f"{movement['settled_step']:.0%} of their length"
    lists = (
        f"Neighbour lists ({k} nearest) kept at least "
        f"{movement['stable_overlap']:.0%} of the final lists from epoch {stable} on"
        if stable is not None
        else f"Neighbour lists ({k} nearest) were still changing at epoch {last}"
    )
    steps = (
        f"the vectors moved less than {step} per epoch from epoch {settled} on"
        if settled is not None
        else f"the vectors still moved more than {step} per epoch at the end"
    )
    text = f"{lists}; {steps}."
    if movement["chance_overlap"] is not None:
        text += (
            f" Unrelated lists would overlap {number(movement['chance_overlap'], 3)}."
        )
    return text


def to_markdown(result: dict) -> str:
    checkpoint = result.get("checkpoint_line") or result["checkpoint"]
    source = f"Run `{result['run']}`, checkpoint `{checkpoint}`."
    return sections_markdown("Embedding analysis", source, sections(result))
