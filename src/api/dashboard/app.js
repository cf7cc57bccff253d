// The receipt-ocr dashboard: plain JavaScript, no build step, no request
// to anything but this server. Uploads follow their jobs over the live
// events endpoint (Server-Sent Events read with fetch, so that an API key
// can ride along as a header).
"use strict";

const KEY_STORE = "receipt-ocr.apiKey";
const FINAL = new Set(["completed", "failed", "cancelled"]);
const CANCELLABLE = new Set(["waiting", "delayed", "prioritized", "active"]);
const REVIEW_BELOW = 0.6;
const QUEUE_REFRESH_MS = 3000;

const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (strings become text). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : String(child ?? ""));
  }
  return node;
}

function notice(message) {
  const box = $("#notice");
  box.textContent = message || "";
  box.hidden = !message;
}

// ---------------------------------------------------------------- API key

let keyPrompt = null;

function apiKey() {
  return sessionStorage.getItem(KEY_STORE);
}

/** Ask for a key once; every request waiting on a 401 shares the answer. */
function askForKey(wrongKey) {
  if (keyPrompt) return keyPrompt;
  const dialog = $("#key-dialog");
  $("#key-error").textContent = wrongKey ? "That key was refused; try another." : "";
  $("#key-input").value = "";
  keyPrompt = new Promise((resolve, reject) => {
    $("#key-form").onsubmit = () => {
      sessionStorage.setItem(KEY_STORE, $("#key-input").value.trim());
      $("#forget-key").hidden = false;
      dialog.onclose = null;
      keyPrompt = null;
      resolve();
    };
    // Escape: the requests waiting for a key fail instead of hanging.
    dialog.onclose = () => {
      keyPrompt = null;
      reject(new Error("This server needs an API key; reload the page to enter one."));
    };
  });
  dialog.showModal();
  $("#key-input").focus();
  return keyPrompt;
}

/** fetch() against this server, with the key, asking for one on a 401. */
async function api(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers || {});
    const key = apiKey();
    if (key) headers.set("X-Api-Key", key);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    await askForKey(Boolean(key));
  }
}

/** The JSON of a successful answer; otherwise an Error with the server's message. */
async function json(path, options) {
  const response = await api(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(body?.message || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

/**
 * Follow a job's Server-Sent Events, calling `onUpdate` with each status,
 * until it is final or `signal` aborts. Resolves with the last status.
 */
async function followJob(jobId, onUpdate, signal) {
  const response = await api(`/api/job/${encodeURIComponent(jobId)}/events`, {
    headers: { Accept: "text/event-stream" },
    signal,
  });
  if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      last = JSON.parse(data);
      onUpdate(last);
      if (FINAL.has(last.state)) {
        reader.cancel().catch(() => {});
        return last;
      }
    }
  }
}

// ---------------------------------------------------------------- formatting

const dateTime = (value) => (value ? new Date(value).toLocaleString() : "—");
const money = (amount, currency) =>
  amount === null || amount === undefined
    ? "—"
    : currency
      ? `${amount.toFixed(2)} ${currency}`
      : amount.toFixed(2);
const percent = (value) => (typeof value === "number" ? `${Math.round(value * 100)}%` : "—");

function stateBadge(node, state) {
  node.textContent = state;
  node.className = `badge state-${state}`;
}

// ---------------------------------------------------------------- uploads

function uploadOptions() {
  const options = {};
  const priority = $("#opt-priority").value.trim();
  const delay = $("#opt-delay").value.trim();
  if (priority) options.priority = priority;
  if (delay && Number(delay) > 0) options.delay = String(Math.round(Number(delay) * 1000));
  return options;
}

function uploadFiles(files) {
  const options = uploadOptions();
  for (const file of files) uploadOne(file, options);
}

async function uploadOne(file, options) {
  const bar = el("progress", { max: 100, value: 0, "aria-label": `Progress of ${file.name}` });
  const state = el("span", { class: "badge" }, "uploading");
  const name = el("span", {}, file.name);
  const row = el("li", { "data-file": file.name }, name, bar, state);
  $("#uploads").prepend(row);
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [field, value] of Object.entries(options)) form.append(field, value);
  let accepted;
  try {
    accepted = await json("/api/upload", { method: "POST", body: form });
  } catch (error) {
    stateBadge(state, "refused");
    row.append(el("span", { class: "error" }, error.message));
    return;
  }
  row.dataset.jobId = accepted.jobId;
  bar.dataset.jobId = accepted.jobId;
  name.replaceWith(el("a", { href: `#/receipt/${accepted.receiptId}` }, file.name));
  stateBadge(state, accepted.duplicate ? "duplicate" : "queued");
  refreshList();
  const show = (status) => {
    bar.value = status.state === "completed" ? 100 : status.progress;
    stateBadge(state, status.state);
    if (status.failedReason && FINAL.has(status.state)) {
      row.querySelector(".error")?.remove();
      row.append(el("span", { class: "error" }, status.failedReason));
    }
  };
  try {
    await followJob(accepted.jobId, show);
  } catch (error) {
    row.append(el("span", { class: "error" }, `Live updates stopped: ${error.message}`));
  }
  refreshList();
}

