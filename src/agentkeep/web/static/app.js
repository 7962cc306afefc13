// agentkeep's web UI: forms that call the JSON API, and the chat stream. Plain JS, no framework.
//
// Forms: <form data-api="METHOD /api/v1/path/{field}" data-then="reload | /path/{id}">. Fields
// become the JSON body (a name with dots nests: model_settings.history_messages); {field} in the
// path takes that field's value instead. data-type="json" | "int" | "number" converts a field;
// data-empty holds the JSON sent for an empty field (otherwise an empty field is left out). An
// API error {"error": {code, message, field}} is shown next to the field it names, or at the
// form's foot.
//
// Text from users and models is only ever set with textContent.
"use strict";

// With API keys on, the page never holds a key: the browser sends the sign-in cookie, and each
// call carries the session's CSRF token, which the server gives the page (web/access.py).
const csrfToken = document.querySelector('meta[name="agentkeep-csrf"]')?.content ?? "";

function headers(json) {
  const result = json ? { "content-type": "application/json" } : {};
  if (csrfToken) result["x-csrf-token"] = csrfToken;
  return result;
}

class ApiError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.field = error.field ?? "";
  }
}

async function apiError(response) {
  let error = { code: `http_${response.status}`, message: `${response.status} ${response.statusText}` };
  try {
    const body = await response.json();
    if (body?.error?.message) error = body.error;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(error);
}

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await apiError(response);
  return response.status === 204 ? null : response.json();
}

// -- times ---------------------------------------------------------------------------------

// The server writes each moment as <time datetime="…ISO…"> with a UTC fallback; every one,
// rendered or streamed, is shown here in the reader's locale and time zone, in one format, with
// the full timestamp on hover.
const shortTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const fullTime = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

function showTime(node) {
  const moment = new Date(node.dateTime);
  if (Number.isNaN(moment.getTime())) return; // keep the server's text
  node.textContent = shortTime.format(moment);
  node.title = fullTime.format(moment);
}

function showTimes(root) {
  for (const node of root.querySelectorAll("time[datetime]")) showTime(node);
}

function timeElement(moment) {
  const node = document.createElement("time");
  node.dateTime = moment.toISOString();
  showTime(node);
  return node;
}

showTimes(document);

// -- forms ---------------------------------------------------------------------------------

function fieldValue(element) {
  if (element.type === "checkbox") return { value: element.checked };
  const raw = element.value;
  if (raw.trim() === "") {
    return "empty" in element.dataset ? { value: JSON.parse(element.dataset.empty) } : null;
  }
  if (element.dataset.type === "json") {
    try {
      return { value: JSON.parse(raw) };
    } catch (error) {
      throw new ApiError({ code: "invalid_json", message: `not valid JSON: ${error.message}`, field: element.name });
    }
  }
  if (element.dataset.type === "int") return { value: /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw };
  if (element.dataset.type === "number") {
    const number = Number(raw.trim());
    return { value: Number.isFinite(number) ? number : raw };
  }
  return { value: raw };
}

function setPath(body, name, value) {
  const parts = name.split(".");
  let target = body;
  for (const part of parts.slice(0, -1)) {
    if (typeof target[part] !== "object" || target[part] === null) target[part] = {};
    target = target[part];
  }
  target[parts.at(-1)] = value;
}

function formRequest(form) {
  const [method, template] = form.dataset.api.split(" ");
  const body = {};
  const used = new Set();
  const url = template.replace(/\{(\w+)\}/g, (_, name) => {
    used.add(name);
    return encodeURIComponent(form.elements.namedItem(name)?.value ?? "");
  });
  const fields = [...form.elements].filter((e) => e.name && !e.disabled && !used.has(e.name));
  // whole documents first, then the dotted fields that go into them
  fields.sort((a, b) => a.name.includes(".") - b.name.includes("."));
  for (const element of fields) {
    const found = fieldValue(element);
    if (found !== null) setPath(body, element.name, found.value);
  }
  const sent = method === "DELETE" || (method === "POST" && fields.length === 0) ? undefined : body;
  return { method, url, body: sent };
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}

function errorSlot(form, field) {
  const names = field ? [field, field.split(".")[0]] : [];
  for (const name of names) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) return { slot, input: form.elements.namedItem(name) };
  }
  return { slot: form.querySelector('[data-error-for=""]'), input: null };
}

