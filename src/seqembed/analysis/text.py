"""The analysis result as words and tables, for people.

``sections(result)`` turns the JSON result of ``run_analysis.analyze_run``
into titled tables with a plain sentence each; ``to_markdown`` writes them as
Markdown and the CLI draws the same sections with rich. One source of the
wording, two renderings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Section:
    title: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _f(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def _p(value) -> str:
    if value is None:
        return "-"
    return "< 1e-300" if value == 0 else f"{value:.3g}"


SIDE_NAMES = {"src": "source (encoder input)", "tgt": "target (decoder input)"}


def sections(result: dict, verbose: bool = True) -> list[Section]:
    out = []
    for side, data in result["sides"].items():
        out.extend(_side_sections(side, data, verbose))
    if result.get("alignment"):
        out.append(_alignment(result["alignment"]))
    if result.get("contextual"):
        out.append(_contextual(result["contextual"]))
    for side, movement in (result.get("movement") or {}).items():
        out.append(_movement(side, movement))
    return out


def _side_sections(side: str, data: dict, verbose: bool) -> list[Section]:
    name = SIDE_NAMES.get(side, side)
    findings = data["findings"]
    tests = findings["tests"]
    above = [t for t in tests if t["above_chance"]]
    method = {"holm": "Holm", "bh": "Benjamini-Hochberg"}[findings["correction"]]
    verdict = Section(
        f"{name}: what is above chance",
        f"{data['n_words']:,} words, {data['dim']} dimensions. "
        f"{len(above)} of {len(tests)} tests are above chance at level "
        f"{findings['alpha']} after {method} correction for testing them all; "
        "the rest are what vectors that learned nothing would also show."
        + _movement_sentence(data.get("movement")),
        ["figure", "value", "chance", "adjusted p", "verdict"],
        [
            [
                t["subject"],
                _f(t["value"]),
                _f(t["chance"])
                + (
                    f" / {_f(t['shaped_chance'])}"
                    if t.get("shaped_chance") is not None
                    else ""
                ),
                _p(t["p_adjusted"]),
                "above chance" if t["above_chance"] else "not above chance",
            ]
            for t in tests
        ],
    )
    out = [verdict]
    pairs = data["similar_pairs"]
    out.append(
        Section(
            f"{name}: most similar pairs",
            f"Among {pairs['n_pairs']:,} pairs. 'chance': the typical k-th best "
            "cosine of random vectors of this dimension; "
            + (
                f"'shaped': the median k-th best of {pairs['shaped_null_repeats']} "
                "random tables with these vectors' mean and covariance (a pair is "
                "above chance only if it also beats the best pair of all of them, "
                f"{_f(pairs.get('shaped_threshold'))}); "
                if pairs["shaped_null_repeats"]
                else "'shaped': not computed (too few words per dimension to "
                "estimate a covariance, or too many words); "
            )
            + "'initial': the same pair before training.",
            ["#", "pair", "cosine", "initial", "chance", "shaped", "p"],
            [
                [
                    str(p["rank"]),
                    f"{p['a']} - {p['b']}",
                    _f(p["cosine"]),
                    _f(p["initial_cosine"]),
                    _f(p["chance_cosine"]),
                    _f(p["shaped_chance_cosine"]),
                    _p(p["p_value"]),
                ]
                for p in pairs["pairs"]
            ],
        )
    )
    if data.get("groups"):
        groups = data["groups"]
        matched = "frequency-matched " if groups["frequency_matched"] else ""
        out.append(
            Section(
                f"{name}: topic groups",
                f"Mean cosine within each group, beside {matched}random word "
                f"sets of the same size ({groups['n_permutations']:,} draws).",
                ["group", "words", "within", "between", "initial", "chance", "p"],
                [
                    [
                        g["name"],
                        _group_words(g),
                        _f(g["within"]),
                        _f(g["between"]),
                        _f(g["initial_within"]),
                        _f(g["chance_within"]),
                        _p(g["p_value"]),
                    ]
                    for g in groups["groups"]
                ],
            )
        )
    co = data.get("cooccurrence")
    if co and co["difference"] is not None:
        matched = "frequency-matched " if co["frequency_matched"] else ""
        out.append(
            Section(
                f"{name}: co-occurrence",
                f"{co['n_cooccurring']:,} pairs share a training sentence, "
                f"{co['n_never']:,} never do; compared {co['n_compared'][0]:,} "
                f"against {co['n_compared'][1]:,} {matched}never-co-occurring "
                "pairs (one-sided Mann-Whitney U).",
                ["", "trained", "initial"],
                [
                    ["co-occurring mean", _f(co["cooccurring_mean"]), ""],
                    ["never mean", _f(co["never_mean"]), ""],
                    [
                        "difference",
                        _f(co["difference"]),
                        _f(co["initial_difference"]),
                    ],
                    ["effect size (Cohen's d)", _f(co["effect_size"]), ""],
                    ["p", _p(co["p_value"]), _p(co["initial_p_value"])],
                ],
            )
        )
    if data.get("chosen_pairs"):
        out.append(
            Section(
                f"{name}: chosen pairs",
                "p: how often two random vectors are at least this similar or "
                "dissimilar (two-sided).",
                ["pair", "cosine", "initial", "sentences with both", "p"],
                [
                    [
                        f"{p['a']} - {p['b']}",
                        _f(p["cosine"]),
                        _f(p["initial_cosine"]),
                        _f(p["cooccurrences"]),
                        _p(p["p_value"]),
                    ]
                    if not p["missing"]
                    else [f"{p['a']} - {p['b']}", "not in vocabulary", "", "", ""]
                    for p in data["chosen_pairs"]
                ],
            )
        )
    stats = data["statistics"]
    rows = []
    labels = (("trained", "overall"), ("initial", "initial"), ("chance", "chance"))
    for label, key in labels:
        s = stats[key]
        if s is None:
            continue
        rows.append(
            [
                label,
                _f(s["norm_mean"]),
                _f(s["norm_std"]),
                _f(s["cosine_mean"]),
                _f(s["cosine_std"]),
                f"[{_f(s['cosine_min'])}, {_f(s['cosine_max'])}]",
            ]
        )
    for band in stats["by_frequency"] if verbose else []:
        rows.append(
            [
                f"freq {band['band']} ({band['n_words']:,} words)",
                _f(band["norm_mean"]),
                _f(band["norm_std"]),
                _f(band["cosine_mean"]),
                _f(band["cosine_std"]),
                "",
            ]
        )
    nf = stats["norm_frequency"]
    out.append(
        Section(
            f"{name}: statistics",
            "'chance': norm-matched random vectors (expected range over this many "
            "pairs). Norm against training frequency: Spearman "
            f"{_f(nf['spearman'])} (initial {_f(nf['initial_spearman'])}), "
            f"p = {_p(nf['p_value'])}.",
            ["", "norm mean", "norm std", "cosine mean", "cosine std", "range"],
            rows,
        )
    )
    outliers = data["outliers"]
    rows = []
    for key in ("std_rule", "mad_rule"):
        rule = outliers[key]
        words = ", ".join(
            f"{c['word']} ({c['norm']:.3g}, freq {c['freq']})"
            for c in rule["candidates"][:10]
        )
        more = len(rule["candidates"]) - 10
        rows.append(
            [
                rule["rule"],
                f"{len(rule['candidates'])} ({rule['rate']:.1%})",
                f"{rule['chance_rate']:.1%}",
                "-" if rule["initial_rate"] is None else f"{rule['initial_rate']:.1%}",
                words + (f" and {more} more" if more > 0 else ""),
            ]
        )
    largest = outliers["mad_rule"]["largest"]
    out.append(
        Section(
            f"{name}: outlier candidates",
            "Candidates, not findings: 'chance' is the rate the same rule flags "
            "in norm-matched random vectors. The most extreme norm, "
            f"{largest['word']}, has modified z {largest['score']:.2f}; the most "
            f"extreme of random tables typically {largest['chance_score']:.2f} "
            f"(p = {_p(largest['p_value'])}).",
            ["rule", "flagged", "chance", "initial", "candidates (norm, frequency)"],
            rows,
        )
    )
    movement = data.get("movement")
    if movement:
        out.append(
            Section(
                f"{name}: movement from the initial vectors",
                "Relative change |trained - initial| / |initial|. Correlation of "
                "initial and trained cosines of the same pairs: "
                f"{_f(movement['similarity_correlation'])} (near 1: the trained "
                "similarities are mostly the random initial ones).",
                ["", "relative change"],
                [
                    ["mean", _f(movement["relative_change_mean"])],
                    ["median", _f(movement["relative_change_median"])],
                    [
                        "moved most",
                        ", ".join(
                            f"{m['word']} {m['relative_change']:.3g}"
                            for m in movement["most_moved"][:5]
                        ),
                    ],
                    [
                        "moved least",
                        ", ".join(
                            f"{m['word']} {m['relative_change']:.3g}"
                            for m in movement["least_moved"][:5]
                        ),
                    ],
                ],
            )
        )
    return out


def _movement_sentence(movement: dict | None) -> str:
    if not movement:
        return ""
    r = movement["similarity_correlation"]
    text = (
        f" Training moved the vectors {movement['relative_change_mean']:.1%} of "
        "their length from their random initial values on average"
    )
    if r is None:
        return text + "."
    text += f"; pair cosines correlate {r:.3f} with their values before training"
    if r > 0.9:
        text += ", so most of the similarity structure was there before training"
    return text + "."


def _group_words(group: dict) -> str:
    words = " ".join(group["words"])
    if group["missing"]:
        words += f" (missing: {' '.join(group['missing'])})"
    return words


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
        f"{f['hits']} of {f['n_test_words']} held-out words right at P@1 "
        f"({'above' if f['above_chance'] else 'not above'} chance, adjusted p = "
        f"{_p(f['p_adjusted'])})."
        for f in alignment.get("findings", [])
    )
    return Section(
        title,
        f"{lexicon['name']}: {lexicon['n_pairs']:,} dictionary pairs in both "
        f"vocabularies; the map is fitted on {lexicon['n_train_words']:,} source "
        f"words and scored on {lexicon['n_test_words']:,} others against the "
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
                _f(word["n_occurrences"]),
                _f(word["self_similarity"])
                if word["self_similarity"] is not None
                else word["reason"] or "-",
                _f(word["baseline"]),
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
            _f(e["step_mean"]),
            _f(e["from_initial_mean"]),
            _f(e["overlap_previous"]),
            _f(e["overlap_final"]),
        ]
        for e in _every(movement["epochs"], 12)
    ]
    stable = movement["neighbours_stable_epoch"]
    settled = movement["movement_settled_epoch"]
    return Section(
        f"{SIDE_NAMES.get(side, side)}: movement per epoch",
        f"Neighbour lists ({movement['k']} nearest) stopped changing at epoch "
        f"{'-' if stable is None else stable}; steps fell below "
        f"{movement['settled_step']:.0%} at epoch "
        f"{'-' if settled is None else settled}. Unrelated lists would overlap "
        f"{_f(movement['chance_overlap'], 3)}.",
        ["epoch", "step", "from initial", "overlap previous", "overlap final"],
        rows,
    )


def to_markdown(result: dict) -> str:
    source = f"Run `{result['run']}`, checkpoint `{result['checkpoint']}`."
    return sections_markdown("Embedding analysis", source, sections(result))


def sections_markdown(title: str, source: str, parts: list[Section]) -> str:
    lines = [f"# {title}", "", source, ""]
    for section in parts:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        if section.columns:
            lines.append("| " + " | ".join(section.columns) + " |")
            lines.append("|" + "---|" * len(section.columns))
            for row in section.rows:
                cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)