function setUpDrop() {
  const drop = $("#drop");
  const input = $("#file-input");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => {
    uploadFiles([...input.files]);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    uploadFiles([...(event.dataTransfer?.files || [])]);
  });
}

// ---------------------------------------------------------------- queue panel

let queueTimer = null;

async function refreshQueue() {
  clearTimeout(queueTimer);
  try {
    const queue = await json("/api/queue");
    stateBadge($("#queue-state"), queue.paused ? "paused" : "running");
    $("#queue-pause").disabled = queue.paused;
    $("#queue-resume").disabled = !queue.paused;
    const body = $("#queue-counts tbody");
    body.replaceChildren(
      ...Object.entries(queue.counts).map(([state, count]) =>
        el("tr", { "data-state": state }, el("th", { scope: "row" }, state), el("td", {}, count)),
      ),
    );
    const limit = queue.rateLimit;
    $("#queue-rate").textContent =
      limit.max === 0
        ? "No rate limit."
        : `Rate limit: ${limit.max} jobs per ${limit.durationMs / 1000} s` +
          (limit.waitMs > 0 ? `; limited now, frees in ${(limit.waitMs / 1000).toFixed(1)} s.` : "; not limited now.");
    $("#queue-workers").replaceChildren(
      ...(queue.workers.length
        ? queue.workers.map((worker) =>
            el("li", {}, `${worker.name} at ${worker.address}`, worker.startedAt ? `, since ${dateTime(worker.startedAt)}` : ""),
          )
        : [el("li", {}, "No worker is connected: uploads wait until one starts.")]),
    );
  } catch (error) {
    $("#queue-state").textContent = `unavailable (${error.message})`;
  }
  if (!$("#home-view").hidden) queueTimer = setTimeout(refreshQueue, QUEUE_REFRESH_MS);
}

async function steerQueue(action) {
  try {
    await json(`/api/queue/${action}`, { method: "POST" });
    notice("");
  } catch (error) {
    notice(error.message);
  }
  refreshQueue();
}

// ---------------------------------------------------------------- receipts list

const cursors = [];

function listQuery() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("#filters"))) {
    if (value) params.set(name, value);
  }
  const cursor = cursors[cursors.length - 1];
  if (cursor) params.set("cursor", cursor);
  return params;
}

let listRequest = 0;

async function refreshList() {
  const request = ++listRequest;
  try {
    const page = await json(`/api/receipts?${listQuery()}`);
    if (request !== listRequest) return;
    const rows = page.receipts.map((receipt) =>
      el(
        "tr",
        { "data-href": `#/receipt/${receipt.id}`, "data-receipt-id": receipt.id },
        el("td", {}, el("a", { href: `#/receipt/${receipt.id}` }, dateTime(receipt.createdAt))),
        el("td", {}, receipt.storeName || "—"),
        el("td", { class: "num" }, money(receipt.totalAmount, receipt.currency)),
        el("td", {}, receipt.purchaseDate || "—"),
        el("td", {}, el("span", { class: `badge state-${receipt.status}` }, receipt.status)),
      ),
    );
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5 }, "No receipts match.")));
    $("#receipts tbody").replaceChildren(...rows);
    $("#page-next").disabled = !page.nextCursor;
    $("#page-next").dataset.cursor = page.nextCursor || "";
    $("#page-first").disabled = cursors.length === 0;
  } catch (error) {
    notice(`Receipts could not be listed: ${error.message}`);
  }
}

// ---------------------------------------------------------------- receipt page

let receiptFollow = null;
let imageUrl = null;

const FIELDS = [
  ["storeName", "Store"],
  ["totalAmount", "Total"],
  ["date", "Date"],
  ["time", "Time"],
  ["subtotal", "Subtotal"],
  ["tax", "Tax"],
  ["tip", "Tip"],
  ["paymentMethod", "Payment"],
  ["address", "Address"],
  ["phone", "Phone"],
];

