// The writing page: sends each revision after a pause, shows the scored events it streams back.
// Plain JavaScript, no build step, nothing loaded from elsewhere (the gateway's CSP says so).
"use strict";

const PAUSE_MS = 400; // a pause this long after a keystroke sends the revision
const SCORE_WAIT_MS = 20000; // no scored event this long after a 202: say so
const CHART_POINTS = 30;


const $ = (id) => document.getElementById(id);
const editor = $("editor");
const keyInput = $("api-key");
const targetSelect = $("target");

const state = {
  key: "",
  docId: "",
  revision: 0,
  texts: new Map(), // revision -> the text sent (scored events carry offsets into it)
  sentAt: new Map(), // revision -> performance.now() at send
  acceptedAt: new Map(),
  renderedRevision: -1,
  history: [], // {revision, valence, emotion} for the chart
  lastSent: null, // {text, target}
  pauseTimer: null,
  socket: null,
  socketOpened: false,
  reconnectDelay: 500,
  retryTimer: null,
  waitTimer: null,
  errorSource: null,
};

// Measured by the benchmark: per revision, send -> 202 -> tint on screen (ms).
window.valence = { timings: [] };

function randomId(prefix) {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- errors and status ---------------------------------------------------------------------

function showError(message, source) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  state.errorSource = source;
}

function clearError(source) {
  if (state.errorSource === source) {
    $("error").hidden = true;
    $("error").textContent = "";
    state.errorSource = null;
  }
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = "status " + (kind || "");
}

function describeRefusal(status, body) {
  const reason = body && body.error ? body.error : "error";
  const detail = body && body.detail ? body.detail : "";
  switch (status) {
    case 401:
      return `The gateway refused the API key (${detail || "unauthorized"}). Enter a valid key above.`;
    case 403:
      return "This API key may only read streams; it cannot send text.";
    case 413:
      return `The text is too large to send: ${detail}.`;
    case 429:
      return "Too many revisions at once; the next one is sent in a moment.";
    case 503:
      return `Kafka did not take the text (${detail}); retrying.`;
    default:
      if (reason === "text_too_long") return `The text is too long: ${detail}.`;
      return `The gateway rejected the text (${reason}): ${detail}`;
  }
}

// --- sending revisions -----------------------------------------------------------------------

function scheduleSend() {
  clearTimeout(state.pauseTimer);
  state.pauseTimer = setTimeout(sendRevision, PAUSE_MS);
}

async function sendRevision() {
  clearTimeout(state.retryTimer);
  const text = editor.value;
  const target = targetSelect.value || null;
  if (!text.trim()) return;
  if (state.lastSent && state.lastSent.text === text && state.lastSent.target === target) return;
  if (!state.key) {
    showError("Enter an API key above to have your text scored.", "send");
    return;
  }
  state.revision += 1;
  const revision = state.revision;
  $("revision").textContent = String(revision);
  const event = {
    schema_version: 1,
    event_id: randomId("ev-"),
    doc_id: state.docId,
    user_id: "page",
    revision,
    text,
    produced_at: new Date().toISOString(),
    lang: "en",
  };
  if (target) event.target_emotion = target;
  state.texts.set(revision, text);
  state.sentAt.set(revision, performance.now());
  state.lastSent = { text, target };
  let response;
  try {
    response = await fetch("/v1/events", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + state.key },
      body: JSON.stringify(event),
    });
  } catch (err) {
    state.lastSent = null;
    showError(`The gateway is unreachable (${err.message}). Your text is kept and sent when it is back.`, "send");
    state.retryTimer = setTimeout(sendRevision, 3000);
    return;
  }
  if (response.status === 202) {
    state.acceptedAt.set(revision, performance.now());
    clearError("send");
    watchForScore(revision);
    return;
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = { error: "error", detail: `HTTP ${response.status}` };
  }
  showError(describeRefusal(response.status, body), "send");
  if (response.status === 429 || response.status === 503) {
    state.lastSent = null;
    const wait = Number(response.headers.get("Retry-After") || "1");
    state.retryTimer = setTimeout(sendRevision, wait * 1000);
  }
}

function watchForScore(revision) {
  clearTimeout(state.waitTimer);
  state.waitTimer = setTimeout(() => {
    if (state.renderedRevision < revision) {
      showError(
        `No score for revision ${revision} after ${SCORE_WAIT_MS / 1000} s: is a Valence worker running?`,
        "score",
      );
    }
  }, SCORE_WAIT_MS);
}

// --- the live stream -------------------------------------------------------------------------

