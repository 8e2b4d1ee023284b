/* seqembed report: draws the training curve and the embedding map from the
   JSON block #report-data (written by seqembed.report), and wires the map's
   side switch, search box and neighbour panel. Positions and neighbours are
   precomputed; this script only draws and looks things up. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const fontFamily = getComputedStyle(document.body).fontFamily;
  const plotConfig = { displaylogo: false, responsive: true };
  const MAX_LABELS = 60; // labels drawn at most, as many as fit without overlap
  const LABEL_SIZE = 12; // px
  const SIDE_NAMES = { src: "source (Chinese)", tgt: "target (English)" };

  function withFont(layout) {
    return Object.assign({}, layout, { font: { family: fontFamily } });
  }

  // Plotly reads <b>, <br> and entities in text: words must not add any.
  function esc(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
  }

  const curve = document.getElementById("curve");
  if (curve && data.curve) {
    Plotly.newPlot(curve, data.curve.data, withFont(data.curve.layout), plotConfig);
  }

  data.attention.forEach(function (figure, i) {
    const div = document.getElementById("attention-" + i);
    if (div) Plotly.newPlot(div, figure.data, withFont(figure.layout), plotConfig);
  });

  const mapDiv = document.getElementById("map");
  const sides = Object.keys(data.map);
  if (!mapDiv || sides.length === 0) return;

  // Traces: one per side (only the current one visible), the two rings of a
  // found word and its neighbours, and the labels.
  const FOUND = sides.length;
  const NEAR = sides.length + 1;
  const LABELS = sides.length + 2;
  const RING = { found: [22, "#d62728", 3], near: [14, "#ff7f0e", 2] };
  const indexes = {};
  for (const side of sides) {
    indexes[side] = new Map(data.map[side].words.map((w, i) => [w, i]));
  }
  let current = sides[0];

  // "stable: 8 of 10 kept in epochs 3-7, 7 of 10 across 2 seeds" and the
  // chance level, or null where nothing was compared (analysis.trust).
  function stabilityText(m, i) {
    const s = m.stability ? m.stability[i] : null;
    const summary = m.stability_summary;
    if (!s || !summary || s[2] === "not measured") return null;
    const k = summary.k;
    const parts = [];
    if (s[0] !== null) {
      const e = summary.epochs;
      const span = e.length > 1 ? "epochs " + e[0] + "-" + e[e.length - 1] : "epoch " + e[0];
      parts.push(Math.round(s[0] * k) + " of " + k + " kept in " + span);
    }
    if (s[1] !== null) {
      const n = summary.seed_runs.length;
      parts.push(Math.round(s[1] * k) + " of " + k + " across " + n + (n === 1 ? " other seed" : " other seeds"));
    }
    const chance = summary.chance === null ? "" :
      "; random lists: " + (summary.chance * k).toFixed(1) + " of " + k;
    return { label: s[2], text: s[2] + ": " + parts.join(", ") + chance };
  }

  function hoverText(m, i) {
    const lines = [
      "<b>" + esc(m.words[i]) + "</b>   frequency " + m.freqs[i],
      "nearest neighbours (cosine):",
    ];
    m.neighbours[i].forEach(function (pair, rank) {
      lines.push(rank + 1 + ". " + esc(pair[0]) + "  " + pair[1].toFixed(3));
    });
    const stability = stabilityText(m, i);
    if (stability) lines.push("<i>" + esc(stability.text) + "</i>");
    return lines.join("<br>");
  }

  function sideTrace(side) {
    const m = data.map[side];
    return {
      type: "scatter",
      mode: "markers",
      name: SIDE_NAMES[side] || side,
      visible: side === current,
      x: m.x,
      y: m.y,
      hovertext: m.words.map((w, i) => hoverText(m, i)),
      hoverinfo: "text",
      marker: {
        size: 7,
        opacity: 0.85,
        color: m.freqs.map((f) => Math.log10(Math.max(f, 1))),
        colorscale: "Viridis",
        showscale: true,
        colorbar: frequencyBar(m),
      },
    };
  }

  // Ticks at 1, 10, 100, ... (the colour is log10 of the frequency), the
  // title along the bar with room of its own.
  function frequencyBar(m) {
    const top = Math.max(1, Math.ceil(Math.log10(Math.max(...m.freqs, 1))));
    const values = [];
    for (let p = 0; p <= top; p++) values.push(p);
    return {
      title: { text: "training frequency", side: "right" },
      tickvals: values,
      ticktext: values.map((p) => Math.pow(10, p).toLocaleString("en")),
      thickness: 14,
      len: 0.9,
      xpad: 8,
    };
  }

  // Rings with labels below, so a found word and its neighbours are named
  // even where the map does not label them.
  function overlay([size, color, width]) {
    return {
      type: "scatter",
      mode: "markers",
      x: [],
      y: [],
      hoverinfo: "skip",
      marker: { size: size, color: "rgba(0,0,0,0)", line: { color: color, width: width } },
    };
  }

  // The labels of the current view, all in one trace of their own, rebuilt
  // whole by chooseLabels: plotly keeps no text element for a point whose
  // text was "" and does not draw one restyled in later. Invisible markers
  // of the points' sizes keep each label clear of its point or ring.
  function labelTrace() {
    return {
      type: "scatter",
      mode: "markers+text",
      x: [],
      y: [],
      text: [],
      textposition: [],
      textfont: { size: LABEL_SIZE, color: [] },
      marker: { size: [], color: "rgba(0,0,0,0)" },
      hoverinfo: "skip",
    };
  }

  const traces = sides.map(sideTrace);
  traces.push(overlay(RING.found), overlay(RING.near), labelTrace());
  const MARGIN = { l: 10, r: 10, t: 24, b: 10 };
  const layout = withFont({
    height: fitHeight(current),
    margin: MARGIN,
    hovermode: "closest",
    showlegend: false,
    xaxis: { visible: false, range: padded(data.map[current].x) },
    // One unit is as long across as up (distances mean something), and the
    // plot is as high as the points need, so they fill the map.
    yaxis: { visible: false, scaleanchor: "x", constrain: "domain",
             range: padded(data.map[current].y) },
    hoverlabel: { align: "left" },
  });
  Plotly.newPlot(mapDiv, traces, layout, plotConfig).then(() => chooseLabels(current));

  function padded(values) {
    const low = Math.min(...values), high = Math.max(...values);
    const pad = 0.04 * (high - low || 1);
    return [low - pad, high + pad];
  }

  // The height at which the points, drawn one unit across as long as up,
  // fill the width (colour bar and margins aside), within 380-820 px.
  function mapHeight(side) {
    const m = data.map[side];
    const width = Math.max(300, mapDiv.clientWidth - 110);
    const ratio = span(m.y) / span(m.x);
    const height = Math.round(width * ratio + MARGIN.t + MARGIN.b);
    return Math.min(820, Math.max(380, height));
  }

  // The div takes the height too: plotly's responsive resize measures the
  // div, and a div of min-height would shrink the map to it.
  function fitHeight(side) {
    const height = mapHeight(side);
    mapDiv.style.height = height + "px";
    return height;
  }

  // ------------------------------------------------------------ labels

  const measure = document.createElement("canvas").getContext("2d");

  // Labels in the order the report chose (content words first, then by
  // frequency), each only where its box overlaps no label placed before:
  // as many as fit, never one over another. Again after every zoom.
  let focus = null; // {side, i, near: [j, ...]} while a word is ringed

  function chooseLabels(side) {
    const m = data.map[side];
    const xa = mapDiv._fullLayout.xaxis, ya = mapDiv._fullLayout.yaxis;
    const [x0, x1] = xa.range, [y0, y1] = ya.range;
    measure.font = LABEL_SIZE + "px " + fontFamily;
    const boxes = [];
    // The box a label of point i would take, or null where it would leave
    // the plot or cover a label placed before. "top center" labels sit above
    // their marker, the rings' "bottom center" ones below (gap: the ring).
    function place(i, below) {
      if (m.x[i] < x0 || m.x[i] > x1 || m.y[i] < Math.min(y0, y1) || m.y[i] > Math.max(y0, y1)) return false;
      const px = xa.l2p(m.x[i]), py = ya.l2p(m.y[i]);
      // The font's ascent and descent (Noto Sans SC: 1.16 + 0.29 em) and a
      // little air: the box the browser draws, or a bit more.
      const w = measure.measureText(m.words[i]).width + 4;
      const h = Math.ceil(LABEL_SIZE * 1.5) + 2;
      const box = below ? [px - w / 2, py + below, px + w / 2, py + below + h]
        : [px - w / 2, py - 5 - h, px + w / 2, py - 5];
      // Inside the plot: plotly clips text at its edges.
      if (box[0] < 0 || box[2] > xa._length || box[1] < 0 || box[3] > ya._length) return false;
      if (boxes.some((b) => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3])) return false;
      boxes.push(box);
      return true;
    }
    const labels = { x: [], y: [], text: [], position: [], color: [], size: [] };
    function add(i, ring) {
      labels.x.push(m.x[i]);
      labels.y.push(m.y[i]);
      labels.text.push(esc(m.words[i]));
      labels.position.push(ring ? "bottom center" : "top center");
      labels.color.push(ring ? ring[1] : "#333");
      labels.size.push(ring ? ring[0] : 7);
    }
    // A ringed word and its neighbours first: they are what was asked for.
    const ringed = focus && focus.side === side ? focus : null;
    if (ringed) {
      if (place(ringed.i, 13)) add(ringed.i, RING.found);
      for (const j of ringed.near) if (place(j, 9)) add(j, RING.near);
    }
    const skip = new Set(ringed ? [ringed.i, ...ringed.near] : []);
    let labelled = 0;
    for (const i of m.label_order) {
      if (labelled >= MAX_LABELS) break;
      if (skip.has(i) || !place(i, 0)) continue;
      add(i, null);
      labelled += 1;
    }
    m.labelled = labelled;
    Plotly.restyle(
      mapDiv,
      {
        x: [labels.x],
        y: [labels.y],
        text: [labels.text],
        textposition: [labels.position],
        "textfont.color": [labels.color],
        "marker.size": [labels.size],
      },
      [LABELS],
    );
    describeSide(side);
  }

  // ------------------------------------------------------------ panel

  const info = document.getElementById("word-info");
  const status = document.getElementById("search-status");
  const caption = document.getElementById("map-caption");

  function element(tag, text, className) {
    const node = document.createElement(tag);
    node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function showWord(side, i) {
    const m = data.map[side];
    const list = document.createElement("ol");
    for (const [word, cosine] of m.neighbours[i]) {
      const onMap = indexes[side].has(word);
      list.appendChild(
        element("li", word + "  " + cosine.toFixed(3) + (onMap ? "" : " (not on the map)"),
          onMap ? "" : "off-map"),
      );
    }
    const parts = [
      element("h3", m.words[i]),
      element("p", "frequency " + m.freqs[i] + " · " + (SIDE_NAMES[side] || side)),
      element("p", m.neighbours[i].length + " nearest neighbours (cosine):"),
      list,
    ];
    const stability = stabilityText(m, i);
    if (stability) {
      const line = element("p", stability.text, "stability " + stability.label.replace(/ /g, "-"));
      line.id = "word-stability";
      parts.push(line);
    }
    info.replaceChildren(...parts);
    info.dataset.word = m.words[i];
  }

  function describeSide(side) {
    const m = data.map[side];
    const shown = m.words.length;
    const labelled = m.labelled === undefined ? 0 : m.labelled;
    caption.textContent =
      (shown < m.n_words
        ? "The " + shown.toLocaleString() + " most frequent of " + m.n_words.toLocaleString()
        : "All " + shown.toLocaleString()) +
      " " + (SIDE_NAMES[side] || side) + " words, placed by " + m.method +
      ". Colour: training frequency. Labels: " + labelled +
      (labelled === 1 ? " word" : " words") +
      ", the most frequent content words first, as many as fit without overlapping" +
      " (zoom in for more). Neighbours are searched among all " +
      m.n_words.toLocaleString() + " words, by cosine in the full space" +
      (m.stability_summary ? "; below each list, whether it stays the same in " +
        "earlier epochs and other seeds (docs/reading-neighbours.md)." : ".");
    const options = document.getElementById("search-words");
    options.replaceChildren(...m.words.map((w) => {
      const option = document.createElement("option");
      option.value = w;
      return option;
    }));
  }

  // ------------------------------------------------------------ actions

  function switchSide(side) {
    current = side;
    focus = null;
    Plotly.restyle(mapDiv, { visible: sides.map((s) => s === side) }, sides.map((s, k) => k));
    Plotly.restyle(mapDiv, { x: [[], []], y: [[], []] }, [FOUND, NEAR]);
    Plotly.relayout(mapDiv, {
      height: fitHeight(side),
      "xaxis.range": padded(data.map[side].x),
      "yaxis.range": padded(data.map[side].y),
    });
    for (const radio of document.querySelectorAll("input[name=side]")) {
      radio.checked = radio.value === side;
    }
    describeSide(side);
  }

  function lookup(side, query) {
    const index = indexes[side];
    if (index.has(query)) return index.get(query);
    return index.get(query.toLowerCase());
  }

  function span(values) {
    return Math.max(...values) - Math.min(...values) || 1;
  }

  // Ring the word and its neighbours that are on the map, and zoom to them.
  function highlight(side, i) {
    const m = data.map[side];
    const near = m.neighbours[i]
      .map((pair) => indexes[side].get(pair[0]))
      .filter((j) => j !== undefined);
    focus = { side: side, i: i, near: near };
    Plotly.restyle(
      mapDiv,
      {
        x: [[m.x[i]], near.map((j) => m.x[j])],
        y: [[m.y[i]], near.map((j) => m.y[j])],
      },
      [FOUND, NEAR],
    );
    const xs = [m.x[i], ...near.map((j) => m.x[j])];
    const ys = [m.y[i], ...near.map((j) => m.y[j])];
    // At least a tenth of the map across, centred on the word's group, in
    // the shape of the whole map (one unit across as long as up: a square
    // view would shrink the plot to a square).
    const half = Math.max(0.6 * Math.max(span(xs), span(ys)), 0.05 * Math.max(span(m.x), span(m.y)));
    const [fullX, fullY] = [padded(m.x), padded(m.y)];
    const aspect = span(fullX) / span(fullY);
    let [hx, hy] = aspect >= 1 ? [half * aspect, half] : [half, half / aspect];
    // Never wider than the whole map, and inside it: no zooming out.
    const shrink = Math.min(1, span(fullX) / (2 * hx));
    [hx, hy] = [hx * shrink, hy * shrink];
    const within = (c, h, [low, high]) => Math.min(Math.max(c, low + h), high - h);
    const cx = within((Math.min(...xs) + Math.max(...xs)) / 2, hx, fullX);
    const cy = within((Math.min(...ys) + Math.max(...ys)) / 2, hy, fullY);
    Plotly.relayout(mapDiv, {
      "xaxis.range": [cx - hx, cx + hx],
      "yaxis.range": [cy - hy, cy + hy],
    });
    showWord(side, i);
  }

  function find(query) {
    if (!query) return;
    let side = current;
    let hit = lookup(side, query);
    for (const other of sides) {
      if (hit !== undefined) break;
      hit = lookup(other, query);
      side = other;
    }
    if (hit === undefined) {
      status.textContent = "“" + query + "” is not on the map";
      return;
    }
    if (side !== current) switchSide(side);
    highlight(side, hit);
    status.textContent = "found “" + data.map[side].words[hit] + "”, " + (SIDE_NAMES[side] || side);
  }

  // A new width (the window, a screenshot of the whole page): a new height.
  window.addEventListener("resize", function () {
    const height = mapHeight(current);
    if (Math.abs(height - mapDiv._fullLayout.height) > 1) {
      mapDiv.style.height = height + "px";
      Plotly.relayout(mapDiv, { height: height });
    }
  });

  // After a zoom, pan or side switch: the labels that fit the new view.
  mapDiv.on("plotly_relayout", function (change) {
    if (!Object.keys(change).some((key) => /range|autorange|height/.test(key))) return;
    chooseLabels(current);
  });

  mapDiv.on("plotly_hover", function (event) {
    const point = event.points.find((p) => p.curveNumber < sides.length);
    if (point) showWord(sides[point.curveNumber], point.pointIndex);
  });
  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    find(document.getElementById("search").value.trim());
  });
  for (const radio of document.querySelectorAll("input[name=side]")) {
    radio.addEventListener("change", () => switchSide(radio.value));
  }
  describeSide(current);
})();