function fieldValue(receipt, field) {
  const value = receipt[field];
  if (value === null || value === undefined) return "—";
  if (["totalAmount", "subtotal", "tax", "tip"].includes(field)) return money(value, receipt.currency);
  return String(value);
}

function showFields(receipt) {
  const confidence = receipt.confidence || {};
  $("#receipt-fields tbody").replaceChildren(
    ...FIELDS.map(([field, label]) => {
      const found = receipt[field] !== null && receipt[field] !== undefined;
      const sure = confidence[field];
      const review = found && typeof sure === "number" && sure < REVIEW_BELOW;
      return el(
        "tr",
        { "data-field": field, class: review ? "review" : null },
        el("th", { scope: "row" }, label),
        el("td", {}, fieldValue(receipt, field)),
        el("td", {}, found ? percent(sure) : "—", review ? " · review" : ""),
      );
    }),
  );
  const items = receipt.items || [];
  $("#receipt-items tbody").replaceChildren(
    ...(items.length
      ? items.map((item) =>
          el(
            "tr",
            {},
            el("td", {}, item.name),
            el("td", { class: "num" }, item.quantity),
            el("td", { class: "num" }, money(item.price)),
            el("td", { class: "num" }, money(item.lineTotal)),
          ),
        )
      : [el("tr", {}, el("td", { colspan: 4 }, "No items read."))]),
  );
  $("#receipt-text").textContent = receipt.rawText || "(no text yet)";
}

function showTimeline(job, receipt) {
  const entries = [
    ["Uploaded", dateTime(job?.createdAt || receipt.createdAt)],
    ["Started", dateTime(job?.startedAt)],
    ["Finished", dateTime(job?.finishedAt)],
    ["Attempts", job ? job.attemptsMade : "—"],
    ["Worker", job?.worker || "—"],
    ["Priority", job?.priority || "none"],
    ["Runs at", job?.runAt ? dateTime(job.runAt) : "—"],
    ["Waiting because", job?.waitingReason || "—"],
    ["Failure", job?.failedReason || receipt.failedReason || "—"],
    ["Read by", (receipt.engines || []).join(", ") || "—"],
  ];
  $("#receipt-timeline").replaceChildren(
    ...entries.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
  );
}

function showJobState(job) {
  stateBadge($("#receipt-state"), job.state);
  $("#receipt-progress").value = job.state === "completed" ? 100 : job.progress;
  $("#receipt-cancel").disabled = !CANCELLABLE.has(job.state);
  $("#receipt-retry").disabled = !(job.state === "failed" || job.state === "cancelled");
}

/** Draw each field's box over the image. */
function drawBoxes(figure, image, receipt) {
  figure.querySelector("svg")?.remove();
  const boxes = receipt.boxes;
  if (!boxes || !image.naturalWidth) return;
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", `0 0 ${image.naturalWidth} ${image.naturalHeight}`);
  svg.setAttribute("aria-hidden", "true");
  const confidence = receipt.confidence || {};
  const add = (box, low, title) => {
    if (!box) return;
    const rect = document.createElementNS(svgNs, "rect");
    for (const [name, value] of Object.entries({ x: box.x, y: box.y, width: box.width, height: box.height })) {
      rect.setAttribute(name, value);
    }
    if (low) rect.setAttribute("class", "low");
    const label = document.createElementNS(svgNs, "title");
    label.textContent = title;
    rect.append(label);
    svg.append(rect);
  };
  for (const [field, label] of FIELDS) add(boxes[field], (confidence[field] ?? 1) < REVIEW_BELOW, label);
  for (const item of receipt.items || []) add(item.bbox, false, item.name);
  figure.append(svg);
}

async function showImage(receipt) {
  const figure = $("#receipt-image");
  if (imageUrl) URL.revokeObjectURL(imageUrl);
  imageUrl = null;
  if (receipt.imageRemovedAt) {
    figure.replaceChildren(el("p", {}, `The image was removed on ${dateTime(receipt.imageRemovedAt)} (IMAGE_KEEP_DAYS); what was read from it stays.`));
    return;
  }
  figure.replaceChildren(el("p", {}, "Loading the image…"));
  try {
    const response = await api(`/api/receipt/${receipt.id}/image`);
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).message || response.status);
    const blob = await response.blob();
    imageUrl = URL.createObjectURL(blob);
    const viewable = /^image\/(jpeg|png|gif|webp|bmp|avif)$/.test(blob.type);
    if (!viewable) {
      figure.replaceChildren(
        el("p", {}, `The upload is a ${blob.type} file, which browsers do not show inline. `,
          el("a", { href: imageUrl, download: `receipt-${receipt.id}` }, "Download it")),
      );
      return;
    }
    const image = el("img", { src: imageUrl, alt: "The uploaded receipt" });
    image.addEventListener("load", () => drawBoxes(figure, image, receipt));
    figure.replaceChildren(image);
  } catch (error) {
    figure.replaceChildren(el("p", {}, `No image: ${error.message}`));
  }
}

