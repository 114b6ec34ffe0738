// Switchboard in a real browser: the operating system's Chromium, driven by playwright-core (which downloads
// nothing), against `switchboard serve` on 127.0.0.1 port 0. Usage: node run.mjs [path/to/switchboard]
//
// 1. A page's EventSource receives 500 events while the test kills and restarts a --data-dir server twice:
//    every event exactly once, in order, and no resync.
// 2. The dashboard follows `switchboard demo`: one bar per stage reaching 100 %, the approval request approved
//    with its button, the pipeline ending on "completed"; a screenshot is saved in artifacts/.
// 3. `curl -N` follows a stream, and an EventSource without a token gets 401 (and one with it, events).
//
// Every wait is bounded, the whole run by TOTAL_MS; every process started is stopped.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(process.argv[2] || join(here, "../../target/debug/switchboard"));
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = join(here, "artifacts");
const TOTAL_MS = 150_000;
const LAUNCH_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const children = new Set();
let browser = null;
const tmp = mkdtempSync(join(tmpdir(), "switchboard-browser-"));

async function cleanup() {
  for (const child of children) child.kill("SIGKILL");
  if (browser) await browser.close().catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
}
const overall = setTimeout(async () => {
  console.error(`browser tests: timed out after ${TOTAL_MS} ms`);
  await cleanup();
  process.exit(1);
}, TOTAL_MS);

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`  ok: ${what}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, ms, test) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await test();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Starts `switchboard serve` with `args`; resolves with the child and its bound address. */
function serve(args) {
  const child = spawn(bin, ["serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let stderr = "";
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  return new Promise((res, rej) => {
    let out = "";
    const timer = setTimeout(() => rej(new Error(`serve did not start: ${stderr}`)), 15_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^listening on (\S+)$/m);
      if (m) { clearTimeout(timer); res({ child, addr: m[1] }); }
    });
    child.on("exit", (code) => { clearTimeout(timer); rej(new Error(`serve exited (${code}): ${stderr}`)); });
  });
}

async function stop(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await Promise.race([gone, sleep(10_000).then(() => { throw new Error("serve did not stop"); })]);
}

async function publish(addr, channel, events, headers = {}) {
  const r = await fetch(`http://${addr}/api/v1/channels/${encodeURIComponent(channel)}/events`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ events }),
  });
  if (r.status !== 201) throw new Error(`publish: HTTP ${r.status} ${await r.text()}`);
}

async function recoveryAcrossRestarts(page) {
  console.log("1. an EventSource gets 500 events across two server restarts, each exactly once");
  const dir = join(tmp, "data");
  let { child, addr } = await serve(["--bind", "127.0.0.1:0", "--data-dir", dir, "--heartbeat-ms", "1000"]);
  const port = addr.split(":").pop();
  await page.goto(`http://${addr}/ui`);
  await page.evaluate(() => {
    window.got = []; window.resyncs = 0; window.opens = 0;
    const es = new EventSource("/api/v1/channels/browser%2Frecovery/sse");
    es.addEventListener("open", () => { window.opens += 1; });
    es.addEventListener("tick", (e) => window.got.push(JSON.parse(e.data).offset));
    es.addEventListener("resync", () => { window.resyncs += 1; });
    window.stream = es;
  });
  await until("the stream to open", 10_000, () => page.evaluate(() => window.opens >= 1));
  const ticks = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => ({ event_type: "tick", n: from + i }));
  const rounds = [[1, 170], [171, 340], [341, 500]];
  for (let i = 0; i < rounds.length; i++) {
    const [from, to] = rounds[i];
    for (let n = from; n <= to; n += 50) await publish(addr, "browser/recovery", ticks(n, Math.min(to, n + 49)));
    if (i + 1 < rounds.length) {
      // Some events are delivered, the rest are in the log only: the restart must not lose or repeat any.
      await until("some events to arrive", 10_000, () => page.evaluate((f) => window.got.length >= f, from));
      await stop(child, "SIGKILL");
      ({ child } = await serve(["--bind", `127.0.0.1:${port}`, "--data-dir", dir, "--heartbeat-ms", "1000"]));
      await until("the browser to reconnect", 20_000, () => page.evaluate((n) => window.opens >= n, i + 2));
    }
  }
  await until("all 500 events", 30_000, () => page.evaluate(() => window.got.length >= 500));
  await sleep(300);
  const { got, resyncs, opens } = await page.evaluate(() => ({ got: window.got, resyncs: window.resyncs, opens: window.opens }));
  check(got.length === 500 && got.every((o, i) => o === i + 1), `every event exactly once, in order (${got.length})`);
  check(resyncs === 0, "no resync");
  check(opens === 3, `reconnected twice (${opens} opens)`);
  await page.evaluate(() => window.stream.close());
  await stop(child, "SIGTERM");
}

