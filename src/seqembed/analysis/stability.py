"""Stability across training seeds: which findings survive a different seed?

Given the analyses of runs that differ only in their seed, this reports, per
side, the overlap of each word's 10 nearest neighbours across runs (with the
overlap unrelated lists would have), and every figure as mean +- sd across
runs. A relation is *robust* only if it is above chance in every run. The
result is plain JSON::

    format, version     "seqembed-stability", 1
    runs                the run directories
    sides               {side: SIDE}
    alignment           [{space, retrieval, p_at_1: {values, mean, sd}}]

    SIDE = {
      n_common_words, k,
      neighbour_overlap: {mean, chance, most_stable: [{word, overlap}],
                          least_stable: [{word, overlap}]},
      shared_top_pairs: [{a, b, n_runs}]     pairs in the top-N of 2+ runs
      shared_top_pairs_chance                how many random top-N lists share
      figures: [{figure, subject, values, mean, sd, above_chance_in, n_runs,
                 robust}]
    }
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np

from seqembed.analysis.similarity import neighbour_ids
from seqembed.analysis.wording import Section, plural, sections_markdown
from seqembed.files import write_json_and_markdown
from seqembed.nmt.checkpoint import load_checkpoint, load_tables, resolve_checkpoint

FORMAT = "seqembed-stability"
VERSION = 1


def neighbour_overlap(tables: list, k: int = 10) -> tuple[list[str], np.ndarray]:
    """Mean over run pairs of |N_a(w) & N_b(w)| / k for each common word."""
    common = [t for t in tables[0].tokens if all(t in other for other in tables[1:])]
    neighbour_sets = []
    for table in tables:
        sub = table.select(common)
        ids = neighbour_ids(sub.unit_vectors(), k)
        neighbour_sets.append([set(row.tolist()) for row in ids])
    k = min(k, len(common) - 1)
    if k < 1:  # one common word or none: no neighbours to compare
        return common, np.zeros(len(common))
    overlaps = np.zeros(len(common))
    run_pairs = list(itertools.combinations(range(len(tables)), 2))
    for a, b in run_pairs:
        overlaps += [
            len(x & y) / k for x, y in zip(neighbour_sets[a], neighbour_sets[b])
        ]
    return common, overlaps / len(run_pairs)


def stability_report(runs: list[Path], results: list[dict], settings) -> dict:
    report = {
        "format": FORMAT,
        "version": VERSION,
        "runs": [str(r) for r in runs],
        "sides": {},
        "alignment": _alignment_spread(results),
    }
    states = [
        load_checkpoint(resolve_checkpoint(run, settings.checkpoint)) for run in runs
    ]
    for side in settings.sides:
        tables = [
            load_tables(state)[side].words(
                settings.min_freq,
                settings.include_specials,
                list(settings.words) if settings.words else None,
            )
            for state in states
        ]
        common, overlaps = neighbour_overlap(tables)
        k = min(10, len(common) - 1)
        order = np.argsort(-overlaps, kind="stable")
        listing = [{"word": common[i], "overlap": float(overlaps[i])} for i in order]
        report["sides"][side] = {
            "n_common_words": len(common),
            "k": k,
            "neighbour_overlap": {
                "mean": float(overlaps.mean()) if k >= 1 else None,
                "chance": k / (len(common) - 1) if k >= 1 else None,
                "most_stable": listing[:10],
                "least_stable": listing[::-1][:10],
            },
            "shared_top_pairs": _shared_top_pairs([r["sides"][side] for r in results]),
            "shared_top_pairs_chance": _shared_chance(
                [r["sides"][side] for r in results]
            ),
            "figures": _figures([r["sides"][side] for r in results]),
        }
    return report


def _shared_top_pairs(sides: list[dict]) -> list[dict]:
    counts = Counter(
        tuple(sorted((p["a"], p["b"])))
        for side in sides
        for p in side["similar_pairs"]["pairs"]
    )
    return [
        {"a": a, "b": b, "n_runs": n} for (a, b), n in counts.most_common() if n >= 2
    ]


def _shared_chance(sides: list[dict]) -> float:
    """Expected number of pairs in the top-N of two or more runs if each run's
    top-N were a random draw from the same M pairs."""
    n_pairs = sides[0]["similar_pairs"]["n_pairs"]
    top = len(sides[0]["similar_pairs"]["pairs"])
    if not n_pairs:
        return 0.0
    q, runs = top / n_pairs, len(sides)
    in_two_or_more = 1 - (1 - q) ** runs - runs * q * (1 - q) ** (runs - 1)
    return float(n_pairs * in_two_or_more)


def _figures(sides: list[dict]) -> list[dict]:
    """Every test except the top pairs (their words differ from run to run),
    matched by subject across runs."""
    by_subject: dict[str, list[dict]] = {}
    for side in sides:
        for test in side["findings"]["tests"]:
            if test["figure"] != "similar_pairs":
                by_subject.setdefault(test["subject"], []).append(test)
    figures = []
    for subject, tests in by_subject.items():
        values = np.array([t["value"] for t in tests], dtype=np.float64)
        above = sum(t["above_chance"] for t in tests)
        figures.append(
            {
                "figure": tests[0]["figure"],
                "subject": subject,
                "values": values.tolist(),
                "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "above_chance_in": int(above),
                "n_runs": len(sides),
                "robust": bool(above == len(sides) == len(tests)),
            }
        )
    return figures


def _alignment_spread(results: list[dict]) -> list[dict]:
    rows = []
    reports = [r.get("alignment") for r in results]
    if not all(r and r["status"] == "ok" for r in reports):
        return rows
    # Only the spaces every run has (an old checkpoint may lack "out").
    spaces = [s for s in reports[0]["spaces"] if all(s in r["spaces"] for r in reports)]
    for space in spaces:
        for retrieval in ("nn", "csls"):
            values = [
                r["spaces"][space]["trained"][retrieval]["p_at_1"] for r in reports
            ]
            rows.append(
                {
                    "space": space,
                    "retrieval": retrieval,
                    "p_at_1": {
                        "values": values,
                        "mean": float(np.mean(values)),
                        "sd": float(np.std(values, ddof=1)),
                    },
                }
            )
    return rows


def stability_sections(report: dict) -> list[Section]:
    n_runs = len(report["runs"])
    out = []
    for side, data in report["sides"].items():
        out += [
            _overlap_section(side, data, n_runs),
            _shared_pairs_section(side, data, n_runs),
        ]
    if report["alignment"]:
        out.append(_alignment_section(report["alignment"]))
    return out


def _overlap_section(side: str, data: dict, n_runs: int) -> Section:
    overlap = data["neighbour_overlap"]
    words = ", ".join(
        f"{w['word']} {w['overlap']:.2f}" for w in overlap["most_stable"][:5]
    )
    unstable = ", ".join(
        f"{w['word']} {w['overlap']:.2f}" for w in overlap["least_stable"][:5]
    )
    return Section(
        f"{side}: stability across {n_runs} seeds",
        f"{plural(data['n_common_words'], 'word')}. Their {data['k']} nearest "
        f"neighbours overlap {_fmt(overlap['mean'])} on average between "
        f"runs (unrelated lists: {_fmt(overlap['chance'])}). Most stable: "
        f"{words}. Least stable: {unstable}. A relation is robust only "
        "if it is above chance in every run.",
        ["figure", "mean", "sd", "above chance in", "robust"],
        [
            [
                f["subject"],
                f"{f['mean']:.4f}",
                f"{f['sd']:.4f}",
                f"{f['above_chance_in']}/{f['n_runs']}",
                "yes" if f["robust"] else "no",
            ]
            for f in data["figures"]
        ],
    )


def _shared_pairs_section(side: str, data: dict, n_runs: int) -> Section:
    shared = data["shared_top_pairs"]
    return Section(
        f"{side}: top pairs found in more than one run",
        (
            "None: the most similar pairs change completely with the seed. "
            if not shared
            else ""
        )
        + "Random top lists would share "
        f"{data['shared_top_pairs_chance']:.2f} pairs on average.",
        ["pair", "runs"] if shared else [],
        [[f"{p['a']} - {p['b']}", f"{p['n_runs']}/{n_runs}"] for p in shared],
    )


def _alignment_section(alignment: list[dict]) -> Section:
    return Section(
        "cross-lingual alignment across seeds (held-out P@1)",
        "",
        ["space", "retrieval", "mean", "sd"],
        [
            [
                a["space"],
                a["retrieval"],
                f"{a['p_at_1']['mean']:.3f}",
                f"{a['p_at_1']['sd']:.3f}",
            ]
            for a in alignment
        ],
    )


def write_stability(report: dict, folder: Path) -> tuple[Path, Path]:
    """``stability.json`` and ``stability.md`` in ``folder``, atomically."""
    markdown = stability_markdown(report)
    return write_json_and_markdown(folder, "stability", report, markdown)


def stability_markdown(report: dict) -> str:
    return sections_markdown(
        "Stability across seeds", ", ".join(report["runs"]), stability_sections(report)
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
