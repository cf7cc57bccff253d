// Drives the dashboard in Debian's headless Chromium (playwright-core, no
// browser download) for tests/api/dashboard.rs, against a service the Rust
// test started. Prints one JSON line per step; exits 1 with the reason on
// the first failed step. Screenshots of each step go to --shots.
//
//   node dashboard.js --url http://127.0.0.1:PORT --shots DIR --scenario main \
//        --receipt receipt.png
//   node dashboard.js --url … --shots DIR --scenario keys --key SECRET
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const STEP_TIMEOUT_MS = 90_000;

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

const options = args();
const base = new URL(options.url);
const requests = [];
let stepNumber = 0;

function report(step, details = {}) {
  console.log(JSON.stringify({ step, ...details }));
}

async function shot(page, name) {
  stepNumber += 1;
  const file = path.join(options.shots, `${options.scenario}-${String(stepNumber).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Drop `bytes` as a file named `name` on the drop zone, as a user dragging it would. */
async function dropFile(page, name, bytes, type) {
  const transfer = await page.evaluateHandle(
    ({ name, base64, type }) => {
      const data = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], name, { type }));
      return transfer;
    },
    { name, base64: bytes.toString("base64"), type },
  );
  await page.dispatchEvent("#drop", "dragenter", { dataTransfer: transfer });
  await page.dispatchEvent("#drop", "drop", { dataTransfer: transfer });
}

async function uploadRowJobId(page, name) {
  const row = page.locator(`#uploads li[data-file="${name}"][data-job-id]`);
  await row.waitFor({ timeout: STEP_TIMEOUT_MS });
  return row.getAttribute("data-job-id");
}

async function main(page) {
  const receipt = fs.readFileSync(options.receipt);
  await page.goto(base.href);
  await page.locator("#queue-state", { hasText: "running" }).waitFor();
  const bullBoard = await page.getAttribute("#bullboard-link", "href");
  report("opened", { bullBoard, shot: await shot(page, "opened") });

  // Drop a receipt; its bar fills from the live events.
  await dropFile(page, "corner-market.png", receipt, "image/png");
  const jobId = await uploadRowJobId(page, "corner-market.png");
  const bar = page.locator(`#uploads progress[data-job-id="${jobId}"]`);
  // Every value the bar takes, seen by the page itself (no sampling gaps).
  await page.evaluate((jobId) => {
    const bar = document.querySelector(`#uploads progress[data-job-id="${jobId}"]`);
    window.__seen = [Number(bar.value)];
    // The value property reflects the attribute, so every change shows here.
    new MutationObserver(() => window.__seen.push(Number(bar.value))).observe(bar, {
      attributes: true,
      attributeFilter: ["value"],
    });
  }, jobId);
  report("dropped", { jobId, shot: await shot(page, "dropped") });
  await page.waitForFunction(
    (jobId) => Number(document.querySelector(`#uploads progress[data-job-id="${jobId}"]`).value) === 100,
    jobId,
    { timeout: STEP_TIMEOUT_MS },
  );
  await page.locator(`#uploads li[data-job-id="${jobId}"] .badge`, { hasText: "completed" }).waitFor();
  const seen = await page.evaluate(() => window.__seen);
  const jobPolls = requests.filter((r) => r.pathname === `/api/job/${jobId}`).length;
  const eventStreams = requests.filter((r) => r.pathname === `/api/job/${jobId}/events`).length;
  report("progress", { jobId, seen, jobPolls, eventStreams, final: await bar.evaluate((b) => b.value), shot: await shot(page, "completed") });

  // Open it: the image beside the fields.
  await page.locator(`#uploads li[data-job-id="${jobId}"] a`).click();
  await page.locator("#receipt-state", { hasText: "completed" }).waitFor();
  await page.locator("#receipt-image img").waitFor();
  await page.waitForFunction(() => document.querySelector("#receipt-image img").naturalWidth > 0);
  await page.locator("#receipt-image svg rect").first().waitFor({ state: "attached" });
  const cell = (field) => page.locator(`#receipt-fields tr[data-field="${field}"] td`).first().textContent();
  const opened = {
    title: await page.locator("#receipt-title").textContent(),
    store: await cell("storeName"),
    total: await cell("totalAmount"),
    items: await page.locator("#receipt-items tbody tr").count(),
    boxes: await page.locator("#receipt-image svg rect").count(),
    text: (await page.locator("#receipt-text").textContent()).length,
    timeline: await page.locator("#receipt-timeline").textContent(),
    receiptId: await page.locator("#receipt-view").getAttribute("data-receipt-id"),
  };
  report("receipt", { ...opened, shot: await shot(page, "receipt") });

  // A delayed job, cancelled from its page.
  await page.goto(base.href);
  await page.fill("#opt-delay", "600");
  // This one through the file picker, opened from the keyboard.
  await page.focus("#drop");
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.keyboard.press("Enter")]);
  await chooser.setFiles({ name: "later.png", mimeType: "image/png", buffer: receipt });
  const delayedJob = await uploadRowJobId(page, "later.png");
  await page.locator(`#uploads li[data-job-id="${delayedJob}"] .badge`, { hasText: "delayed" }).waitFor();
  await page.fill("#opt-delay", "");
  await page.locator(`#uploads li[data-job-id="${delayedJob}"] a`).click();
  await page.locator("#receipt-state", { hasText: "delayed" }).waitFor();
  report("delayed", { jobId: delayedJob, shot: await shot(page, "delayed") });
  await page.click("#receipt-cancel");
  await page.locator("#receipt-state", { hasText: "cancelled" }).waitFor();
  const retryEnabled = await page.locator("#receipt-retry").isEnabled();
  report("cancelled", { jobId: delayedJob, retryEnabled, shot: await shot(page, "cancelled") });

  // Pause and resume the queue.
  await page.goto(base.href);
  await page.locator("#queue-state", { hasText: "running" }).waitFor();
  await page.click("#queue-pause");
  await page.locator("#queue-state", { hasText: "paused" }).waitFor();
  const pausedAnswer = await page.evaluate(async () => (await fetch("/api/queue")).json());
  report("paused", { paused: pausedAnswer.paused, shot: await shot(page, "paused") });
  await page.click("#queue-resume");
  await page.locator("#queue-state", { hasText: "running" }).waitFor();
  const resumedAnswer = await page.evaluate(async () => (await fetch("/api/queue")).json());
  report("resumed", { paused: resumedAnswer.paused, shot: await shot(page, "resumed") });

  // The listing shows both receipts; the status filter narrows it.
  await page.selectOption("#filters select[name=status]", "cancelled");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#receipts tbody tr[data-receipt-id]").length === 1);
  report("filtered", { rows: await page.locator("#receipts tbody tr[data-receipt-id]").count(), shot: await shot(page, "filtered") });

  // The system's dark theme.
  await page.emulateMedia({ colorScheme: "dark" });
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  report("dark", { background, shot: await shot(page, "dark") });
}