function showError(form, error) {
  const { slot, input } = errorSlot(form, error.field);
  const text = error instanceof ApiError ? error.message : `The request failed: ${error.message}`;
  if (slot) slot.textContent = text;
  else window.alert(text);
  if (input instanceof HTMLElement) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

function after(form, result) {
  const then = form.dataset.then ?? "reload";
  if (then === "reload") {
    window.location.reload();
  } else {
    window.location.assign(then.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(result?.[name] ?? "")));
  }
}

async function submitForm(form) {
  clearErrors(form);
  const buttons = form.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const { method, url, body } = formRequest(form);
    const result = await api(method, url, body);
    after(form, result);
  } catch (error) {
    showError(form, error);
  } finally {
    for (const button of buttons) button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  event.preventDefault();
  submitForm(form);
});

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-opens]");
  if (opener) document.getElementById(opener.dataset.opens)?.showModal();
  const closer = event.target.closest("[data-closes]");
  if (closer) closer.closest("dialog")?.close();
});

// -- config: export and import a project file ---------------------------------------------

// Export downloads the store as a project file. Import previews a file with a dry-run sync (what
// would be created, updated or deleted, as a table) and syncs it only when the preview is
// confirmed; the file is read once, so the sync writes exactly what was previewed.
const CONFIG_KINDS = ["personas", "modules", "tools", "agents", "workflows"];
const CONFIG_CHANGES = [
  ["created", "create"],
  ["updated", "update"],
  ["deleted", "delete"],
];
let pendingImport = null; // { project, prune, name } once previewed

function download(name, text) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

async function exportConfig(button) {
  const slot = document.getElementById("config-export-error");
  slot.textContent = "";
  button.disabled = true;
  try {
    const project = await api("GET", "/api/v1/config/export");
    download("agentkeep-project.json", `${JSON.stringify(project, null, 2)}\n`);
  } catch (error) {
    slot.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

function configChanges(report) {
  const rows = [];
  for (const kind of CONFIG_KINDS) {
    const result = report[kind];
    for (const [list, change] of CONFIG_CHANGES) {
      for (const name of result[list]) {
        const fields = change === "update" ? (result.changed_fields[name] ?? []).join(", ") : "";
        rows.push([change, kind, name, fields]);
      }
    }
  }
  return rows;
}

function changeRow([change, kind, name, fields]) {
  const row = document.createElement("tr");
  const badge = element("span", `badge change-${change}`, change);
  const first = document.createElement("td");
  first.append(badge);
  row.append(first, element("td", "", kind), element("td", "", name), element("td", "", fields));
  return row;
}

function resetImport() {
  pendingImport = null;
  document.getElementById("config-preview").hidden = true;
  document.getElementById("config-result").textContent = "";
}

async function readProject(file) {
  try {
    return JSON.parse(await file.text());
  } catch (error) {
    throw new ApiError({ code: "invalid_json", message: `${file.name} is not valid JSON: ${error.message}`, field: "file" });
  }
}

async function previewImport(form) {
  clearErrors(form);
  resetImport();
  const file = form.elements.namedItem("file").files[0];
  if (!file) return;
  const prune = form.elements.namedItem("prune").checked;
  form.setAttribute("aria-busy", "true");
  try {
    const project = await readProject(file);
    const report = await api("POST", `/api/v1/config/sync?dry_run=true&prune=${prune}`, project);
    const rows = configChanges(report);
    document.getElementById("config-preview-rows").replaceChildren(...rows.map(changeRow));
    document.getElementById("config-preview-summary").textContent = rows.length
      ? `${file.name}: ${rows.length} change${rows.length === 1 ? "" : "s"} to make.`
      : `${file.name}: no changes, the store already declares what the file does.`;
    document.getElementById("config-apply").hidden = rows.length === 0;
    document.getElementById("config-preview").hidden = false;
    pendingImport = { project, prune, name: file.name };
  } catch (error) {
    showError(form, error);
  } finally {
    form.removeAttribute("aria-busy");
  }
}

async function applyImport(button) {
  if (!pendingImport) return;
  const { project, prune, name } = pendingImport;
  const result = document.getElementById("config-result");
  button.disabled = true;
  try {
    const report = await api("POST", `/api/v1/config/sync?prune=${prune}`, project);
    const changes = configChanges(report).length;
    resetImport();
    result.textContent = `Synced ${name}: ${changes} change${changes === 1 ? "" : "s"} written.`;
  } catch (error) {
    result.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !("configImport" in form.dataset)) return;
  event.preventDefault();
  previewImport(form);
});

document.addEventListener("change", (event) => {
  if (event.target.closest?.("[data-config-import]")) resetImport();
});

document.addEventListener("click", (event) => {
  const target = event.target.closest?.("[data-config-export], [data-config-apply], [data-config-cancel]");
  if (!target) return;
  if ("configExport" in target.dataset) exportConfig(target);
  else if ("configApply" in target.dataset) applyImport(target);
  else resetImport();
});

// -- chat ----------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function tokensText(data) {
  if (data.input_tokens == null && data.output_tokens == null) return "";
  return `${data.input_tokens ?? 0} in · ${data.output_tokens ?? 0} out tokens`;
}

