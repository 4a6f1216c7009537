/* streamscore dashboard: polls /dashboard/data.json every 2 s and draws every card as HTML and inline SVG.
 *
 * No framework and no network beyond this worker: the charts are a few small functions below. Every card is
 * rendered on its own inside safely(), so a field missing from the data (the learner not started yet, a
 * worker without a partition) shows an explanation in that card and never stops the others.
 * Tests read what is drawn through data-* attributes: data-chart on each SVG, data-series and data-points on
 * each line, data-field on each number, and body[data-renders] / window.dashboardErrors.
 */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STAGE_ORDER = ["decode", "features", "score", "label_join", "update", "state_write", "deliver", "event"];
  const CLIENT_HISTORY = 300; // samples kept by the page itself (10 min at one per 2 s)

  const errors = [];
  window.dashboardErrors = errors;
  const lagHistory = []; // [wall_ts, total lag]: the data has lag now only, so the page remembers it
  let lastData = null;
  let renders = 0;

  // ---------------------------------------------------------------- small helpers

  const $ = (id) => document.getElementById(id);
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const isObj = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
  const arr = (x) => (Array.isArray(x) ? x : []);
  const obj = (x) => (isObj(x) ? x : {});

  /** The value at path in o, or undefined: never throws on a null along the way. */
  function get(o, ...path) {
    let cur = o;
    for (const key of path) {
      if (cur === null || cur === undefined) return undefined;
      cur = cur[key];
    }
    return cur;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else node.setAttribute(k, String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, String(v));
    }
    for (const child of children.flat()) if (child) node.appendChild(child);
    return node;
  }

  function replace(node, ...children) {
    if (!node) return;
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  function empty(text) {
    return el("div", { class: "empty", text });
  }

  const fmt = {
    /** A number for people: thousands separated, `digits` significant decimals, "—" when missing. */
    num(x, digits = 3) {
      if (!isNum(x)) return "—";
      if (x === 0) return "0";
      if (Number.isInteger(x) && Math.abs(x) >= 1) return x.toLocaleString("en-US");
      const a = Math.abs(x);
      if (a >= 1000) return Math.round(x).toLocaleString("en-US");
      if (a >= 100) return x.toFixed(Math.max(0, digits - 3));
      if (a >= 10) return x.toFixed(Math.max(0, digits - 2));
      if (a >= 1 || a === 0) return x.toFixed(Math.max(0, digits - 1));
      return x.toPrecision(digits).replace(/0+$/, "").replace(/\.$/, "");
    },
    int(x) {
      return isNum(x) ? Math.round(x).toLocaleString("en-US") : "—";
    },
    fixed(x, d) {
      return isNum(x) ? x.toFixed(d) : "—";
    },
    pct(x, d = 1) {
      return isNum(x) ? (100 * x).toFixed(d) + " %" : "—";
    },
    /** Seconds to milliseconds, 3 significant digits. */
    ms(seconds) {
      if (!isNum(seconds)) return "—";
      const v = seconds * 1000;
      if (v >= 100) return Math.round(v).toLocaleString("en-US");
      if (v >= 10) return v.toFixed(1);
      if (v >= 1) return v.toFixed(2);
      return v.toFixed(3);
    },
    /** A latency as [value, unit]: milliseconds below a second, seconds above (a backlog shows as 30 s). */
    duration(seconds) {
      if (!isNum(seconds)) return ["—", "ms"];
      return seconds >= 1 ? [seconds >= 10 ? seconds.toFixed(0) : seconds.toFixed(1), "s"] : [fmt.ms(seconds), "ms"];
    },
    durationText(seconds) {
      return fmt.duration(seconds).join(" ");
    },
    rate(x) {
      if (!isNum(x)) return "—";
      if (x >= 100) return Math.round(x).toLocaleString("en-US");
      return x.toFixed(x >= 10 ? 1 : 2);
    },
    /** Wall-clock seconds to local HH:MM:SS. */
    clock(ts) {
      if (!isNum(ts)) return "—";
      const d = new Date(ts * 1000);
      const p = (n) => String(n).padStart(2, "0");
      return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    },
    /** Event time (seconds since the epoch) as UTC: simulated and replayed streams live in other days. */
    eventTime(ts) {
      if (!isNum(ts)) return "—";
      return new Date(ts * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    },
    ago(seconds) {
      if (!isNum(seconds)) return "";
      if (seconds < 1.5) return "just now";
      if (seconds < 90) return `${Math.round(seconds)} s ago`;
      if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
      return `${(seconds / 3600).toFixed(1)} h ago`;
    },
    /** Reasons carry raw floats (0.5625134988953672): four decimals are enough to read them. */
    reason(text) {
      return typeof text === "string" ? text.replace(/-?\d+\.\d{5,}(e-?\d+)?/g, (m) => Number(m).toFixed(4)) : "";
    },
  };

  function setField(name, text) {
    for (const node of document.querySelectorAll(`[data-field="${name}"]`)) node.textContent = text;
  }

  function seriesClass(name) {
    const known = ["prod", "baseline", "events", "requests", "p50", "p95", "p99", "lag"];
    return known.includes(name) ? `c-${name}` : "c-other";
  }

  // ---------------------------------------------------------------- scales and axes

  /** About `count` round tick values covering [lo, hi]. */
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  }

  function extent(values) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (!isNum(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return lo <= hi ? [lo, hi] : null;
  }

  function size(container, fallbackHeight) {
    const w = container.clientWidth || 520;
    const h = container.clientHeight || fallbackHeight;
    return [w, h];
  }

  // ---------------------------------------------------------------- charts

  /**
   * A time-series line chart. spec: {id, series: [{name, label, points: [[x, y], ...]}], yMin, yMax, ref,
   * bands: [[x0, x1], ...], yFormat, emptyText}. Points with a null y break the line.
   */
  function lineChart(container, spec) {
    if (!container) return;
    const series = arr(spec.series).map((s) => ({ ...s, points: arr(s.points).filter((p) => isNum(p[0]) && isNum(p[1])) }));
    const all = series.flatMap((s) => s.points);
    if (all.length === 0) {
      replace(container, empty(spec.emptyText || "no data yet"));
      return;
    }
    const [w, h] = size(container, 200);
    const m = { l: 48, r: 14, t: 8, b: 22 };
    let [x0, x1] = extent(all.map((p) => p[0]));
    if (x1 - x0 < 1) { x0 -= 30; x1 += 30; } // one sample: a minute around it
    let [y0, y1] = extent(all.map((p) => p[1]).concat(isNum(spec.ref) ? [spec.ref] : []));
    if (isNum(spec.yMin)) y0 = Math.min(y0, spec.yMin);
    if (isNum(spec.yMax)) y1 = Math.max(y1, spec.yMax);
    if (spec.zero) y0 = Math.min(0, y0);
    const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 1;
    if (!spec.zero || y0 < 0) y0 -= pad;
    y1 += pad;
    if (isNum(spec.clampMin)) y0 = Math.max(spec.clampMin, y0);
    if (isNum(spec.clampMax)) y1 = Math.min(spec.clampMax, y1);
    const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
    const Y = (y) => h - m.b - ((y - y0) / (y1 - y0)) * (h - m.t - m.b);
    const yFormat = spec.yFormat || ((v) => fmt.num(v, 3));

    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, "data-chart": spec.id, role: "img", "aria-label": spec.id });
    for (const [b0, b1] of arr(spec.bands)) {
      const a = X(Math.max(x0, b0));
      const b = X(Math.min(x1, b1));
      if (b > a) root.appendChild(svg("rect", { class: "band-alert", x: a, y: m.t, width: Math.max(2, b - a), height: h - m.t - m.b }));
    }
    for (const t of niceTicks(y0, y1, spec.yTicks || 4).filter((v) => !spec.integer || Number.isInteger(v))) {
      const y = Y(t);
      root.appendChild(svg("line", { class: "gridline", x1: m.l, x2: w - m.r, y1: y, y2: y }));
      root.appendChild(svg("text", { x: m.l - 6, y: y + 4, "text-anchor": "end", text: yFormat(t) }));
    }
    const xTicks = timeTicks(x0, x1, Math.max(2, Math.floor((w - m.l - m.r) / 110)));
    for (const t of xTicks) {
      root.appendChild(svg("text", { x: X(t), y: h - 5, "text-anchor": "middle", text: fmt.clock(t) }));
    }
    root.appendChild(svg("line", { class: "axis", x1: m.l, x2: w - m.r, y1: h - m.b, y2: h - m.b }));
    if (isNum(spec.ref)) {
      root.appendChild(svg("line", { class: "refline", x1: m.l, x2: w - m.r, y1: Y(spec.ref), y2: Y(spec.ref) }));
    }
    for (const s of series) {
      const pts = s.points.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
      root.appendChild(svg("polyline", {
        class: `series ${seriesClass(s.name)}`, points: pts, "data-series": s.name, "data-points": s.points.length,
      }));
      const last = s.points[s.points.length - 1];
      if (last) root.appendChild(svg("circle", { class: seriesClass(s.name), cx: X(last[0]), cy: Y(last[1]), r: 3 }));
    }
    const hover = svg("line", { class: "hover-line", x1: 0, x2: 0, y1: m.t, y2: h - m.b, visibility: "hidden" });
    root.appendChild(hover);
    attachHover(root, hover, series, { X, x0, x1, m, w, yFormat, xFormat: fmt.clock });
    replace(container, root);
  }

  /** Round wall-clock ticks (10 s, 30 s, 1 min, ...) for a time axis. */
  function timeTicks(x0, x1, count) {
    const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
    const raw = (x1 - x0) / Math.max(1, count);
    const step = steps.find((s) => s >= raw) || raw;
    const out = [];
    for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) out.push(t);
    return out;
  }

  /** A vertical hover line with a tooltip of each series' nearest value. */
  function attachHover(root, hover, series, g) {
    const tip = $("tooltip");
    root.addEventListener("mousemove", (ev) => {
      const box = root.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * g.w;
      if (px < g.m.l || px > g.w - g.m.r) { hover.setAttribute("visibility", "hidden"); tip.hidden = true; return; }
      const x = g.x0 + ((px - g.m.l) / (g.w - g.m.l - g.m.r)) * (g.x1 - g.x0);
      hover.setAttribute("x1", px);
      hover.setAttribute("x2", px);
      hover.setAttribute("visibility", "visible");
      const rows = [el("div", { class: "t-head", text: g.xFormat(x) })];
      for (const s of series) {
        let best = null;
        for (const p of s.points) if (best === null || Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
        if (best) rows.push(el("div", {}, el("span", { class: "legend-inline", text: `${s.label || s.name}: ` }), el("b", { text: g.yFormat(best[1]) })));
      }
      replace(tip, rows);
      tip.hidden = false;
      tip.style.left = `${ev.clientX + 14}px`;
      tip.style.top = `${ev.clientY + 12}px`;
    });
    root.addEventListener("mouseleave", () => { hover.setAttribute("visibility", "hidden"); tip.hidden = true; });
  }

  /**
   * Vertical bars. spec: {id, bars: [{label, value, title}], yFormat, emptyText, cls, showValues}.
   */
  function barChart(container, spec) {
    if (!container) return;
    const bars = arr(spec.bars).filter((b) => isNum(b.value));
    if (bars.length === 0) {
      replace(container, empty(spec.emptyText || "no data yet"));
      return;
    }
    const [w, h] = size(container, 140);
    const m = { l: spec.compact ? 6 : 44, r: 8, t: spec.showValues ? 16 : 6, b: spec.labels === false ? 4 : 20 };
    const top = Math.max(...bars.map((b) => b.value), 0) || 1;
    const Y = (v) => h - m.b - (v / top) * (h - m.t - m.b);
    const slot = (w - m.l - m.r) / bars.length;
    const gap = Math.min(6, slot * 0.18);
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, "data-chart": spec.id, "data-bars": bars.length, role: "img", "aria-label": spec.id });
    if (!spec.compact) {
      for (const t of niceTicks(0, top, 3).filter((v) => !spec.integer || Number.isInteger(v))) {
        root.appendChild(svg("line", { class: "gridline", x1: m.l, x2: w - m.r, y1: Y(t), y2: Y(t) }));
        root.appendChild(svg("text", { x: m.l - 6, y: Y(t) + 4, "text-anchor": "end", text: (spec.yFormat || fmt.num)(t) }));
      }
    }
    const labelEvery = Math.max(1, Math.ceil(bars.length / Math.max(1, Math.floor((w - m.l - m.r) / 46))));
    bars.forEach((b, i) => {
      const x = m.l + i * slot + gap / 2;
      const y = Y(Math.max(0, b.value));
      const rect = svg("rect", {
        class: spec.cls || "c-hist", x, y, width: Math.max(1, slot - gap), height: Math.max(b.value > 0 ? 1 : 0, h - m.b - y),
        rx: Math.min(3, (slot - gap) / 3), "data-value": b.value,
      });
      rect.appendChild(svg("title", { text: b.title || `${b.label}: ${fmt.num(b.value)}` }));
      root.appendChild(rect);
      if (spec.showValues) root.appendChild(svg("text", { class: "bar-label", x: x + (slot - gap) / 2, y: y - 4, "text-anchor": "middle", text: fmt.int(b.value) }));
      if (spec.labels !== false && i % labelEvery === 0) {
        root.appendChild(svg("text", { x: x + (slot - gap) / 2, y: h - 5, "text-anchor": "middle", text: b.label }));
      }
    });
    root.appendChild(svg("line", { class: "axis", x1: m.l, x2: w - m.r, y1: h - m.b, y2: h - m.b }));
    replace(container, root);
  }

  function legend(container, items) {
    replace(container, items.map((it) => el("span", { class: "item" },
      el("span", { class: `swatch ${it.band ? "band band-swatch" : seriesClass(it.name)}` }),
      `${it.label || it.name}`, it.value !== undefined ? el("b", { text: it.value }) : null)));
  }

  // ---------------------------------------------------------------- the cards

  function renderHeader(data) {
    const w = obj(data.worker);
    const parts = [];
    if (w.app_id) parts.push(el("span", {}, "app ", el("b", { text: w.app_id })));
    if (w.bootstrap) parts.push(el("span", {}, " · broker ", el("b", { text: w.bootstrap })));
    if (Array.isArray(w.partitions)) parts.push(el("span", {}, " · partitions ", el("b", { text: w.partitions.length ? w.partitions.join(", ") : "none assigned" })));
    if (w.web) parts.push(el("span", {}, " · ", el("b", { text: w.web })));
    replace($("worker-info"), parts.length ? parts : ["worker"]);
  }

  function renderTripwire(data) {
    const report = get(data, "learner", "report");
    const card = $("tripwire");
    const trip = obj(get(report, "tripwire"));
    if (!report) {
      card.dataset.alert = "unknown";
      setField("tripwire", "WAITING");
      $("tripwire-headline").textContent = "waiting for the learner's first report";
      $("tripwire-reason").textContent = "the learner reports every few hundred labelled examples";
      replace($("tripwire-vs"));
      replace($("tripwire-arms"));
      return;
    }
    if (typeof trip.alert !== "boolean") {
      card.dataset.alert = "unknown";
      setField("tripwire", "N/A");
      $("tripwire-headline").textContent = "the learner's report has no tripwire state";
      $("tripwire-reason").textContent = "";
      replace($("tripwire-vs"));
      replace($("tripwire-arms"));
      return;
    }
    const alert = trip.alert;
    card.dataset.alert = String(alert);
    setField("tripwire", alert ? "ALERT" : "OK");
    $("tripwire-headline").textContent = alert ? "prod is not beating the baseline" : "prod beats the baseline";
    $("tripwire-reason").textContent = fmt.reason(trip.reason) || "no reason given";
    const metric = typeof trip.metric === "string" ? trip.metric : "logloss";
    replace($("tripwire-vs"), isNum(trip.prod) || isNum(trip.baseline) ? [
      el("span", {}, `recent ${metric} · prod`, el("b", { text: fmt.fixed(trip.prod, 4) })),
      el("span", {}, "baseline", el("b", { text: fmt.fixed(trip.baseline, 4) })),
    ] : []);
    const chips = Object.entries(obj(trip.arms)).map(([arm, a]) => el("span", {
      class: `chip ${get(a, "alert") ? "alert" : "ok"}`, title: fmt.reason(get(a, "reason")),
      text: `arm ${arm} · ${get(a, "model") || "?"} ${get(a, "alert") ? "alert" : "ok"}`,
    }));
    replace($("tripwire-arms"), chips);
  }

  /** Events/s and requests/s between samples about `window` seconds apart (1 s samples are noisy). */
  function rates(throughput, window = 5) {
    const samples = arr(throughput).filter((s) => Array.isArray(s) && isNum(s[0]));
    const events = [];
    const requests = [];
    let j = 0;
    for (let i = 1; i < samples.length; i++) {
      while (j < i - 1 && samples[i][0] - samples[j + 1][0] >= window) j++;
      const dt = samples[i][0] - samples[j][0];
      if (dt <= 0) continue;
      const t = samples[i][0];
      if (isNum(samples[i][1]) && isNum(samples[j][1])) events.push([t, Math.max(0, (samples[i][1] - samples[j][1]) / dt)]);
      if (isNum(samples[i][2]) && isNum(samples[j][2])) requests.push([t, Math.max(0, (samples[i][2] - samples[j][2]) / dt)]);
    }
    return { events, requests };
  }

  function renderKpis(data) {
    const c = obj(data.counters);
    const { events, requests } = rates(data.throughput);
    const lastRate = (s) => (s.length ? s[s.length - 1][1] : null);
    setField("events_rate", fmt.rate(lastRate(events)));
    setField("scored_rate", fmt.rate(lastRate(requests)));
    setField("events_total", isNum(c.events_in) ? `${fmt.int(c.events_in)} in total` : "no events yet");
    setField("scored_total", isNum(c.requests_scored) ? `${fmt.int(c.requests_scored)} in total` : "no requests yet");

    const e2s = obj(data.event_to_score);
    const [p95, unit] = fmt.duration(e2s.p95);
    setField("latency_p95", p95);
    setField("latency_p95_unit", unit);
    setField("latency_sub", isNum(e2s.p50) ? `p50 ${fmt.durationText(e2s.p50)} · p99 ${fmt.durationText(e2s.p99)}` : "no requests scored yet");

    const lag = Object.entries(obj(data.lag)).filter(([, v]) => isNum(v));
    const total = lag.reduce((a, [, v]) => a + v, 0);
    setField("lag_total", lag.length ? fmt.int(total) : "—");
    setField("lag_sub", lag.length ? `${lag.length} partition${lag.length === 1 ? "" : "s"} · max ${fmt.int(Math.max(...lag.map(([, v]) => v)))}` : "no partitions assigned");

    const dead = isNum(c.dead_letter) ? c.dead_letter : arr(data.dead_letters).length;
    setField("dead_total", fmt.int(dead));
    $("kpi-dead").dataset.nonzero = String(dead > 0);
    const newest = arr(data.dead_letters)[0];
    setField("dead_sub", newest ? `latest: ${get(newest, "code") || "?"} · ${fmt.ago(data.now - get(newest, "wall_ts"))}` : "none so far");

    const report = get(data, "learner", "report");
    const learned = get(report, "examples");
    setField("examples", fmt.int(learned));
    const pos = c.examples_positive;
    const neg = c.examples_negative;
    setField("examples_sub", report
      ? (isNum(pos) && isNum(neg) ? `${fmt.int(pos)} positive · ${fmt.int(neg)} negative` : "by the learner")
      : "waiting for the learner");

    const recent = get(report, "models", "prod", "recent");
    setField("label_rate", isNum(get(recent, "label_rate")) ? (100 * recent.label_rate).toFixed(1) : "—");
    const late = c.labels_late;
    setField("label_rate_sub", report
      ? `positives, last ${fmt.int(get(recent, "n"))} examples${isNum(late) ? ` · ${fmt.int(late)} late` : ""}`
      : "waiting for the learner");

    const models = Object.entries(obj(data.models));
    replace(document.querySelector('[data-field="models"]'), models.length
      ? models.map(([name, v]) => el("div", { class: "model" }, el("span", { text: name }), el("b", { text: isNum(v) ? `v${v}` : "initial" })))
      : [el("span", { class: "muted", text: "no models yet" })]);
    const swapped = c.snapshots_swapped;
    const refused = c.snapshots_refused;
    setField("models_sub", isNum(swapped) ? `${fmt.int(swapped)} swaps · ${fmt.int(isNum(refused) ? refused : 0)} refused` : "snapshot versions");
  }

  function renderQuality(data) {
    const history = arr(get(data, "learner", "history")).filter((h) => Array.isArray(h) && isNum(h[0]));
    const waiting = data.learner ? "the learner has reported no metrics yet" : "waiting for the learner's first report";
    const bands = alertBands(history);
    for (const metric of ["logloss", "auc"]) {
      const series = ["prod", "baseline"].map((model) => ({
        name: model, label: model,
        points: history.map(([t, h]) => [t, get(h, "models", model, metric)]),
      }));
      const latest = (name) => {
        const pts = series.find((s) => s.name === name).points.filter((p) => isNum(p[1]));
        return pts.length ? fmt.fixed(pts[pts.length - 1][1], 4) : "—";
      };
      const items = series.map((s) => ({ name: s.name, value: latest(s.name) }));
      if (bands.length) items.push({ name: "alert", label: "tripwire alert", band: true });
      legend($(`legend-${metric}`), items);
      lineChart($(`chart-${metric}`), {
        id: metric, series, bands, emptyText: waiting,
        ref: metric === "auc" ? 0.5 : undefined,
        clampMin: 0, clampMax: metric === "auc" ? 1 : undefined,
        yFormat: (v) => fmt.fixed(v, metric === "auc" ? 2 : 3),
      });
    }
  }

  /** Spans of the history during which the tripwire was raised. */
  function alertBands(history) {
    const bands = [];
    let start = null;
    history.forEach(([t, h], i) => {
      const on = get(h, "tripwire_alert") === true;
      if (on && start === null) start = i > 0 ? (history[i - 1][0] + t) / 2 : t;
      if (!on && start !== null) { bands.push([start, (history[i - 1][0] + t) / 2]); start = null; }
    });
    if (start !== null && history.length) bands.push([start, history[history.length - 1][0] + 1]);
    return bands;
  }

  function renderThroughput(data) {
    const { events, requests } = rates(data.throughput);
    const last = (s) => (s.length ? `${fmt.rate(s[s.length - 1][1])}/s` : "—");
    legend($("legend-throughput"), [
      { name: "events", label: "events in", value: last(events) },
      { name: "requests", label: "requests scored", value: last(requests) },
    ]);
    lineChart($("chart-throughput"), {
      id: "throughput", zero: true, emptyText: "no throughput samples yet",
      series: [{ name: "events", label: "events/s", points: events }, { name: "requests", label: "requests/s", points: requests }],
      yFormat: (v) => fmt.num(v, 3),
    });
  }

  /** Counts per bucket from a cumulative histogram ([[le, cumulative], ...]). */
  function bucketCounts(buckets) {
    const rows = arr(buckets).filter((b) => Array.isArray(b) && isNum(b[1]));
    let prev = 0;
    return rows.map(([le, cum]) => {
      const n = Math.max(0, cum - prev);
      prev = cum;
      return { le, n };
    });
  }

  function leLabel(le) {
    if (le === "+Inf" || le === Infinity) return "more";
    if (!isNum(le)) return String(le);
    const v = le * 1000;
    return v >= 1000 ? `${fmt.num(v / 1000, 2)} s` : `${fmt.num(v, 2)} ms`;
  }

  function renderLatency(data) {
    const h = obj(data.event_to_score);
    replace($("latency-pctl"), ["p50", "p95", "p99"].map((k) => el("div", { class: "p" },
      el("div", { class: "k", text: k }), el("div", { class: "v", "data-field": `e2s_${k}` }, fmt.duration(h[k])[0], el("small", { text: fmt.duration(h[k])[1] })))));
    const counts = bucketCounts(h.buckets);
    // Trim empty buckets at both ends so the shape, not the empty range, fills the card.
    let a = 0;
    let b = counts.length;
    while (a < b && counts[a].n === 0) a++;
    while (b > a && counts[b - 1].n === 0) b--;
    const shown = counts.slice(Math.max(0, a - 1), Math.min(counts.length, b + 1));
    barChart($("chart-latency"), {
      id: "latency-histogram", integer: true, emptyText: isNum(h.count) && h.count > 0 ? "no buckets in the data" : "no requests scored yet",
      bars: shown.map((r) => ({ label: leLabel(r.le), value: r.n, title: `≤ ${leLabel(r.le)}: ${fmt.int(r.n)} requests` })),
      yFormat: fmt.int,
    });
  }

  function renderStages(data) {
    const stages = obj(data.stages);
    const names = Object.keys(stages).filter((n) => isObj(stages[n]));
    if (names.length === 0) {
      replace($("stages"), empty("no stage timings yet"));
      return;
    }
    names.sort((x, y) => {
      const ix = STAGE_ORDER.indexOf(x);
      const iy = STAGE_ORDER.indexOf(y);
      return (ix < 0 ? 99 : ix) - (iy < 0 ? 99 : iy) || x.localeCompare(y);
    });
    const top = Math.max(...names.map((n) => (isNum(stages[n].p95) ? stages[n].p95 : 0)), 1e-9);
    const rows = names.map((n) => {
      const s = stages[n];
      const bar = el("span");
      bar.style.width = `${Math.max(1, (100 * (isNum(s.p95) ? s.p95 : 0)) / top)}%`;
      return el("tr", { "data-stage": n },
        el("td", { class: "mono", text: n.replace(/_/g, " ") }),
        el("td", { class: "num", text: fmt.ms(s.p50) }),
        el("td", { class: "num", text: fmt.ms(s.p95) }),
        el("td", { class: "num", text: fmt.ms(s.p99) }),
        el("td", { class: "bar-cell" }, el("div", { class: "hbar", title: `p95 ${fmt.ms(s.p95)} ms` }, bar)),
        el("td", { class: "num muted", text: fmt.int(s.count) }));
    });
    replace($("stages"), el("table", { "data-table": "stages" },
      el("thead", {}, el("tr", {}, ["stage", "p50", "p95", "p99", "", "count"].map((t, i) => el("th", { class: i && i < 4 || i === 5 ? "num" : "", text: t })))),
      el("tbody", {}, rows)));
  }

  function renderLag(data) {
    const lag = Object.entries(obj(data.lag)).filter(([, v]) => isNum(v)).sort((a, b) => Number(a[0]) - Number(b[0]));
    barChart($("chart-lag"), {
      id: "lag", cls: "c-lag", showValues: true, integer: true, emptyText: "no partitions assigned to this worker",
      bars: lag.map(([p, v]) => ({ label: `p${p}`, value: v, title: `partition ${p}: ${fmt.int(v)} messages behind` })),
      yFormat: fmt.int,
    });
    if (lag.length && isNum(data.now)) {
      const last = lagHistory[lagHistory.length - 1];
      if (!last || last[0] !== data.now) lagHistory.push([data.now, lag.reduce((a, [, v]) => a + v, 0)]);
      while (lagHistory.length > CLIENT_HISTORY) lagHistory.shift();
    }
    legend($("legend-lag-history"), [{ name: "lag", label: "total lag since this page opened" }]);
    lineChart($("chart-lag-history"), {
      id: "lag-history", zero: true, integer: true, emptyText: "collecting…",
      series: [{ name: "lag", label: "messages", points: lagHistory }], yFormat: fmt.int, yTicks: 2,
    });
  }

  function renderDeadLetters(data) {
    const c = obj(data.counters);
    const codes = Object.entries(c).filter(([k, v]) => k.startsWith("dead_letter.") && isNum(v) && v > 0)
      .sort((a, b) => b[1] - a[1]);
    replace($("dead-codes"), codes.map(([k, v]) => el("span", { class: "chip warn", text: `${k.slice("dead_letter.".length)} × ${fmt.int(v)}` })));
    const list = arr(data.dead_letters).filter(isObj);
    if (list.length === 0) {
      replace($("dead-list"), empty("no dead letters: every event so far was readable"));
      return;
    }
    // The reason gets the width; where the record came from sits under it, smaller.
    const rows = list.slice(0, 8).map((d) => el("tr", {},
      el("td", { class: "muted nowrap", text: fmt.clock(d.wall_ts), title: fmt.ago(data.now - d.wall_ts) }),
      el("td", { class: "code", text: d.code || "?" }),
      el("td", { class: "reason" },
        el("div", { class: "reason-text", text: reasonOf(d), title: reasonOf(d) }),
        el("div", { class: "source", text: `${d.topic || "?"} · partition ${isNum(d.partition) ? d.partition : "?"} · offset ${isNum(d.offset) ? d.offset : "?"}` }))));
    replace($("dead-list"), el("table", { "data-table": "dead-letters" },
      el("thead", {}, el("tr", {}, el("th", { text: "time" }), el("th", { text: "code" }), el("th", { text: "reason · source" }))),
      el("tbody", {}, rows)));
  }

  /** A dead letter's reason (the record names it ``error``; the telemetry may pass either). */
  function reasonOf(d) {
    const text = typeof d.reason === "string" && d.reason ? d.reason : typeof d.error === "string" ? d.error : "";
    return text || "(no reason recorded)";
  }

  /** Which model each arm serves, from the report's tripwire or from the scores served. */
  function armModels(data) {
    const out = {};
    for (const [arm, a] of Object.entries(obj(get(data, "learner", "report", "tripwire", "arms")))) {
      if (get(a, "model")) out[arm] = a.model;
    }
    for (const s of Object.values(obj(data.latest_scores))) {
      if (isObj(s) && s.arm && s.model && !out[s.arm]) out[s.arm] = s.model;
    }
    return out;
  }

  function renderExperiment(data) {
    const report = get(data, "learner", "report");
    const exp = obj(get(report, "experiment"));
    const arms = Object.keys(exp).filter((a) => isObj(exp[a])).sort();
    if (!report) {
      replace($("experiment"), empty("waiting for the learner's first report"));
      return;
    }
    if (arms.length === 0) {
      replace($("experiment"), empty("no experiment results yet (no labelled examples per arm)"));
      return;
    }
    const served = armModels(data);
    const lo = Math.min(...arms.map((a) => (isNum(exp[a].logloss_low) ? exp[a].logloss_low : exp[a].logloss)).filter(isNum));
    const hi = Math.max(...arms.map((a) => (isNum(exp[a].logloss_high) ? exp[a].logloss_high : exp[a].logloss)).filter(isNum));
    const rows = arms.map((arm) => {
      const e = exp[arm];
      const model = served[arm];
      const recentServed = model ? get(report, "models", model, "per_arm", arm, "recent", "logloss") : undefined;
      const recentBase = get(report, "models", "baseline", "per_arm", arm, "recent", "logloss");
      const trip = get(report, "tripwire", "arms", arm);
      return el("tr", { "data-arm": arm },
        el("td", {}, el("b", { text: arm })),
        el("td", { class: "mono", text: model || "?" }),
        el("td", { class: "num", text: fmt.int(e.n) }),
        el("td", { class: "num" }, fmt.pct(e.label_rate), el("div", { class: "ci", text: ci(e.label_rate_low, e.label_rate_high, fmt.pct) })),
        el("td", { class: "num" }, fmt.fixed(e.logloss, 4), el("div", { class: "ci", text: ci(e.logloss_low, e.logloss_high, (v) => fmt.fixed(v, 3)) })),
        el("td", {}, forest(e.logloss, e.logloss_low, e.logloss_high, lo, hi)),
        el("td", { class: "num" }, fmt.fixed(recentServed, 4), el("div", { class: "ci", text: `baseline ${fmt.fixed(recentBase, 4)}` })),
        el("td", {}, trip ? el("span", { class: `chip ${trip.alert ? "alert" : "ok"}`, text: trip.alert ? "alert" : "ok", title: fmt.reason(trip.reason) }) : el("span", { class: "muted", text: "—" })));
    });
    const head = ["arm", "model", "examples", "label rate", "log loss", "95 % interval", "recent", "tripwire"];
    const table = el("table", { "data-table": "experiment" },
      el("thead", {}, el("tr", {}, head.map((t, i) => el("th", { class: [2, 3, 4, 6].includes(i) ? "num" : "", text: t })))),
      el("tbody", {}, rows));
    const comparisons = arr(get(report, "comparisons")).filter(isObj).map((cmp) => {
      const ll = obj(cmp.logloss);
      const lr = obj(cmp.label_rate);
      return el("div", {},
        el("b", { text: `${cmp.a ?? "?"} − ${cmp.b ?? "?"}` }), ": log loss ",
        el("b", { text: signed(ll.estimate, 4) }), ` [${signed(ll.low, 3)}, ${signed(ll.high, 3)}] · label rate `,
        el("b", { text: signedPct(lr.estimate) }), ` [${signedPct(lr.low)}, ${signedPct(lr.high)}] · `,
        el("span", { class: cmp.significant ? "sig" : "nsig", text: cmp.significant ? "significant" : "not significant" }),
        isNum(cmp.confidence) ? ` at ${Math.round(cmp.confidence * 100)} %` : "");
    });
    replace($("experiment"), table, comparisons.length ? el("div", { class: "comparisons" }, comparisons) : null);
  }

  function ci(low, high, f) {
    return isNum(low) && isNum(high) ? `${f(low)} – ${f(high)}` : "";
  }

  function signed(x, d) {
    return isNum(x) ? (x > 0 ? "+" : "") + x.toFixed(d) : "—";
  }

  function signedPct(x) {
    return isNum(x) ? (x > 0 ? "+" : "") + (100 * x).toFixed(1) + " pp" : "—";
  }

  /** A one-row forest plot: the estimate and its interval on a scale shared by all arms. */
  function forest(est, low, high, lo, hi) {
    const w = 130;
    const h = 22;
    const root = svg("svg", { class: "forest", viewBox: `0 0 ${w} ${h}` });
    if (!isNum(est) || !isNum(lo) || !isNum(hi)) return root;
    const span = hi - lo || Math.abs(hi) * 0.1 || 1;
    const X = (v) => 6 + ((v - (lo - span * 0.05)) / (span * 1.1)) * (w - 12);
    root.appendChild(svg("line", { class: "track", x1: 4, x2: w - 4, y1: h / 2, y2: h / 2 }));
    if (isNum(low) && isNum(high)) {
      root.appendChild(svg("line", { class: "whisker", x1: X(low), x2: X(high), y1: h / 2, y2: h / 2 }));
      for (const v of [low, high]) root.appendChild(svg("line", { class: "whisker", x1: X(v), x2: X(v), y1: h / 2 - 5, y2: h / 2 + 5 }));
    }
    root.appendChild(svg("circle", { class: "point", cx: X(est), cy: h / 2, r: 4.5 }));
    return root;
  }

  function quantile(sorted, q) {
    if (!sorted.length) return null;
    const i = (sorted.length - 1) * q;
    const a = Math.floor(i);
    const b = Math.ceil(i);
    return sorted[a] + (sorted[b] - sorted[a]) * (i - a);
  }

  function renderFeatures(data) {
    const feats = obj(data.features);
    const names = Object.keys(feats).filter((n) => Array.isArray(feats[n])).sort();
    const host = $("features");
    if (names.length === 0) {
      replace(host, empty("no feature-log values yet: they arrive with the first scored requests"));
      return;
    }
    // Rebuild the small multiples only when the set of features changes, so the charts redraw in place.
    const key = names.join("|");
    if (host.dataset.key !== key) {
      host.dataset.key = key;
      replace(host, names.map((n) => el("div", { class: "feature", "data-feature": n },
        el("div", { class: "name", text: n, title: n }),
        el("div", { class: "stats" }),
        el("div", { class: "chart" }))));
    }
    for (const box of host.querySelectorAll(".feature")) {
      const n = box.dataset.feature;
      const values = arr(feats[n]).filter(isNum).sort((a, b) => a - b);
      const stats = box.querySelector(".stats");
      if (!values.length) {
        stats.textContent = "no values yet";
        barChart(box.querySelector(".chart"), { id: `feature:${n}`, bars: [], emptyText: "no values yet" });
        continue;
      }
      const mean = values.reduce((a, v) => a + v, 0) / values.length;
      stats.textContent = `n ${fmt.int(values.length)} · mean ${fmt.num(mean, 3)} · median ${fmt.num(quantile(values, 0.5), 3)} · range ${fmt.num(values[0], 3)} – ${fmt.num(values[values.length - 1], 3)}`;
      barChart(box.querySelector(".chart"), { id: `feature:${n}`, compact: true, labels: false, bars: histogram(values, 20) });
    }
  }

  /** Equal-width bins of sorted values; one bar when they are all equal. */
  function histogram(sorted, bins) {
    const lo = sorted[0];
    const hi = sorted[sorted.length - 1];
    if (hi === lo) return [{ label: fmt.num(lo), value: sorted.length, title: `${fmt.num(lo)}: ${sorted.length} values` }];
    const distinct = new Set(sorted).size;
    const n = Math.min(bins, Math.max(2, distinct));
    const width = (hi - lo) / n;
    const counts = new Array(n).fill(0);
    for (const v of sorted) counts[Math.min(n - 1, Math.floor((v - lo) / width))]++;
    return counts.map((c, i) => ({
      label: fmt.num(lo + i * width, 2), value: c,
      title: `${fmt.num(lo + i * width, 3)} – ${fmt.num(lo + (i + 1) * width, 3)}: ${c} values`,
    }));
  }

  function renderKnownUsers(data) {
    const users = Object.keys(obj(data.latest_scores)).sort().slice(0, 500);
    const list = $("known-users");
    if (list.dataset.key === users.join("|")) return;
    list.dataset.key = users.join("|");
    replace(list, users.map((u) => el("option", { value: u })));
    $("lookup-hint").textContent = users.length ? `${fmt.int(users.length)} recently scored users to pick from` : "";
  }

  // ---------------------------------------------------------------- user lookup

  async function lookup(userId) {
    const out = $("lookup-result");
    out.dataset.state = "loading";
    replace(out, empty(`looking up ${userId}…`));
    let body = null;
    let status = 0;
    try {
      const response = await fetch(`/users/${encodeURIComponent(userId)}/`, { cache: "no-store", headers: { Accept: "application/json" } });
      status = response.status;
      body = await response.json().catch(() => null);
    } catch (err) {
      out.dataset.state = "error";
      replace(out, el("div", { class: "lookup-error", text: `the worker did not answer: ${err}` }));
      return;
    }
    if (status !== 200 || !isObj(body)) {
      out.dataset.state = "error";
      const why = isObj(body) && body.error ? body.error : `HTTP ${status}`;
      replace(out, el("div", { class: "lookup-error", text: `${userId}: ${why}` }), scoresPanel(userId));
      return;
    }
    out.dataset.state = "done";
    replace(out, featuresPanel(body), scoresPanel(userId));
  }

  function featuresPanel(body) {
    const features = Object.entries(obj(body.features)).sort((a, b) => a[0].localeCompare(b[0]));
    const meta = el("div", { class: "meta" },
      "user ", el("b", { text: String(body.user_id ?? "?") }),
      " · last event ", el("b", { text: fmt.eventTime(body.last_event_ts) }),
      body.schema ? ` · feature set ${body.schema}` : "");
    if (features.length === 0) return el("div", {}, el("h3", { text: "Features" }), meta, empty("no user-level features"));
    const half = Math.ceil(features.length / 2);
    // Two side-by-side tables: the whole user fits on screen without scrolling a narrow box.
    const table = (part) => el("table", { "data-table": "features" },
      el("thead", {}, el("tr", {}, el("th", { text: "feature" }), el("th", { class: "num", text: "value" }))),
      el("tbody", {}, part.map(([k, v]) => el("tr", { "data-feature": k },
        el("td", { class: "mono", text: k, title: k }),
        el("td", { class: "num", text: isNum(v) ? fmt.num(v, 4) : typeof v === "string" ? v : JSON.stringify(v) })))));
    return el("div", { "data-panel": "features" }, el("h3", { text: `Features · ${features.length}` }), meta,
      el("div", { class: "features-columns" }, table(features.slice(0, half)), features.length > half ? table(features.slice(half)) : null));
  }

  function scoresPanel(userId) {
    const s = get(lastData, "latest_scores", userId);
    const panel = el("div", { "data-panel": "scores" }, el("h3", { text: "Latest scores" }));
    if (!isObj(s)) {
      panel.appendChild(empty("no score for this user among the recently scored requests"));
      return panel;
    }
    panel.appendChild(el("div", { class: "meta" },
      "request ", el("b", { text: String(s.request_id ?? "?") }),
      " · arm ", el("b", { text: String(s.arm ?? "?") }),
      " · served by ", el("b", { text: `${s.model ?? "?"} v${s.model_version ?? "?"}` }),
      " · at ", el("b", { text: fmt.eventTime(s.ts) })));
    const scores = arr(s.scores).filter((x) => isObj(x) && isNum(x.score)).sort((a, b) => b.score - a.score);
    if (!scores.length) {
      panel.appendChild(empty("the request had no candidates"));
      return panel;
    }
    const top = Math.max(...scores.map((x) => x.score), 1e-9);
    panel.appendChild(el("table", { "data-table": "scores" },
      el("thead", {}, el("tr", {}, el("th", { text: "rank" }), el("th", { text: "item" }), el("th", { class: "num", text: "score" }), el("th", { text: "" }))),
      el("tbody", {}, scores.map((x, i) => {
        const bar = el("span");
        bar.style.width = `${Math.max(1, (100 * x.score) / top)}%`;
        return el("tr", {}, el("td", { class: "muted", text: `#${i + 1}` }), el("td", { class: "mono", text: String(x.item_id) }),
          el("td", { class: "num", text: fmt.fixed(x.score, 4) }), el("td", { class: "bar-cell" }, el("div", { class: "hbar" }, bar)));
      }))));
    return panel;
  }

  // ---------------------------------------------------------------- the loop

  function safely(name, fn, data) {
    try {
      fn(data);
    } catch (err) {
      // A card that cannot draw says so; the others go on. Kept for the tests and for the console.
      errors.push(`${name}: ${err && err.stack ? err.stack : err}`);
      console.error("dashboard card", name, err);
    }
  }

  const CARDS = [
    ["header", renderHeader], ["tripwire", renderTripwire], ["kpis", renderKpis], ["quality", renderQuality],
    ["throughput", renderThroughput], ["latency", renderLatency], ["stages", renderStages], ["lag", renderLag],
    ["dead-letters", renderDeadLetters], ["experiment", renderExperiment], ["features", renderFeatures],
    ["known-users", renderKnownUsers],
  ];

  function render(data) {
    for (const [name, fn] of CARDS) safely(name, fn, data);
    renders += 1;
    document.body.dataset.renders = String(renders);
    document.body.dataset.learner = get(data, "learner", "report") ? "reported" : "waiting";
  }

  function setStatus(state, text) {
    document.body.dataset.state = state;
    $("status-text").textContent = text;
  }

  async function poll() {
    try {
      const response = await fetch("/dashboard/data.json", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      if (!isObj(data)) throw new Error("data.json is not an object");
      lastData = data;
      render(data);
      setStatus("live", `live · updated ${fmt.clock(isNum(data.now) ? data.now : Date.now() / 1000)}`);
    } catch (err) {
      setStatus("error", `cannot reach the worker (${err.message || err}); retrying`);
    } finally {
      // setTimeout after each answer rather than setInterval: a slow worker never gets requests piling up.
      setTimeout(poll, POLL_MS);
    }
  }

  function start() {
    $("lookup-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = $("lookup-input").value.trim();
      if (id) safely("lookup", () => lookup(id).catch((err) => errors.push(`lookup: ${err}`)));
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (lastData) render(lastData); }, 150);
    });
    poll();
  }

  window.addEventListener("error", (ev) => errors.push(`uncaught: ${ev.message}`));
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