function connect() {
  if (state.socket) {
    state.socket.onclose = null;
    state.socket.close();
  }
  if (!state.key) {
    setStatus("no API key", "down");
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const path = `/v1/docs/${encodeURIComponent(state.docId)}/stream`;
  let socket;
  try {
    // Browsers cannot set headers on sockets: the key rides in a subprotocol.
    socket = new WebSocket(`${scheme}//${location.host}${path}`, ["valence.v1", "bearer." + state.key]);
  } catch (_) {
    // A key with characters a subprotocol may not hold: use the query parameter.
    socket = new WebSocket(`${scheme}//${location.host}${path}?api_key=${encodeURIComponent(state.key)}`);
  }
  state.socket = socket;
  state.socketOpened = false;
  setStatus("connecting", "");
  socket.onopen = () => {
    state.socketOpened = true;
    state.reconnectDelay = 500;
    setStatus("live", "live");
    clearError("socket");
  };
  socket.onmessage = (message) => {
    let scored;
    try {
      scored = JSON.parse(message.data);
    } catch (_) {
      return;
    }
    handleScored(scored);
  };
  socket.onclose = (close) => {
    const wasOpen = state.socketOpened;
    setStatus("disconnected", "down");
    // A refusal of the text itself says more than the socket's retries: keep it shown.
    const quiet = state.errorSource !== null && state.errorSource !== "socket";
    if (!quiet && !wasOpen) {
      showError(
        "Cannot open the live stream: the gateway is down or refused the API key. Retrying.",
        "socket",
      );
    } else if (!quiet && close.code === 1013) {
      showError("The live stream fell behind and was reset; reconnecting.", "socket");
    }
    setTimeout(connect, state.reconnectDelay);
    state.reconnectDelay = Math.min(state.reconnectDelay * 2, 8000);
  };
}

// --- rendering scored events -----------------------------------------------------------------

function handleScored(scored) {
  if (scored.doc_id !== state.docId) return;
  state.history.push({
    revision: scored.revision,
    valence: scored.sentiment.valence,
    emotion: scored.emotion.label,
  });
  state.history.sort((a, b) => a.revision - b.revision);
  drawChart();
  const text = state.texts.get(scored.revision);
  if (text === undefined || scored.revision < state.renderedRevision) return;
  state.renderedRevision = scored.revision;
  renderSummary(scored);
  renderText(scored, text);
  renderSuggestions(scored, text);
  clearError("score");
  document.body.dataset.renderedRevision = String(scored.revision);
  window.valence.timings.push({
    revision: scored.revision,
    sent_ms: state.sentAt.get(scored.revision),
    accepted_ms: state.acceptedAt.get(scored.revision),
    rendered_ms: performance.now(),
    worker_queued_ms: scored.timings.queued_ms,
    worker_inference_ms: scored.timings.inference_ms,
  });
}

function pct(p) {
  return Math.round(p * 100) + "%";
}

function renderSummary(scored) {
  const e = scored.emotion;
  const s = scored.sentiment;
  const valence = (s.valence >= 0 ? "+" : "") + s.valence.toFixed(2);
  $("summary").textContent =
    `Overall: ${e.label} (intensity ${pct(e.intensity)}), ${s.label} (valence ${valence}), ` +
    `revision ${scored.revision}.`;
}

// Character ranges of the words carrying the emotion and the sentiment, merged.
function attributionRanges(scored) {
  const ranges = [];
  for (const attribution of scored.attributions || []) {
    for (const span of attribution.spans) ranges.push([span.start, span.end]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
    else merged.push([range[0], range[1]]);
  }
  return merged;
}

function appendWithUnderlines(parent, text, start, end, ranges) {
  let at = start;
  for (const [from, to] of ranges) {
    if (to <= at || from >= end) continue;
    const a = Math.max(from, at);
    const b = Math.min(to, end);
    if (a > at) parent.append(text.slice(at, a));
    const u = document.createElement("u");
    u.className = "attribution";
    u.textContent = text.slice(a, b);
    parent.append(u);
    at = b;
  }
  if (at < end) parent.append(text.slice(at, end));
}

function renderText(scored, text) {
  const box = $("scored-text");
  box.replaceChildren();
  const ranges = attributionRanges(scored);
  let at = 0;
  scored.sentences.forEach((sentence, index) => {
    if (sentence.start > at) box.append(text.slice(at, sentence.start));
    const span = document.createElement("span");
    span.className = `sentence emo-${sentence.emotion.label}`;
    span.dataset.emotion = sentence.emotion.label;
    span.dataset.sentiment = sentence.sentiment.label;
    span.dataset.index = String(index);
    appendWithUnderlines(span, text, sentence.start, sentence.end, ranges);
    const mark = document.createElement("span");
    mark.className = `sentiment ${sentence.sentiment.label}`;
    const v = sentence.sentiment.valence;
    mark.textContent = (v >= 0 ? "+" : "") + v.toFixed(2);
    mark.title = `sentiment ${sentence.sentiment.label}`;
    span.append(mark);
    span.addEventListener("mouseenter", (ev) => showTooltip(ev, sentence));
    span.addEventListener("mousemove", moveTooltip);
    span.addEventListener("mouseleave", hideTooltip);
    box.append(span);
    at = sentence.end;
  });
  if (at < text.length) box.append(text.slice(at));
}

function renderSuggestions(scored, text) {
  const box = $("suggestions");
  box.replaceChildren();
  if (!scored.target_emotion) return;
  const list = scored.suggestions || [];
  if (!list.length) {
    box.textContent = `No rewrite moves this text toward ${scored.target_emotion} yet.`;
    return;
  }
  const label = document.createElement("div");
  label.textContent = `Toward ${scored.target_emotion}:`;
  box.append(label);
  for (const suggestion of list) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "suggestion";
    button.textContent =
      `${suggestion.original} \u2192 ${suggestion.replacement} ` +
      `(${pct(suggestion.probability)} ${suggestion.target})`;
    button.addEventListener("click", () => applySuggestion(suggestion, text));
    box.append(button);
  }
}

function applySuggestion(suggestion, scoredText) {
  const current = editor.value;
  let start = suggestion.start;
  if (current.slice(start, suggestion.end) !== suggestion.original || current.length !== scoredText.length) {
    // The writer kept typing: apply it where the original words now are, nearest first.
    const found = [];
    let at = current.indexOf(suggestion.original);
    while (at >= 0) {
      found.push(at);
      at = current.indexOf(suggestion.original, at + 1);
    }
    if (!found.length) {
      showError(`"${suggestion.original}" is no longer in the text; the suggestion was not applied.`, "apply");
      return;
    }
    found.sort((a, b) => Math.abs(a - suggestion.start) - Math.abs(b - suggestion.start));
    start = found[0];
  }
  const end = start + suggestion.original.length;
  editor.value = current.slice(0, start) + suggestion.replacement + current.slice(end);
  clearError("apply");
  clearTimeout(state.pauseTimer);
  sendRevision();
}

// --- tooltip ---------------------------------------------------------------------------------

function probabilityRows(table, title, probabilities) {
  const head = document.createElement("tr");
  const th = document.createElement("th");
  th.colSpan = 3;
  th.textContent = title;
  head.append(th);
  table.append(head);
  const entries = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of entries) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = label;
    const value = document.createElement("td");
    value.textContent = pct(p);
    const barCell = document.createElement("td");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.round(p * 80) + "px";
    barCell.append(bar);
    row.append(name, value, barCell);
    table.append(row);
  }
}

