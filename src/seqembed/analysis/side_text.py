"""One side's analysis (``EmbeddingAnalysis.result_``) as sections for people.

``side_sections(side, data)`` returns, in this order, the sections that
apply: the verdicts, the most similar pairs, the topic groups, the
co-occurrence test, the chosen pairs, the statistics, the outlier candidates
and the movement from the initial vectors. Each is built by its own function
from its own part of the result.
"""

from __future__ import annotations

from seqembed.analysis.wording import SIDE_NAMES, Section, number, p_text, plural

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


def side_sections(side: str, data: dict, verbose: bool = True) -> list[Section]:
    name = SIDE_NAMES.get(side, side)
    parts = [
        verdict_section(name, data),
        pairs_section(name, data),
        groups_section(name, data.get("groups")),
        cooccurrence_section(name, data.get("cooccurrence")),
        chosen_section(name, data.get("chosen_pairs")),
        statistics_section(name, data["statistics"], verbose),
        outliers_section(name, data["outliers"]),
        movement_section(name, data.get("movement")),
    ]
    return [part for part in parts if part is not None]


def verdict_section(name: str, data: dict) -> Section:
    findings = data["findings"]
    tests = findings["tests"]
    above = [t for t in tests if t["above_chance"]]
    method = CORRECTION_NAMES[findings["correction"]]
    repeats = data["similar_pairs"]["shaped_null_repeats"]
    shaped = (
        f" A top pair that passes is tested again against {repeats} random "
        "tables with these vectors' mean and covariance: its chance level is "
        "their typical best pair and its p the share of them whose best pair is "
        "at least as similar (one test for all ranks, so not adjusted again)."
        if repeats
        else ""
    )
    rest = (
        " The rest are what vectors that learned nothing would also show."
        if len(above) < len(tests)
        else ""
    )
    return Section(
        f"{name}: what is above chance",
        f"{plural(data['n_words'], 'word')}, {plural(data['dim'], 'dimension')}. "
        f"{len(above)} of {plural(len(tests), 'test')} "
        f"{'is' if len(above) == 1 else 'are'} above chance at level "
        f"{findings['alpha']}. Each row shows the chance level and the p-value of "
        "the test that decides its verdict, p adjusted for testing them all "
        f"({method}).{shaped}{rest}" + _movement_sentence(data.get("movement")),
        ["figure", "value", "chance level", "p", "tested against", "verdict"],
        [
            [
                t["subject"],
                number(t["value"]),
                number(t.get("verdict_chance", t["chance"])),
                p_text(t.get("verdict_p", t["p_adjusted"])),
                t.get("verdict_null", ""),
                "above chance" if t["above_chance"] else "not above chance",
            ]
            for t in tests
        ],
    )


def pairs_section(name: str, data: dict) -> Section:
    pairs = data["similar_pairs"]
    tests = [t for t in data["findings"]["tests"] if t["figure"] == "similar_pairs"]
    shaped = bool(pairs["shaped_null_repeats"])
    if shaped:
        how = (
            f"'chance level' and 'p': the test that decides the verdict, against "
            f"{pairs['shaped_null_repeats']} random tables with these vectors' mean "
            "and covariance where the pair beats isotropic random vectors "
            "(their typical best pair; the share of them with a best pair this "
            "similar); 'isotropic': the typical k-th best cosine of random vectors "
            "of this dimension and its unadjusted p, for comparison."
        )
    else:
        how = (
            "'chance level' and 'p': the typical k-th best cosine of random "
            "vectors of this dimension, and the p-value adjusted for all tests "
            "(no shape-matched null: too few words per dimension to estimate a "
            "covariance, or switched off)."
        )
    stability = pairs.get("stability")
    return Section(
        f"{name}: most similar pairs",
        f"Among {plural(pairs['n_pairs'], 'pair')}. {how} 'before training': "
        "the same pair's cosine in the untrained vectors."
        + (_stability_sentence(stability) if stability else ""),
        [
            "#",
            "pair",
            "cosine",
            "before training",
            "chance level",
            "p",
            "verdict",
            *(["isotropic chance", "isotropic p"] if shaped else []),
            *(["neighbours in other epochs / seeds"] if stability else []),
        ],
        [
            [
                str(p["rank"]),
                f"{p['a']} - {p['b']}",
                number(p["cosine"]),
                number(p["initial_cosine"]),
                number(t.get("verdict_chance", t["chance"])),
                p_text(t.get("verdict_p", t["p_adjusted"])),
                "above chance" if t["above_chance"] else "not above chance",
                *([number(p["chance_cosine"]), p_text(p["p_value"])] if shaped else []),
                *([_pair_stability(p.get("stability"))] if stability else []),
            ]
            for p, t in zip(pairs["pairs"], tests)
        ],
    )


def _stability_sentence(stability: dict) -> str:
    compared = []
    if stability["epochs"]:
        compared.append(_epoch_span(stability["epochs"]))
    if stability["seed_runs"]:
        runs = plural(len(stability["seed_runs"]), "run")
        compared.append(f"{runs} with other seeds")
    if not compared:
        return ""
    return (
        " 'neighbours in other epochs / seeds': the share of "
        f"{' and of '.join(compared)} in which the two words are still among each "
        f"other's {stability['k']} nearest neighbours (random lists: "
        f"{number(stability['chance'], 2) if stability['chance'] is not None else '-'}"
        "); see docs/reading-neighbours.md."
    )


def _epoch_span(epochs: list[int]) -> str:
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    return f"epochs {epochs[0]}-{epochs[-1]}"


