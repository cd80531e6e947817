// A single-page app served from another origin (SPA, e.g. http://127.0.0.1:5173) lists leads
// over HTTP and follows handoffs over graphql-ws; a handoff made while it follows shows up.
// The same page from an origin the server does not allow (OTHER) gets no answer.
// Env: SPA and OTHER (the page's URLs), API, KEY (read key), MARKETING_KEY, LEAD.
import { run, deadline, handOff } from "./chromium.mjs";

deadline(60_000);
const { SPA, OTHER, API, KEY, MARKETING_KEY, LEAD } = process.env;
await run(async (page, result, seen) => {
  const text = (selector) => page.$$eval(selector, (els) => els.map((e) => e.textContent));
  await page.goto(`${SPA}#api=${encodeURIComponent(API)}&key=${encodeURIComponent(KEY)}`);
  await page.waitForFunction(() => document.getElementById("status").textContent !== "starting");
  result.status = await page.textContent("#status");
  result.leads = await text("#leads li");
  result.handOff = await handOff(API, MARKETING_KEY, LEAD);
  await page.waitForSelector("#events li", { timeout: 20_000 });
  result.events = await text("#events li");

  // The browser refuses the answer to a page of an origin that is not allowed.
  seen.errors.length = 0;
  await page.goto(`${OTHER}#api=${encodeURIComponent(API)}&key=${encodeURIComponent(KEY)}`);
  await page.waitForFunction(() => document.getElementById("status").textContent !== "starting");
  result.otherStatus = await page.textContent("#status");
  result.otherErrors = seen.errors.splice(0);
});
