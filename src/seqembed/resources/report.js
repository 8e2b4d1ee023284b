/* seqembed report: draws the training curve and the embedding map from the
   JSON block #report-data (written by seqembed.report), and wires the map's
   side switch, search box and neighbour panel. Positions and neighbours are
   precomputed; this script only draws and looks things up. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const fontFamily = getComputedStyle(document.body).fontFamily;
  const plotConfig = { displaylogo: false, responsive: true };
  const LABELLED = 40; // the most frequent words get a label; hover shows all
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

  // Traces: one per side (only the current one visible), then two overlays.
  const FOUND = sides.length;
  const NEAR = sides.length + 1;
  const indexes = {};
  for (const side of sides) {
    indexes[side] = new Map(data.map[side].words.map((w, i) => [w, i]));
  }
  let current = sides[0];

  function hoverText(m, i) {
    const lines = [
      "<b>" + esc(m.words[i]) + "</b>   frequency " + m.freqs[i],
      "nearest neighbours (cosine):",
    ];
    m.neighbours[i].forEach(function (pair, rank) {
      lines.push(rank + 1 + ". " + esc(pair[0]) + "  " + pair[1].toFixed(3));
    });
    return lines.join("<br>");
  }

  function sideTrace(side) {
    const m = data.map[side];
    return {
      type: "scatter",
      mode: "markers+text",
      name: SIDE_NAMES[side] || side,
      visible: side === current,
      x: m.x,
      y: m.y,
      text: m.words.map((w, i) => (i < LABELLED ? esc(w) : "")),
      textposition: "top center",
      textfont: { size: 12, color: "#333" },
      hovertext: m.words.map((w, i) => hoverText(m, i)),
      hoverinfo: "text",
      marker: {
        size: 7,
        opacity: 0.85,
        color: m.freqs.map((f) => Math.log10(Math.max(f, 1))),
        colorscale: "Viridis",
        showscale: true,
        colorbar: { title: { text: "log10 freq" }, thickness: 12 },
      },
    };
  }

  // Rings with labels below, so a found word and its neighbours are named
  // even where the map does not label them.
  function overlay(size, color, width) {
    return {
      type: "scatter",
      mode: "markers+text",
      x: [],
      y: [],
      text: [],
      textposition: "bottom center",
      textfont: { size: 12, color: color },
      hoverinfo: "skip",
      marker: { size: size, color: "rgba(0,0,0,0)", line: { color: color, width: width } },
    };
  }

  const traces = sides.map(sideTrace);
  traces.push(overlay(22, "#d62728", 3), overlay(14, "#ff7f0e", 2));
  const layout = withFont({
    height: 680,
    margin: { l: 10, r: 10, t: 10, b: 10 },
    hovermode: "closest",
    showlegend: false,
    xaxis: { visible: false },
    yaxis: { visible: false, scaleanchor: "x" },
    hoverlabel: { align: "left" },
  });
  Plotly.newPlot(mapDiv, traces, layout, plotConfig);

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
    info.replaceChildren(
      element("h3", m.words[i]),
      element("p", "frequency " + m.freqs[i] + " · " + (SIDE_NAMES[side] || side)),
      element("p", m.neighbours[i].length + " nearest neighbours (cosine):"),
      list,
    );
    info.dataset.word = m.words[i];
  }

  function describeSide(side) {
    const m = data.map[side];
    const shown = m.words.length;
    caption.textContent =
      (shown < m.n_words
        ? "The " + shown.toLocaleString() + " most frequent of " + m.n_words.toLocaleString()
        : "All " + shown.toLocaleString()) +
      " " + (SIDE_NAMES[side] || side) + " words, placed by " + m.method +
      ". Colour: training frequency; labels: the " + Math.min(LABELLED, shown) +
      " most frequent. Neighbours are searched among all " +
      m.n_words.toLocaleString() + " words, by cosine in the full space.";
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
    Plotly.restyle(mapDiv, { visible: sides.map((s) => s === side) }, sides.map((s, k) => k));
    Plotly.restyle(mapDiv, { x: [[], []], y: [[], []], text: [[], []] }, [FOUND, NEAR]);
    Plotly.relayout(mapDiv, { "xaxis.autorange": true, "yaxis.autorange": true });
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
    Plotly.restyle(
      mapDiv,
      {
        x: [[m.x[i]], near.map((j) => m.x[j])],
        y: [[m.y[i]], near.map((j) => m.y[j])],
        text: [[esc(m.words[i])], near.map((j) => esc(m.words[j]))],
      },
      [FOUND, NEAR],
    );
    const xs = [m.x[i], ...near.map((j) => m.x[j])];
    const ys = [m.y[i], ...near.map((j) => m.y[j])];
    // At least a tenth of the map across, centred on the word's group.
    const half = Math.max(0.6 * Math.max(span(xs), span(ys)), 0.05 * Math.max(span(m.x), span(m.y)));
    const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
    const cy = (Math.min(...ys) + Math.max(...ys)) / 2;
    Plotly.relayout(mapDiv, {
      "xaxis.range": [cx - half, cx + half],
      "yaxis.range": [cy - half, cy + half],
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