async function dashboardFollowsTheDemo(page) {
  console.log("2. the dashboard follows switchboard demo and approves its approval request");
  const { child, addr } = await serve(["--bind", "127.0.0.1:0"]);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`http://${addr}/?channel=projects%2Fdemo`);
  await until("the stream to be live", 10_000, async () => (await page.textContent("#conn")) === "live");
  const demo = spawn(bin, ["demo", `ws://${addr}/api/ws`, "--speed", "2"], { stdio: "ignore" });
  children.add(demo);
  demo.on("exit", () => children.delete(demo));
  await page.waitForSelector("#approve", { state: "visible", timeout: 30_000 });
  await page.click("#approve");
  await until("the approval to be answered", 10_000, async () => (await page.textContent("#approval-result")).startsWith("done"));
  await until("the pipeline to complete", 40_000, async () => (await page.textContent("#status")) === "completed");
  const bars = await page.$$eval(".stage", (rows) => rows.map((r) => [r.dataset.stage, r.dataset.progress]));
  check(bars.length === 5, `one bar per stage (${bars.map((b) => b[0]).join(", ")})`);
  check(bars.every(([, p]) => p === "100"), "every bar at 100 %");
  const logs = await page.textContent("#logs");
  check(/"approved_by":"[^"]*"/.test(logs) && logs.includes('"decision":"approved"'), "the demo saw the approval from the button");
  await until("the retained state to show the end", 5_000, async () => (await page.textContent("#state")).includes("pipeline_completed"));
  check(true, "the retained state is shown");
  check(errors.length === 0, `no script or CSP error on the page (${errors.join(" | ")})`);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
  console.log(`  saved ${join(artifacts, "dashboard.png")}`);
  await stop(demo, "SIGTERM");
  await stop(child, "SIGTERM");
}

async function curlAndAuth(page) {
  console.log("3. curl -N follows a stream; an EventSource without a token gets 401");
  const { child, addr } = await serve(["--bind", "127.0.0.1:0", "--api-key", "k3y:subscribe=**,publish=**"]);
  const curl = spawn("curl", ["-sN", "--max-time", "10", `http://${addr}/api/v1/channels/news/sse?token=k3y`]);
  children.add(curl);
  let text = "";
  curl.stdout.on("data", (d) => { text += d; });
  await until("curl to see the opening block", 10_000, () => text.includes("retry: 1000"));
  await publish(addr, "news", [{ event_type: "headline", title: "hello" }], { Authorization: "Bearer k3y" });
  await until("curl to see the event", 10_000, () => text.includes("event: headline"));
  check(/id: [^\n]+:1\nevent: headline\ndata: \{"channel":"news","offset":1/.test(text), "curl -N follows the stream");
  curl.kill("SIGTERM");

  await page.goto(`http://${addr}/ui`);
  const result = await page.evaluate(async () => {
    const status = (await fetch("/api/v1/channels/news/sse")).status;
    const refused = await new Promise((res) => {
      const es = new EventSource("/api/v1/channels/news/sse");
      es.onerror = () => { res(es.readyState === EventSource.CLOSED); es.close(); };
      es.onopen = () => { res(false); es.close(); };
    });
    const opened = await new Promise((res) => {
      const es = new EventSource("/api/v1/channels/news/sse?token=k3y&since=0");
      es.addEventListener("headline", (e) => { res(JSON.parse(e.data).event.title); es.close(); });
      es.onerror = () => { res("error"); es.close(); };
    });
    return { status, refused, opened };
  });
  check(result.status === 401, "the stream route answers 401 without a token");
  check(result.refused === true, "an EventSource without a token fails for good (no reconnect loop)");
  check(result.opened === "hello", "with ?token= the stream replays the event");
  await stop(child, "SIGTERM");
}

async function main() {
  const version = spawnSync(chromiumPath, ["--version"], { encoding: "utf8" });
  if (version.status !== 0) throw new Error(`no Chromium at ${chromiumPath}`);
  console.log(`browser: ${version.stdout.trim()}`);
  browser = await chromium.launch({ executablePath: chromiumPath, args: LAUNCH_ARGS, timeout: 30_000 });
  for (const scenario of [recoveryAcrossRestarts, dashboardFollowsTheDemo, curlAndAuth]) {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    await scenario(page);
    await page.close();
  }
}

main().then(
  async () => { clearTimeout(overall); await cleanup(); console.log("browser tests: all passed"); },
  async (e) => { clearTimeout(overall); console.error(`browser tests: ${e.stack || e}`); await cleanup(); process.exit(1); },
);