def _pair_stability(stability: dict | None) -> str:
    if not stability:
        return "-"
    shares = [
        f"{stability[key]:.0%} of {what}"
        for key, what in (("epochs", "epochs"), ("seeds", "seeds"))
        if stability[key] is not None
    ]
    return stability["label"] + (f" ({', '.join(shares)})" if shares else "")


def groups_section(name: str, groups: dict | None) -> Section | None:
    if not groups:
        return None
    matched = "frequency-matched " if groups["frequency_matched"] else ""
    return Section(
        f"{name}: topic groups",
        f"Mean cosine within each group, beside {matched}random word "
        f"sets of the same size ({plural(groups['n_permutations'], 'draw')}).",
        ["group", "words", "within", "between", "initial", "chance", "p"],
        [
            [
                g["name"],
                _group_words(g),
                number(g["within"]),
                number(g["between"]),
                number(g["initial_within"]),
                number(g["chance_within"]),
                p_text(g["p_value"]),
            ]
            for g in groups["groups"]
        ],
    )


def cooccurrence_section(name: str, co: dict | None) -> Section | None:
    if not co or co["difference"] is None:
        return None
    matched = "frequency-matched " if co["frequency_matched"] else ""
    return Section(
        f"{name}: co-occurrence",
        f"{plural(co['n_cooccurring'], 'pair')} share a training sentence, "
        f"{co['n_never']:,} never do; compared {co['n_compared'][0]:,} "
        f"against {plural(co['n_compared'][1], f'{matched}never-co-occurring pair')}"
        " (one-sided Mann-Whitney U).",
        ["", "trained", "initial"],
        [
            ["co-occurring mean", number(co["cooccurring_mean"]), ""],
            ["never mean", number(co["never_mean"]), ""],
            [
                "difference",
                number(co["difference"]),
                number(co["initial_difference"]),
            ],
            ["effect size (Cohen's d)", number(co["effect_size"]), ""],
            ["p", p_text(co["p_value"]), p_text(co["initial_p_value"])],
        ],
    )


def chosen_section(name: str, chosen: list[dict] | None) -> Section | None:
    if not chosen:
        return None
    return Section(
        f"{name}: chosen pairs",
        "p: how often two random vectors are at least this similar or "
        "dissimilar (two-sided).",
        ["pair", "cosine", "initial", "sentences with both", "p"],
        [
            [
                f"{p['a']} - {p['b']}",
                number(p["cosine"]),
                number(p["initial_cosine"]),
                number(p["cooccurrences"]),
                p_text(p["p_value"]),
            ]
            if not p["missing"]
            else [f"{p['a']} - {p['b']}", "not in vocabulary", "", "", ""]
            for p in chosen
        ],
    )


def statistics_section(name: str, stats: dict, verbose: bool) -> Section:
    rows = []
    labels = (("trained", "overall"), ("initial", "initial"), ("chance", "chance"))
    for label, key in labels:
        s = stats[key]
        if s is None:
            continue
        rows.append(
            [
                label,
                number(s["norm_mean"]),
                number(s["norm_std"]),
                number(s["cosine_mean"]),
                number(s["cosine_std"]),
                f"[{number(s['cosine_min'])}, {number(s['cosine_max'])}]",
            ]
        )
    for band in stats["by_frequency"] if verbose else []:
        rows.append(
            [
                f"{_band(band['band'])} ({plural(band['n_words'], 'word')})",
                number(band["norm_mean"]),
                number(band["norm_std"]),
                number(band["cosine_mean"]),
                number(band["cosine_std"]),
                "",
            ]
        )
    nf = stats["norm_frequency"]
    return Section(
        f"{name}: statistics",
        "'chance': norm-matched random vectors (expected range over this many "
        "pairs). Norm against training frequency: Spearman "
        f"{number(nf['spearman'])} (initial {number(nf['initial_spearman'])}), "
        f"p = {p_text(nf['p_value'])}.",
        ["", "norm mean", "norm std", "cosine mean", "cosine std", "range"],
        rows,
    )


def outliers_section(name: str, outliers: dict) -> Section:
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
    return Section(
        f"{name}: outlier candidates",
        "Candidates, not findings: 'chance' is the rate the same rule flags "
        "in norm-matched random vectors. The most extreme norm, "
        f"{largest['word']}, has modified z {largest['score']:.2f}; the most "
        f"extreme of random tables typically {largest['chance_score']:.2f} "
        f"(p = {p_text(largest['p_value'])}).",
        ["rule", "flagged", "chance", "initial", "candidates (norm, frequency)"],
        rows,
    )


def movement_section(name: str, movement: dict | None) -> Section | None:
    if not movement:
        return None

    def listing(words):
        return ", ".join(f"{m['word']} {m['relative_change']:.3g}" for m in words[:5])

    return Section(
        f"{name}: movement from the initial vectors",
        "Relative change |trained - initial| / |initial|. Correlation of "
        "initial and trained cosines of the same pairs: "
        f"{number(movement['similarity_correlation'])} (near 1: the trained "
        "similarities are mostly the random initial ones).",
        ["", "relative change"],
        [
            ["mean", number(movement["relative_change_mean"])],
            ["median", number(movement["relative_change_median"])],
            ["moved most", listing(movement["most_moved"])],
            ["moved least", listing(movement["least_moved"])],
        ],
    )


def _band(band: str) -> str:
    """ "1" -> "seen once", "2-4" -> "seen 2-4 times", "1000+" likewise."""
    low, _, high = band.partition("-")
    if low == high == "1":
        return "seen once"
    low = f"{int(low.rstrip('+')):,}" + ("+" if low.endswith("+") else "")
    return f"seen {low}{'-' + f'{int(high):,}' if high else ''} times"


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
