// attnsteer playground: select words to emphasise, run plain vs steered, show the attention view.
// Plain JS, no build step. Two modes: a completion (one prompt, through /v1/completions, plus the attention
// view) and a chat (a system and a user message, through /v1/chat/completions). Emphasis is sent as
// {start, end} character spans of the prompt text, or of each message's content. Two steering pickers (a
// method and its strength, from /v1/playground/info): the steered column, and an optional second column to
// compare methods side by side; each request carries its `steering` object.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, mode: "completion", fields: {}, pickers: [] };
const MAX_HEAD_ROWS = 8;  // more steered heads than this: the attention view shows each layer's mean

// One text the user can emphasise words in (a `.emphasis-field` block): its textarea, the view where words
// are selected, the list of emphasised words, and the spans [{start, end}] of the textarea's text.
function emphasisField(root) {
  const field = {
    input: root.querySelector("textarea"), view: root.querySelector(".text-view"),
    list: root.querySelector(".span-list"), spans: [],
  };
  const clear = () => { field.spans = []; renderTextView(field); };
  field.input.addEventListener("input", clear);
  root.querySelector(".clear-spans").addEventListener("click", clear);
  field.view.addEventListener("mouseup", () => onSelect(field));
  renderTextView(field);
  return field;
}

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

function renderTextView(field) {
  const text = field.input.value;
  field.view.textContent = "";
  let cursor = 0;
  for (const span of field.spans) {
    field.view.append(document.createTextNode(text.slice(cursor, span.start)));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(span.start, span.end);
    field.view.append(mark);
    cursor = span.end;
  }
  field.view.append(document.createTextNode(text.slice(cursor)));
  field.list.textContent = field.spans.length ? "Emphasised: " : "Nothing emphasised yet.";
  for (const span of field.spans) {
    const code = document.createElement("code");
    code.textContent = text.slice(span.start, span.end);
    field.list.append(code);
  }
}

// Character offset of (node, offset) inside a text view.
function offsetInView(view, node, offset) {
  const range = document.createRange();
  range.setStart(view, 0);
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

function onSelect(field) {
  const selection = window.getSelection();
  if (!selection || selection.isCollapsed || selection.rangeCount === 0) return;
  const range = selection.getRangeAt(0);
  const view = field.view;
  if (!view.contains(range.startContainer) || !view.contains(range.endContainer)) return;
  const span = snapToWords(field.input.value, offsetInView(view, range.startContainer, range.startOffset),
                           offsetInView(view, range.endContainer, range.endOffset));
  selection.removeAllRanges();
  if (span.end <= span.start) return;
  field.spans = mergeSpans([...field.spans, span]);
  renderTextView(field);
}

const emphasisOf = (field) => field.spans.map(({ start, end }) => ({ start, end }));

async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? `${data.error.param || "request"}: ${data.error.message}` : response.statusText);
  return data;
}

// One steering picker (a `.steering-picker` fieldset filled from the #steering-picker template): a method
// select and each method's strength fields, shown for the chosen method. `methods` and `preset` come from
// /v1/playground/info: the methods with their parameters' defaults, and the server's default steering.
// Its fields get the ids `${prefix}${parameter}` ("alpha", "compare-boost", ...).
function steeringPicker(root, methods, preset) {
  root.append($("steering-picker").content.cloneNode(true));
  const inputs = {};
  for (const node of root.querySelectorAll("[data-param]")) {
    inputs[node.dataset.param] = node;
    node.id = root.dataset.prefix + node.dataset.param;
  }
  if (root.hasAttribute("data-optional")) inputs.method.append(new Option("none", ""));
  for (const method of methods) {
    inputs.method.append(new Option(method.name, method.name));
    setValues(inputs, method.parameters);
  }
  if (preset) setValues(inputs, preset);
  inputs.method.value = root.hasAttribute("data-optional") ? "" : (preset ? preset.method : methods[0].name);
  const show = () => {
    for (const label of root.querySelectorAll("[data-method]")) label.hidden = label.dataset.method !== inputs.method.value;
  };
  inputs.method.addEventListener("change", show);
  show();
  // {method, <its parameters shown here>}, or null when no method is chosen.
  const steering = () => {
    const method = methods.find((item) => item.name === inputs.method.value);
    if (!method) return null;
    const chosen = { method: method.name };
    for (const name of Object.keys(method.parameters)) {
      const input = inputs[name];
      if (input && input.value !== "") chosen[name] = input.type === "number" ? Number(input.value) : input.value;
    }
    return chosen;
  };
  return { steering };
}

// Fill the inputs a parameter set names (heads stay "server default": the preset's heads are the server's).
function setValues(inputs, values) {
  for (const [name, value] of Object.entries(values)) {
    if (name !== "method" && name !== "heads" && inputs[name] && value !== null) inputs[name].value = value;
  }
}

// "instaboost (boost 5)" for {method: "instaboost", boost: 5}.
function describe(steering) {
  const values = Object.entries(steering).filter(([name]) => name !== "method");
  return values.length ? `${steering.method} (${values.map(([k, v]) => `${k} ${v}`).join(", ")})` : steering.method;
}