// A message bubble, built like partials/bubble.html renders a stored one.
function bubble(role, text) {
  const who = { user: "You", assistant: "Agent" }[role];
  const node = element("article", `msg role-${role} status-${role === "user" ? "complete" : "streaming"}`);
  const head = element("header", "msg-head");
  head.append(element("span", "who", who), " ", timeElement(new Date()));
  const thinking = element("details", "thinking");
  thinking.hidden = true;
  thinking.append(element("summary", "", "Thinking"), element("div", "thinking-text"));
  const calls = element("div", "calls");
  const content = element("div", "content", text);
  const meta = element("footer", "msg-meta");
  node.append(head, thinking, calls, content, meta);
  return node;
}

// The memories a reply was given, as partials/bubble.html shows a stored reply's.
function remembered(memories) {
  const details = element("details", "remembered");
  details.append(element("summary", "", `Remembered (${memories.length})`));
  const list = element("ul");
  for (const memory of memories) {
    const item = element("li");
    item.append(element("span", "memory-text", memory.content), " ", element("span", "score", Number(memory.score).toFixed(2)));
    list.append(item);
  }
  details.append(list);
  return details;
}

function setStatus(node, status, detail) {
  node.className = node.className.replace(/status-\w+/, `status-${status}`);
  const meta = node.querySelector(".msg-meta");
  meta.replaceChildren();
  if (status !== "complete") meta.append(element("span", `badge status-${status}`, status));
  if (detail) meta.append(element("span", "tokens", detail));
}

function parseFrame(frame) {
  let event = "message";
  const data = [];
  for (const line of frame.split(/\r\n|\n|\r/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: JSON.parse(data.join("\n")) } : null;
}

// Server-Sent Events from a fetch() response (EventSource cannot POST).
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const frames = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = frames.pop();
    for (const frame of frames) {
      const parsed = parseFrame(frame);
      if (parsed) onEvent(parsed.event, parsed.data);
    }
  }
}