async function keys(page) {
  await page.goto(base.href);
  const dialog = page.locator("#key-dialog");
  await dialog.waitFor({ state: "visible" });
  report("asked", { shot: await shot(page, "asked") });
  await page.fill("#key-input", "not-the-key");
  await page.click("#key-form button[type=submit]");
  await page.locator("#key-error", { hasText: "refused" }).waitFor();
  report("refused", { shot: await shot(page, "refused") });
  await page.fill("#key-input", options.key);
  await page.click("#key-form button[type=submit]");
  await page.locator("#queue-state", { hasText: "running" }).waitFor();
  await dialog.waitFor({ state: "hidden" });
  report("accepted", { shot: await shot(page, "accepted") });
  // Kept for the tab: a reload asks no more.
  await page.reload();
  await page.locator("#queue-state", { hasText: "running" }).waitFor();
  const askedAgain = await dialog.isVisible();
  const unauthorized = requests.filter((r) => r.status === 401).length;
  report("reloaded", { askedAgain, unauthorized, shot: await shot(page, "reloaded") });

  // The GraphQL page in the same tab has the key already, runs a query
  // with it and lists the schema.
  await page.goto(new URL("/graphql", base).href);
  const keyField = await page.inputValue("#key");
  await page.fill("#query", "{ queue { paused } }");
  await page.fill("#variables", "{}");
  await page.click("#run");
  await page.locator("#result", { hasText: "paused" }).waitFor();
  const answer = JSON.parse(await page.locator("#result").textContent());
  await page.click("#load-schema");
  await page.locator("#schema code", { hasText: "jobStatus(" }).first().waitFor();
  const schemaFields = await page.locator("#schema code").count();
  report("graphql", { keyFilled: keyField === options.key, answer, schemaFields, shot: await shot(page, "graphql") });
}

async function run() {
  fs.mkdirSync(options.shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  // Intercept file choosers from the start. Subscribing only when one is
  // expected (waitForEvent beside the key press) races the page: Chromium
  // may open its native picker, which headless drops, before interception
  // is on (1 run in 4 under load with Chromium 156).
  page.on("filechooser", () => {});
  const offsite = [];
  // Every request the page makes; anything not for this server is refused
  // and reported (the dashboard must work offline).
  await page.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "blob:" || url.protocol === "data:" || url.host === base.host) {
      return route.continue();
    }
    offsite.push(url.href);
    return route.abort();
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    requests.push({ method: response.request().method(), pathname: url.pathname, status: response.status() });
  });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  try {
    await (options.scenario === "keys" ? keys : main)(page);
    report("done", { offsite, errors, requests: requests.length });
  } finally {
    await browser.close();
  }
}

run().catch((error) => {
  console.error(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
