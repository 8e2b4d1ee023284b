/* seqembed explorer: a page over the server's JSON API (same origin only).
   Translate: the translation, the attention heatmap and each source word's
   neighbours beside their chance levels. Map: a side's words in 2-D, search
   and hover neighbours. Compare: the same words in two spaces side by side,
   the words that moved most and those whose neighbours changed.
   Every value from the server reaches the page as text (textContent), or
   escaped for plotly, which reads <b>, <br> and entities in its labels. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const plotConfig = { displaylogo: false, responsive: true };
  const fontFamily = getComputedStyle(document.body).fontFamily;
  const LABELLED = 40; // the most frequent words get a label on a map
  const SIDE_NAMES = { src: "source (Chinese)", tgt: "target (English)" };
  let models = [];
  let current = null; // the selected model's /models entry

  // ------------------------------------------------------------ helpers

  async function api(path, body) {
    const options = body === undefined ? {} : {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    };
    const response = await fetch(path, options);
    const data = await response.json();
    if (!response.ok) {
      throw new Error(data.error + (data.field ? " (" + data.field + ")" : ""));
    }
    return data;
  }

  function query(params) {
    return new URLSearchParams(params).toString();
  }

  function say(text) {
    $("status").textContent = text || "";
  }

  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function fixed(value, digits) {
    return value === null || value === undefined ? "–" : value.toFixed(digits);
  }

  // rows: arrays of cells, each text or [text, className]
  function fillTable(table, headers, rows) {
    const head = element("tr");
    headers.forEach((h) => head.appendChild(element("th", h)));
    const body = rows.map(function (cells) {
      const row = element("tr");
      cells.forEach(function (cell) {
        const [text, className] = Array.isArray(cell) ? cell : [cell, ""];
        row.appendChild(element("td", text, className));
      });
      return row;
    });
    table.replaceChildren(head, ...body);
    return table;
  }

  function withFont(layout) {
    return Object.assign({ font: { family: fontFamily } }, layout);
  }

  async function guarded(work) {
    try {
      await work();
    } catch (error) {
      say(error.message);
    }
  }

  // ------------------------------------------------------------ tabs, model

  function showTab(name) {
    for (const button of document.querySelectorAll(".tab")) {
      button.setAttribute("aria-pressed", String(button.dataset.tab === name));
    }
    for (const panel of document.querySelectorAll(".panel")) {
      panel.hidden = panel.id !== "tab-" + name;
    }
    if (name === "map" && !$("map").dataset.key) guarded(loadMap);
    window.dispatchEvent(new Event("resize")); // plots drawn while hidden
  }

  function selectModel(id) {
    current = models.find((m) => m.id === id);
    const bleu = current.test_bleu === null ? "no test split" : "test BLEU " + current.test_bleu.toFixed(2);
    $("model-info").textContent =
      "vocabulary " + current.vocabulary.src.toLocaleString() + " zh / " +
      current.vocabulary.tgt.toLocaleString() + " en · attention " + current.attention +
      " · " + bleu;
    const other = $("compare-other");
    const choices = [["", "the same model before training"]].concat(
      models.filter((m) => m.id !== id).map((m) => [m.id, m.id + " (aligned by Procrustes)"]));
    other.replaceChildren(...choices.map(function ([value, label]) {
      const option = element("option", label);
      option.value = value;
      return option;
    }));
    delete $("map").dataset.key;
    if (!$("tab-map").hidden) guarded(loadMap);
  }

  // ------------------------------------------------------------ translate

  async function translate() {
    const text = $("source").value.trim();
    if (!text) return;
    say("translating…");
    const beam = parseInt($("beam").value, 10) || 1;
    const result = await api("/translate", { text: text, beam: beam, model: current.id });
    $("translation").textContent = result.translations[0];
    $("translation").dataset.done = "1";
    const unknown = result.unknown[0];
    $("translation-meta").textContent =
      "score " + result.scores[0].toFixed(3) + " (log-probability, beam " + result.beam + ") · " +
      (unknown.length ? "not in the vocabulary: " + unknown.join(" ") : "every word known");
    if (current.attention !== "none") {
      drawHeatmap(await api("/attention", { text: text, model: current.id }));
    } else {
      Plotly.purge($("heatmap"));
      $("heatmap").textContent = "This model has no attention.";
    }
    const words = [...new Set(result.tokens[0].filter((w) => !unknown.includes(w)))];
    const cards = [];
    for (const word of words) {
      const found = await api("/neighbours?" + query({ word: word, side: "src", k: 8, model: current.id }));
      cards.push(neighbourCard(found));
    }
    $("word-neighbours").replaceChildren(...cards);
    say("");
  }

  function drawHeatmap(attention) {
    const src = attention.src_tokens, tgt = attention.tgt_tokens;
    const trace = {
      type: "heatmap",
      z: attention.weights,
      x: src.map((_, i) => i),
      y: tgt.map((_, i) => i),
      zmin: 0,
      zmax: 1,
      colorscale: "Blues",
      text: tgt.map((t) => src.map((s) => esc(t) + " ← " + esc(s))),
      hovertemplate: "%{text}: %{z:.3f}<extra></extra>",
    };
    const axis = (tokens) => ({ tickvals: tokens.map((_, i) => i), ticktext: tokens.map(esc) });
    Plotly.newPlot($("heatmap"), [trace], withFont({
      margin: { l: 90, r: 20, t: 20, b: 80 },
      xaxis: Object.assign({ title: { text: "source" } }, axis(src)),
      yaxis: Object.assign({ autorange: "reversed" }, axis(tgt)),
    }), plotConfig);
  }

  function neighbourCard(found) {
    const card = element("div", null, "card");
    card.dataset.word = found.word;
    const over = found.stability.over ? found.stability.n + " " + found.stability.over : "none";
    const rows = found.neighbours.map((n) => [
      n.word,
      [fixed(n.cosine, 3), "num " + (n.cosine > n.chance ? "above" : "below")],
      [fixed(n.chance, 3), "num"],
      [fixed(n.initial_cosine, 3), "num"],
      [n.stability === null ? "–" : Math.round(100 * n.stability) + "%", "num"],
    ]);
    card.append(
      element("h3", found.word),
      element("p", found.n_words.toLocaleString() + " words × " + found.dim + " dims; stability over " + over, "meta"),
      fillTable(element("table"), ["neighbour", "cosine", "chance", "before", "stable"], rows),
    );
    return card;
  }

  // ------------------------------------------------------------ the map

  let map = null; // the /map answer on screen
  let mapIndex = new Map();

  function mapHover(m, i) {
    const lines = ["<b>" + esc(m.words[i]) + "</b>   frequency " + m.freqs[i]];
    m.neighbours[i].forEach(function ([word, cosine], rank) {
      lines.push(rank + 1 + ". " + esc(word) + "  " + cosine.toFixed(3) + "  (chance " + m.chance[rank].toFixed(3) + ")");
    });
    return lines.join("<br>");
  }

  function ring(size, color) {
    return {
      type: "scatter", mode: "markers+text", x: [], y: [], text: [],
      textposition: "bottom center", textfont: { color: color }, hoverinfo: "skip",
      marker: { size: size, color: "rgba(0,0,0,0)", line: { color: color, width: 3 } },
    };
  }

  function wordsTrace(m, hover) {
    return {
      type: "scatter",
      mode: "markers+text",
      x: m.x,
      y: m.y,
      text: m.words.map((w, i) => (i < LABELLED ? esc(w) : "")),
      textposition: "top center",
      textfont: { size: 11, color: "#333" },
      hovertext: m.words.map((w, i) => hover(i)),
      hoverinfo: "text",
      marker: { size: 7, opacity: 0.85, color: m.freqs.map((f) => Math.log10(Math.max(f, 1))), colorscale: "Viridis" },
    };
  }

  // A new object each time: plotly keeps (and zooms) the layout it is given.
  function plainAxes() {
    return { xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" } };
  }

  async function loadMap() {
    const side = document.querySelector("input[name=map-side]:checked").value;
    const method = $("map-method").value;
    const key = [current.id, side, method].join("/");
    say("placing the words (the first time for a side takes a while)…");
    map = await api("/map?" + query({ side: side, method: method, model: current.id }));
    mapIndex = new Map(map.words.map((w, i) => [w, i]));
    await Plotly.newPlot($("map"), [wordsTrace(map, (i) => mapHover(map, i)), ring(20, "#d62728")],
      withFont(Object.assign({ margin: { l: 5, r: 5, t: 5, b: 5 }, hovermode: "closest", showlegend: false,
        hoverlabel: { align: "left" } }, plainAxes())), plotConfig);
    $("map").on("plotly_hover", function (event) {
      const point = event.points.find((p) => p.curveNumber === 0);
      if (point) showMapWord(point.pointIndex);
    });
    $("map").dataset.key = key;
    $("map-caption").textContent =
      (map.words.length < map.n_words ? "The " + map.words.length.toLocaleString() + " most frequent of " : "All ") +
      map.n_words.toLocaleString() + " " + SIDE_NAMES[side] + " words, placed by " + map.method +
      ". Hover a point for its nearest neighbours (searched among all words) and the cosine that random vectors reach at each rank.";
    $("map-words").replaceChildren(...map.words.map(function (w) {
      const option = element("option");
      option.value = w;
      return option;
    }));
    say("");
  }

  function showMapWord(i) {
    const list = element("ol");
    map.neighbours[i].forEach(function ([word, cosine], rank) {
      const chance = map.chance[rank];
      const item = element("li", word + "  " + cosine.toFixed(3) + "  (chance " + chance.toFixed(3) + ")",
        cosine > chance ? "above" : "below");
      list.appendChild(item);
    });
    $("map-info").replaceChildren(
      element("h3", map.words[i]),
      element("p", "frequency " + map.freqs[i] + " · " + SIDE_NAMES[map.side]),
      element("p", "nearest neighbours (cosine, chance at that rank):"),
      list);
    $("map-info").dataset.word = map.words[i];
  }

  function findOnMap() {
    const text = $("map-search").value.trim();
    if (!text || !map) return;
    const i = mapIndex.has(text) ? mapIndex.get(text) : mapIndex.get(text.toLowerCase());
    if (i === undefined) {
      $("map-search-status").textContent = "“" + text + "” is not on the map";
      return;
    }
    Plotly.restyle($("map"), { x: [[map.x[i]]], y: [[map.y[i]]], text: [[esc(map.words[i])]] }, [1]);
    const span = Math.max(Math.max(...map.x) - Math.min(...map.x), Math.max(...map.y) - Math.min(...map.y));
    const half = 0.12 * span;
    Plotly.relayout($("map"), { "xaxis.range": [map.x[i] - half, map.x[i] + half], "yaxis.range": [map.y[i] - half, map.y[i] + half] });
    showMapWord(i);
    $("map-search-status").textContent = "found “" + map.words[i] + "”";
  }

  // ------------------------------------------------------------ compare

  let comparison = null;

  async function compare() {
    const side = document.querySelector("input[name=compare-side]:checked").value;
    const other = $("compare-other").value;
    const params = { model: current.id, side: side };
    if (other) params.other = other;
    say("projecting both spaces (the first time takes a while)…");
    const c = await api("/compare?" + query(params));
    comparison = c;
    const plots = [$("compare-a"), $("compare-b")];
    for (const [k, div] of plots.entries()) {
      const space = c.spaces[k];
      const trace = wordsTrace({ x: space.x, y: space.y, words: c.words, freqs: c.freqs },
        (i) => "<b>" + esc(c.words[i]) + "</b><br>cosine between its two vectors " + c.cosine[i].toFixed(3) +
          "<br>neighbours shared " + Math.round(100 * c.overlap[i]) + "%");
      await Plotly.newPlot(div, [trace, ring(20, "#d62728")], withFont(Object.assign({
        title: { text: esc(space.label), font: { size: 14 } }, margin: { l: 5, r: 5, t: 40, b: 5 },
        hovermode: "closest", showlegend: false }, plainAxes())), plotConfig);
      div.on("plotly_hover", function (event) {
        const point = event.points.find((p) => p.curveNumber === 0);
        if (point) showCompareWord(point.pointIndex);
      });
    }
    $("compare-caption").textContent =
      c.labels[0] + " against " + c.labels[1] + " (" + c.alignment + "): the " + c.words.length.toLocaleString() +
      " most frequent of " + c.n_words.toLocaleString() + " " + SIDE_NAMES[side] + " words, each space placed on its own by " +
      c.spaces[0].method + ". Hover a word in either picture to see it in both.";
    fillTable($("moved"), ["word", "cosine"], c.moved_most.map((m) => [m.word, [fixed(m.cosine, 3), "num"]]));
    $("changed-caption").textContent = "Share of the " + c.k + " nearest words kept; unrelated lists would keep " +
      (100 * c.chance_overlap).toFixed(1) + "%, the mean is " + (100 * c.mean_overlap).toFixed(1) + "%.";
    fillTable($("changed"), ["word", "kept", c.labels[0], c.labels[1]], c.changed_most.map((m) => [
      m.word, [Math.round(100 * m.overlap) + "%", "num"], m.before.join(" "), m.after.join(" ")]));
    $("compare-a").dataset.done = "1";
    say("");
  }

  function showCompareWord(i) {
    const c = comparison;
    [$("compare-a"), $("compare-b")].forEach(function (div, k) {
      const space = c.spaces[k];
      Plotly.restyle(div, { x: [[space.x[i]]], y: [[space.y[i]]], text: [[esc(c.words[i])]] }, [1]);
    });
    const columns = c.spaces.map(function (space) {
      const box = element("div");
      const list = element("ol");
      space.neighbours[i].forEach((w) => list.appendChild(element("li", w)));
      box.append(element("h3", c.words[i] + " in " + space.label), list);
      return box;
    });
    $("compare-info").replaceChildren(...columns);
    $("compare-info").dataset.word = c.words[i];
  }

  // ------------------------------------------------------------ wiring

  async function start() {
    models = (await api("/models")).models;
    $("model").replaceChildren(...models.map(function (m) {
      const option = element("option", m.id);
      option.value = m.id;
      return option;
    }));
    selectModel(models[0].id);
    $("model").addEventListener("change", () => selectModel($("model").value));
    for (const button of document.querySelectorAll(".tab")) {
      button.addEventListener("click", () => showTab(button.dataset.tab));
    }
    $("translate-form").addEventListener("submit", function (event) {
      event.preventDefault();
      guarded(translate);
    });
    $("map-form").addEventListener("submit", function (event) {
      event.preventDefault();
      findOnMap();
    });
    for (const input of document.querySelectorAll("input[name=map-side], #map-method")) {
      input.addEventListener("change", () => guarded(loadMap));
    }
    $("compare-form").addEventListener("submit", function (event) {
      event.preventDefault();
      guarded(compare);
    });
    document.body.dataset.ready = "1";
  }

  guarded(start);
})();