function setupChat(chat) {
  const messages = chat.querySelector("#messages");
  const form = chat.querySelector("#composer");
  const input = form.querySelector("#message-input");
  const send = form.querySelector("#send-button");
  const stop = form.querySelector("#stop-button");
  const agentId = chat.dataset.agentId;
  let controller = null;

  const nearBottom = () => messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  const follow = (wasNear) => {
    if (wasNear) messages.scrollTop = messages.scrollHeight;
  };
  messages.scrollTop = messages.scrollHeight;

  function started(data) {
    if (chat.dataset.conversationId) return;
    const id = data.conversation_id;
    chat.dataset.conversationId = id;
    window.history.replaceState(null, "", `/chat/${agentId}?conversation=${id}`);
    const link = chat.querySelector("#conversation-link");
    link.href = `/conversations/${id}`;
    link.hidden = false;
    const item = element("li");
    const anchor = element("a", "", input.dataset.sent.slice(0, 80));
    anchor.href = `/chat/${agentId}?conversation=${id}`;
    anchor.setAttribute("aria-current", "page");
    item.append(anchor);
    document.getElementById("conversation-list")?.prepend(item);
  }

  function handle(reply, event, data) {
    const wasNear = nearBottom();
    if (event === "message_start") {
      started(data);
      reply.id = `message-${data.message_id}`;
    } else if (event === "thinking") {
      const details = reply.querySelector(".thinking");
      details.hidden = false;
      details.querySelector(".thinking-text").textContent += data.text;
    } else if (event === "tool_call") {
      const call = element("div", "tool-call");
      call.dataset.call = data.id;
      const line = element("div", "", "Called ");
      line.append(element("code", "", data.name), " ", element("code", "args", JSON.stringify(data.arguments ?? {})));
      call.append(line);
      reply.querySelector(".calls").append(call);
    } else if (event === "tool_result") {
      const result = element("div", `tool-result${data.is_error ? " is-error" : ""}`);
      result.append(element("span", "label", "Result"), ` ${data.content}`);
      const call = [...reply.querySelectorAll(".tool-call")].find((c) => c.dataset.call === data.id);
      (call ?? reply.querySelector(".calls")).append(result);
    } else if (event === "token") {
      reply.querySelector(".content").textContent += data.text;
    } else if (event === "message_end") {
      setStatus(reply, data.status, tokensText(data));
      if (Array.isArray(data.memories) && data.memories.length) reply.append(remembered(data.memories));
    } else if (event === "error") {
      setStatus(reply, "error", data.message);
    }
    follow(wasNear);
  }

  function showComposerError(error) {
    const slot = form.querySelector('[data-error-for="content"]');
    slot.textContent = error.message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  async function turn(content) {
    const conversationId = chat.dataset.conversationId;
    const url = conversationId ? "/api/v1/streaming/send" : "/api/v1/streaming/start";
    const body = conversationId
      ? { conversation_id: conversationId, content }
      : { agent_id: agentId, user_id: "web", content };
    document.getElementById("empty-chat")?.remove();
    const mine = bubble("user", content);
    const reply = bubble("assistant", "");
    messages.append(mine, reply);
    messages.scrollTop = messages.scrollHeight;
    controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    let ended = false;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: headers(true),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        mine.remove();
        reply.remove();
        input.value = content;
        showComposerError(await apiError(response));
        return;
      }
      await readEvents(response, (event, data) => {
        ended ||= event === "message_end" || event === "error";
        handle(reply, event, data);
      });
      if (!ended) setStatus(reply, "error", "the connection closed before the reply ended");
    } catch (error) {
      if (error.name === "AbortError") setStatus(reply, "cancelled", "stopped");
      else setStatus(reply, "error", `connection lost: ${error.message}`);
    } finally {
      controller = null;
      send.disabled = false;
      stop.disabled = true;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = input.value;
    if (!content.trim() || controller) return;
    form.querySelector('[data-error-for="content"]').textContent = "";
    input.removeAttribute("aria-invalid");
    input.dataset.sent = content;
    input.value = "";
    turn(content);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", () => controller?.abort());

  // older messages: when the reader scrolls to the top, or presses "Load older messages"
  let loading = false;
  async function loadOlder() {
    const first = messages.querySelector(".history-page");
    const conversationId = chat.dataset.conversationId;
    if (loading || !first || first.dataset.more !== "true" || !conversationId) return;
    loading = true;
    try {
      const response = await fetch(`/conversations/${conversationId}/history?before=${first.dataset.before}`);
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const html = await response.text(); // rendered and escaped by the server
      const height = messages.scrollHeight;
      first.dataset.more = "false";
      first.querySelector("[data-load-older]")?.remove();
      messages.insertAdjacentHTML("afterbegin", html);
      showTimes(messages.querySelector(".history-page"));
      messages.scrollTop += messages.scrollHeight - height;
    } catch (error) {
      first.querySelector("[data-load-older]")?.replaceWith(element("p", "field-error", `Could not load older messages: ${error.message}`));
    } finally {
      loading = false;
    }
  }
  messages.addEventListener("scroll", () => {
    if (messages.scrollTop < 60) loadOlder();
  });
  messages.addEventListener("click", (event) => {
    if (event.target.closest("[data-load-older]")) loadOlder();
  });
}

const chatSection = document.getElementById("chat");
if (chatSection) setupChat(chatSection);