// The chat's messages (an empty system message is left out); with `steered`, each carries its emphasis.
function chatMessages(steered) {
  const messages = [];
  for (const role of ["system", "user"]) {
    const field = state.fields[role];
    if (role === "system" && !field.input.value.trim()) continue;
    const message = { role, content: field.input.value };
    if (steered && field.spans.length) message.emphasis = emphasisOf(field);
    messages.push(message);
  }
  return messages;
}

// What each mode sends: its endpoint, its emphasised fields, the plain and steered bodies, and the reply.
const MODES = {
  completion: {
    path: "/v1/completions",
    fields: () => [state.fields.prompt],
    plain: () => ({ prompt: state.fields.prompt.input.value }),
    steered: () => ({ prompt: state.fields.prompt.input.value, emphasis: emphasisOf(state.fields.prompt) }),
    reply: (body) => body.choices[0].text,
  },
  chat: {
    path: "/v1/chat/completions",
    fields: () => [state.fields.system, state.fields.user],
    plain: () => ({ messages: chatMessages(false) }),
    steered: () => ({ messages: chatMessages(true) }),
    reply: (body) => body.choices[0].message.content,
  },
};

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

// The columns to run: plain, then one per chosen steering ({output, title, steering}).
function columns() {
  const chosen = state.pickers.map((picker) => picker.steering());
  return [
    { output: "plain-output", steering: null },
    { output: "steered-output", title: "steered-title", steering: chosen[0] },
    ...(chosen[1] ? [{ output: "compare-output", title: "compare-title", steering: chosen[1] }] : []),
  ];
}

async function run() {
  $("error").hidden = true;
  const mode = MODES[state.mode];
  if (!state.pickers.length) {
    showError("The server did not say which steering methods it offers; reload the page.");
    return;
  }
  if (!mode.fields().some((field) => field.spans.length)) {
    showError("Select some words in the text first: they are what the steered model attends to.");
    return;
  }
  const base = { model: state.model, max_tokens: Number($("max-tokens").value), temperature: 0 };
  const runs = columns();
  $("compare-column").hidden = runs.length < 3;
  for (const column of runs) {
    $(column.output).textContent = "…";
    if (column.title) $(column.title).textContent = describe(column.steering);
  }
  $("run").disabled = true;
  try {
    // Sent together, so the server decodes the rows in one batch (each with its own method).
    const bodies = runs.map((column) => column.steering
      ? { ...base, ...mode.steered(), steering: column.steering } : { ...base, ...mode.plain() });
    const replies = await Promise.all(bodies.map((body) => postJSON(mode.path, body)));
    runs.forEach((column, index) => { $(column.output).textContent = mode.reply(replies[index]); });
    if (state.mode === "completion") {
      renderAttention(await postJSON("/v1/attention", { ...MODES.completion.steered(), steering: runs[1].steering }));
    }
  } catch (problem) {
    showError(problem.message);
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

const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;

function renderAttention(view) {
  const target = $("attention-view");
  target.textContent = "";
  const perHead = view.layers.reduce((count, layer) => count + layer.heads.length, 0) <= MAX_HEAD_ROWS;
  for (const layer of view.layers) {
    if (!perHead) {
      const label = `L${layer.layer} (${layer.heads.length} heads)`;
      target.append(attentionRow(`${label} plain`, "plain", mean(layer.plain)));
      target.append(attentionRow(`${label} steered`, "steered", mean(layer.steered)));
      continue;
    }
    layer.heads.forEach((head, index) => {
      target.append(attentionRow(`L${layer.layer} h${head} plain`, "plain", layer.plain[index]));
      target.append(attentionRow(`L${layer.layer} h${head} steered`, "steered", layer.steered[index]));
    });
  }
  target.append(...heatStrip("last token, plain", view.tokens, view.last_token.plain, view.emphasis));
  target.append(...heatStrip("last token, steered", view.tokens, view.last_token.steered, view.emphasis));
}

function setMode(mode) {
  state.mode = mode;
  for (const tab of document.querySelectorAll(".mode-tabs [role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  }
  $("completion-mode").hidden = mode !== "completion";
  $("chat-mode").hidden = mode !== "chat";
  $("attention-panel").hidden = mode !== "completion";
  for (const output of ["plain-output", "steered-output", "compare-output"]) $(output).textContent = "";
  $("error").hidden = true;
}

// The served model, whether it has a chat template (chat mode is the default when it has one), and the
// steering methods with the server's default, which the pickers start from.
async function showModel() {
  const info = await (await fetch("/v1/playground/info")).json();
  state.model = info.model;
  state.pickers = ["steering-a", "steering-b"].map((id) => steeringPicker($(id), info.steering_methods,
                                                                            info.steering_default));
  $("model-name").textContent = info.model;
  $("model-kind").textContent = info.chat_template
    ? "chat model: uses its chat template"
    : "base model: chat uses a plain System/User/Assistant template";
  setMode(info.chat_template ? "chat" : "completion");
}

async function init() {
  for (const root of document.querySelectorAll(".emphasis-field")) {
    state.fields[root.dataset.field] = emphasisField(root);
  }
  for (const tab of document.querySelectorAll(".mode-tabs [role=tab]")) {
    tab.addEventListener("click", () => setMode(tab.dataset.mode));
  }
  $("run").addEventListener("click", run);
  try {
    await showModel();
  } catch (problem) {
    showError(`Could not ask the server which model it serves: ${problem.message}`);
  }
}

init();