function showTooltip(ev, sentence) {
  const tip = $("tooltip");
  tip.replaceChildren();
  const table = document.createElement("table");
  probabilityRows(table, `emotion: ${sentence.emotion.label}`, sentence.emotion.probabilities);
  probabilityRows(table, `sentiment: ${sentence.sentiment.label}`, sentence.sentiment.probabilities);
  tip.append(table);
  tip.hidden = false;
  moveTooltip(ev);
}

function moveTooltip(ev) {
  const tip = $("tooltip");
  tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
  tip.style.top = ev.clientY + 16 + "px";
}

function hideTooltip() {
  $("tooltip").hidden = true;
}

// --- chart -----------------------------------------------------------------------------------

function svg(name, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function drawChart() {
  const chart = $("chart");
  chart.replaceChildren();
  const points = state.history.slice(-CHART_POINTS);
  const left = 28, right = 350, top = 10, bottom = 100;
  const y = (valence) => top + ((1 - valence) / 2) * (bottom - top);
  const x = (i) => (points.length < 2 ? (left + right) / 2 : left + (i * (right - left)) / (points.length - 1));
  chart.append(svg("line", { class: "axis", x1: left, x2: right, y1: y(0), y2: y(0) }));
  for (const [label, v] of [["+1", 1], ["0", 0], ["-1", -1]]) {
    const t = svg("text", { x: 4, y: y(v) + 3 });
    t.textContent = label;
    chart.append(t);
  }
  const caption = svg("text", { x: left, y: 116 });
  caption.textContent = "valence (line) and emotion (dots) per revision";
  chart.append(caption);
  if (!points.length) return;
  chart.append(
    svg("polyline", {
      class: "valence",
      points: points.map((p, i) => `${x(i).toFixed(1)},${y(p.valence).toFixed(1)}`).join(" "),
    }),
  );
  points.forEach((p, i) => {
    const dot = svg("circle", { class: `dot dot-${p.emotion}`, cx: x(i), cy: y(p.valence), r: 4 });
    const title = svg("title", {});
    title.textContent = `revision ${p.revision}: ${p.emotion}, valence ${p.valence.toFixed(2)}`;
    dot.append(title);
    chart.append(dot);
  });
}

// --- start -----------------------------------------------------------------------------------

function start() {
  // A key in the URL fragment (printed by `valence gateway`) is kept, then removed from view.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("key")) {
    localStorage.setItem("valence.apiKey", fragment.get("key"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  state.key = localStorage.getItem("valence.apiKey") || "";
  keyInput.value = state.key;
  const query = new URLSearchParams(location.search);
  state.docId = query.get("doc") || randomId("doc-");
  $("doc-id").textContent = state.docId;
  keyInput.addEventListener("change", () => {
    state.key = keyInput.value.trim();
    localStorage.setItem("valence.apiKey", state.key);
    clearError("send");
    state.lastSent = null;
    connect();
    scheduleSend();
  });
  editor.addEventListener("input", scheduleSend);
  targetSelect.addEventListener("change", () => {
    state.lastSent = null;
    sendRevision();
  });
  drawChart();
  connect();
}


start();
