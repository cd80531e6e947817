// GraphiQL, as a developer uses it: opens the page the server serves, puts an API key into the
// header editor, runs a query, then a subscription that receives a handoff made meanwhile.
// Env: API (http://127.0.0.1:PORT), KEY (read key), MARKETING_KEY, LEAD (a lead's id).
// Prints what it saw as JSON.
import { run, deadline, handOff, subscribed } from "./chromium.mjs";

deadline(60_000);

// The query editor, and the header editor (beside the variables' editor, which is empty).
const QUERY = ".graphiql-query-editor .CodeMirror";
const HEADERS = ".graphiql-editor-tool .CodeMirror";
const { API, KEY, MARKETING_KEY, LEAD } = process.env;
await run(async (page, result) => {
  await page.goto(`${API}/graphql`);
  await page.waitForSelector(".graphiql-container .graphiql-query-editor .CodeMirror");
  result.title = await page.title();
  result.defaultHeaders = await editor(page, HEADERS);

  // The header editor holds the key; the query editor the query. GraphiQL's editors are
  // CodeMirror 5: its API sets their text as typing would.
  await editor(page, HEADERS, JSON.stringify({ Authorization: `Bearer ${KEY}` }));
  await editor(page, QUERY, "{ viewer { role workspace { name } } }");
  await page.click(".graphiql-execute-button");
  result.query = await resultWith(page, '"workspace"');

  await editor(page, QUERY, "subscription { handoffEvents { seq kind lead { email } } }");
  page.on("websocket", (socket) => (result.socket = socket.url()));
  // GraphiQL parses the editor's text a moment after a change (debounced); until then it takes
  // the text for the previous query and POSTs it, which the server refuses for a subscription:
  // then run it again. A handoff before the server follows the subscription would not reach it
  // (there is no `after` cursor here).
  const posted = () => pane(page).then((text) => text.includes("not supported on this transport"));
  for (let attempt = 1; ; attempt++) {
    await page.waitForTimeout(500);
    await page.evaluate(() => document.querySelector(".graphiql-response .CodeMirror").CodeMirror.setValue(""));
    await page.click(".graphiql-execute-button");
    if (await subscribed(API, posted)) break;
    if (attempt === 5) throw new Error("GraphiQL never sent the subscription over the socket");
  }
  result.handOff = await handOff(API, MARKETING_KEY, LEAD);
  result.event = await resultWith(page, '"CREATED"');
});

// The text of the first editor matching `selector` that holds `Authorization` (the header
// editor) or any text; replaced by `text` when given.
async function editor(page, selector, text) {
  const value = await page.evaluate(({ selector, text }) => {
    const editors = [...document.querySelectorAll(selector)].map((el) => el.CodeMirror);
    const found = editors.find((cm) => cm.getValue().includes("Authorization")) || editors[0];
    if (!found) return null;
    const before = found.getValue();
    if (text !== undefined) found.setValue(text);
    return before;
  }, { selector, text });
  if (value === null) throw new Error(`no editor ${selector}`);
  return value;
}

// The result pane's text.
function pane(page) {
  return page.evaluate(() => document.querySelector(".graphiql-response .CodeMirror").CodeMirror.getValue());
}

// The result pane's JSON once it contains `needle`.
async function resultWith(page, needle) {
  const pane = ".graphiql-response .CodeMirror";
  await page.waitForFunction(({ pane, needle }) => {
    const el = document.querySelector(pane);
    return el && el.CodeMirror.getValue().includes(needle);
  }, { pane, needle }, { timeout: 20_000 });
  return JSON.parse(await page.evaluate((pane) => document.querySelector(pane).CodeMirror.getValue(), pane));
}