async function showDeliveries(jobId) {
  const list = $("#receipt-deliveries");
  try {
    const answer = await json(`/api/job/${encodeURIComponent(jobId)}/deliveries`);
    const deliveries = answer.deliveries || [];
    list.replaceChildren(
      ...(deliveries.length
        ? deliveries.map((delivery) =>
            el("li", {}, `${delivery.event} → ${delivery.url}: ${delivery.state}`,
              ` (${(delivery.attempts || []).length} attempt(s))`),
          )
        : [el("li", {}, "None (no callbackUrl or WEBHOOK_URLS).")]),
    );
  } catch (error) {
    list.replaceChildren(el("li", {}, error.status === 404 ? "None." : error.message));
  }
}

async function openReceipt(id) {
  receiptFollow?.abort();
  receiptFollow = new AbortController();
  const follow = receiptFollow;
  let receipt;
  try {
    receipt = await json(`/api/receipt/${encodeURIComponent(id)}`);
  } catch (error) {
    $("#receipt-title").textContent = "Receipt";
    notice(error.message);
    return;
  }
  notice("");
  $("#receipt-view").dataset.receiptId = receipt.id;
  $("#receipt-view").dataset.jobId = receipt.jobId;
  $("#receipt-title").textContent = receipt.storeName || "Receipt";
  showFields(receipt);
  showImage(receipt);
  let job = null;
  try {
    job = await json(`/api/job/${encodeURIComponent(receipt.jobId)}`);
  } catch (error) {
    notice(error.message);
  }
  if (job) showJobState(job);
  // Nothing to read again once the image is gone.
  if (receipt.imageRemovedAt) $("#receipt-retry").disabled = true;
  showTimeline(job, receipt);
  showDeliveries(receipt.jobId);
  if (job && !FINAL.has(job.state)) {
    followJob(receipt.jobId, (update) => {
      showJobState(update);
      showTimeline(update, receipt);
    }, follow.signal)
      .then((last) => {
        if (last && follow === receiptFollow) openReceipt(id);
      })
      .catch(() => {});
  }
}

async function controlJob(method, suffix) {
  const jobId = $("#receipt-view").dataset.jobId;
  try {
    const job = await json(`/api/job/${encodeURIComponent(jobId)}${suffix}`, { method });
    showJobState(job);
    notice("");
  } catch (error) {
    notice(error.message);
  }
  openReceipt($("#receipt-view").dataset.receiptId);
}

// ---------------------------------------------------------------- routing

function route() {
  const match = location.hash.match(/^#\/receipt\/([0-9a-f-]+)$/i);
  $("#home-view").hidden = Boolean(match);
  $("#receipt-view").hidden = !match;
  if (match) {
    clearTimeout(queueTimer);
    openReceipt(match[1]);
  } else {
    receiptFollow?.abort();
    refreshQueue();
    refreshList();
  }
}

function start() {
  $("#bullboard-link").href = `${location.protocol}//${location.hostname}:3001/`;
  $("#forget-key").hidden = !apiKey();
  $("#forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    $("#forget-key").hidden = true;
  });
  setUpDrop();
  $("#queue-pause").addEventListener("click", () => steerQueue("pause"));
  $("#queue-resume").addEventListener("click", () => steerQueue("resume"));
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    cursors.length = 0;
    refreshList();
  });
  $("#page-next").addEventListener("click", () => {
    cursors.push($("#page-next").dataset.cursor);
    refreshList();
  });
  $("#page-first").addEventListener("click", () => {
    cursors.length = 0;
    refreshList();
  });
  $("#receipts tbody").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a")) location.hash = row.dataset.href;
  });
  $("#receipt-cancel").addEventListener("click", () => controlJob("DELETE", ""));
  $("#receipt-retry").addEventListener("click", () => controlJob("POST", "/retry"));
  window.addEventListener("hashchange", route);
  route();
}

start();
