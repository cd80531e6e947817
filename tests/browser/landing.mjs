// A customer's landing page (LANDING, on its own origin, with UTM parameters) carries the
// tracking script of the server at API: the page view is sent, the whitepaper link counts as a
// download, and the contact form identifies the visitor. Env: LANDING, API.
import { run, deadline } from "./chromium.mjs";

deadline(60_000);
const { LANDING, API } = process.env;
// A desktop Chrome's user agent: headless Chromium's own says HeadlessChrome, which the server
// takes for a bot.
const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
await run(async (page, result) => {
  const sent = (path) => page.waitForResponse((r) => r.url() === `${API}${path}` && r.request().method() === "POST");
  const view = sent("/t/e");
  await page.goto(LANDING);
  result.pageView = (await view).status();
  result.visitorId = await page.evaluate(() => window.closedloop.visitorId);
  result.cookie = (await page.context().cookies()).map((c) => c.name);

  const download = sent("/t/e");
  await page.click("#whitepaper");
  result.download = (await download).status();

  const identify = sent("/t/identify");
  await page.fill("input[name=email]", "Petra.Produzent@Example.com");
  await page.fill("input[name=first_name]", "Petra");
  await page.fill("input[name=jobTitle]", "Production manager");
  await page.click("button[type=submit]");
  result.identify = (await identify).status();
  result.done = await page.textContent("#done");
}, { userAgent });
