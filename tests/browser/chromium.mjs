// Debian's Chromium, headless, driven by Playwright, with the network cut off from everything
// but 127.0.0.1: host names other than 127.0.0.1 do not resolve, and every request the page makes
// elsewhere is aborted and reported, as are the page's errors and console errors.
import { chromium } from "playwright-core";

// `context` takes Playwright's context options (e.g. a `userAgent`).
export async function open(context = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
  });
  const ctx = await browser.newContext(context);
  const seen = { outside: [], errors: [] };
  await ctx.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1" || url.protocol === "data:") return route.continue();
    seen.outside.push(url.href);
    return route.abort();
  });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => seen.errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") seen.errors.push(`console: ${m.text()}`);
  });
  page.on("websocket", (ws) => {
    if (!ws.url().startsWith("ws://127.0.0.1:")) seen.outside.push(ws.url());
  });
  return { browser, page, seen };
}

// Ends the scenario after `ms` whatever happens, so that a hung browser fails the test.
export function deadline(ms) {
  setTimeout(() => {
    console.error(`the scenario did not finish within ${ms} ms`);
    process.exit(2);
  }, ms).unref();
}

// Runs `steps(page, result, seen)` in a fresh browser, then prints `result` as JSON, with the
// failure if a step failed, the requests that would have left 127.0.0.1, and the page's errors.
export async function run(steps, context = {}) {
  const { browser, page, seen } = await open(context);
  const result = {};
  try {
    await steps(page, result, seen);
  } catch (e) {
    result.failure = String(e);
  } finally {
    result.outside = seen.outside;
    result.errors = seen.errors;
    await browser.close();
  }
  console.log(JSON.stringify(result));
}

// Waits until the server follows at least one subscription on its event bus (/metrics, which
// answers loopback peers), so that an event made next reaches it.
// `false` when `gaveUp()` turns true first.
export async function subscribed(api, gaveUp = () => false) {
  for (let i = 0; i < 200; i++) {
    const text = await (await fetch(`${api}/metrics`)).text();
    const open = /^closedloop_subscriptions_active (\d+)/m.exec(text);
    if (open && Number(open[1]) >= 1) return true;
    if (await gaveUp()) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server never registered the subscription");
}

// Hands the lead `id` off to sales, as MARKETING (`key`) would from its own tool.
export function handOff(api, key, id) {
  return graphql(`${api}/graphql`, key,
    "mutation($id: ID!) { handOffLead(input: { leadId: $id }) { userErrors { code } } }", { id });
}

export async function graphql(url, key, query, variables) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}
