// attnsteer playground: select words to emphasise, run plain vs steered, show the attention view.
// Plain JS, no build step. Emphasis is sent as {start, end} character spans of the prompt text.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { spans: [], model: null };

function mergeSpans(spans) {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const merged = [];
  for (const span of sorted) {
    const last = merged[merged.length - 1];
    if (last && span.start <= last.end) last.end = Math.max(last.end, span.end);
    else merged.push({ ...span });
  }
  return merged;
}

function renderTextView() {
  const text = $("prompt-input").value;
  const view = $("text-view");
  view.textContent = "";
  let cursor = 0;
  for (const span of state.spans) {
    view.append(document.createTextNode(text.slice(cursor, span.start)));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(span.start, span.end);
    view.append(mark);
    cursor = span.end;
  }
  view.append(document.createTextNode(text.slice(cursor)));
  const list = $("span-list");
  list.textContent = state.spans.length ? "Emphasised: " : "Nothing emphasised yet.";
  for (const span of state.spans) {
    const code = document.createElement("code");
    code.textContent = text.slice(span.start, span.end);
    list.append(code);
  }
}

// Character offset of (node, offset) inside the text view.
function offsetInView(node, offset) {
  const range = document.createRange();
  range.setStart($("text-view"), 0);
  range.setEnd(node, offset);
  return range.toString().length;
}

// Grow a selection to whole words (a drag that starts or ends inside a word takes the word).
function snapToWords(text, start, end) {
  while (start > 0 && !/\s/.test(text[start - 1])) start -= 1;
  while (end < text.length && !/\s/.test(text[end])) end += 1;
  while (start < end && /\s/.test(text[start])) start += 1;
  while (end > start && /\s/.test(text[end - 1])) end -= 1;
  return { start, end };
}

function onSelect() {
  const selection = window.getSelection();
  if (!selection || selection.isCollapsed || selection.rangeCount === 0) return;
  const range = selection.getRangeAt(0);
  const view = $("text-view");
  if (!view.contains(range.startContainer) || !view.contains(range.endContainer)) return;
  const text = $("prompt-input").value;
  const span = snapToWords(text, offsetInView(range.startContainer, range.startOffset),
                           offsetInView(range.endContainer, range.endOffset));
  selection.removeAllRanges();
  if (span.end <= span.start) return;
  state.spans = mergeSpans([...state.spans, span]);
  renderTextView();
}

async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? `${data.error.param || "request"}: ${data.error.message}` : response.statusText);
  return data;
}

function steeringFields() {
  const fields = { emphasis: state.spans.map(({ start, end }) => ({ start, end })), alpha: Number($("alpha").value) };
  if ($("heads").value) fields.heads = $("heads").value;
  return fields;
}

async function run() {
  const error = $("error");
  error.hidden = true;
  if (!state.spans.length) {
    error.textContent = "Select some words in the text first: they are what the steered model attends to.";
    error.hidden = false;
    return;
  }
  const prompt = $("prompt-input").value;
  const base = { model: state.model, prompt, max_tokens: Number($("max-tokens").value), temperature: 0 };
  $("run").disabled = true;
  $("plain-output").textContent = $("steered-output").textContent = "…";
  try {
    // Sent together, so the server decodes both rows in one batch.
    const [plain, steered] = await Promise.all([
      postJSON("/v1/completions", base),
      postJSON("/v1/completions", { ...base, ...steeringFields() }),
    ]);
    $("plain-output").textContent = plain.choices[0].text;
    $("steered-output").textContent = steered.choices[0].text;
    renderAttention(await postJSON("/v1/attention", { prompt, ...steeringFields() }));
  } catch (problem) {
    error.textContent = problem.message;
    error.hidden = false;
  } finally {
    $("run").disabled = false;
  }
}

function bar(kind, share) {
  const track = document.createElement("div");
  track.className = "bar-track";
  const fill = document.createElement("div");
  fill.className = `bar ${kind}`;
  fill.style.width = `${(100 * share).toFixed(1)}%`;
  track.append(fill);
  return track;
}

function attentionRow(label, kind, share) {
  const row = document.createElement("div");
  row.className = `attention-row ${kind}-row`;
  const name = document.createElement("span");
  name.textContent = label;
  const value = document.createElement("span");
  value.textContent = `${(100 * share).toFixed(1)}%`;
  row.append(name, bar(kind, share), value);
  return row;
}

function heatStrip(title, tokens, weights, emphasis) {
  const label = document.createElement("div");
  label.className = "strip-label";
  label.textContent = title;
  const strip = document.createElement("div");
  strip.className = "heat-strip";
  const top = Math.max(...weights.slice(1)) || 1;  // scale without the first token (an attention sink)
  tokens.forEach((token, index) => {
    const cell = document.createElement("span");
    const level = Math.min(1, weights[index] / top);
    cell.textContent = token;
    cell.title = `${(100 * weights[index]).toFixed(2)}%`;
    cell.style.background = `rgba(239, 138, 23, ${level.toFixed(3)})`;
    if (emphasis[index]) cell.classList.add("emphasised");
    strip.append(cell);
  });
  return [label, strip];
}

function renderAttention(view) {
  const target = $("attention-view");
  target.textContent = "";
  for (const layer of view.layers) {
    layer.heads.forEach((head, index) => {
      target.append(attentionRow(`L${layer.layer} h${head} plain`, "plain", layer.plain[index]));
      target.append(attentionRow(`L${layer.layer} h${head} steered`, "steered", layer.steered[index]));
    });
  }
  target.append(...heatStrip("last token, plain", view.tokens, view.last_token.plain, view.emphasis));
  target.append(...heatStrip("last token, steered", view.tokens, view.last_token.steered, view.emphasis));
}

async function init() {
  $("prompt-input").addEventListener("input", () => { state.spans = []; renderTextView(); });
  $("text-view").addEventListener("mouseup", onSelect);
  $("clear-spans").addEventListener("click", () => { state.spans = []; renderTextView(); });
  $("run").addEventListener("click", run);
  renderTextView();
  const models = await (await fetch("/v1/models")).json();
  state.model = models.data[0].id;
  $("model-name").textContent = state.model;
}

init();
