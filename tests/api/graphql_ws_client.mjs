// Drives the server with the `graphql-ws` client (npm) over `ws`, as a frontend would, and
// prints one JSON line of what it saw; tests/api/websocket.rs runs it and checks the line.
// Environment: URL (ws://.../graphql/ws), KEY (an ADMIN key), LEAD (the id of a lead to hand off).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const { URL, KEY, LEAD } = process.env;
setTimeout(() => {
  console.error('the graphql-ws client scenario took longer than 20 s');
  process.exit(2);
}, 20_000).unref();

/** A client that does not retry, so that each close reaches the subscriber as it is. */
function client(connectionParams) {
  return createClient({ url: URL, webSocketImpl: WebSocket, connectionParams, retryAttempts: 0, lazy: true });
}

/** Every result of one operation, and how it ended: `complete`, or the close event or errors. */
function run(c, payload, onNext = () => {}) {
  return new Promise((resolve) => {
    const results = [];
    c.subscribe(payload, {
      next: (r) => {
        results.push(r);
        onNext(r);
      },
      error: (e) => resolve({ results, error: 'code' in e ? { code: e.code, reason: e.reason } : JSON.stringify(e) }),
      complete: () => resolve({ results, end: 'complete' }),
    });
  });
}

const seen = {};
const admin = client({ Authorization: `Bearer ${KEY}` });
seen.query = await run(admin, { query: '{ viewer { role } }' });

// A subscription hears the handoff made over the same connection, then the client completes it.
const handoff = new Promise((resolve) => {
  const stop = admin.subscribe(
    { query: 'subscription { handoffEvents { seq kind } }' },
    {
      next: (r) => {
        stop();
        resolve(r);
      },
      error: (e) => resolve({ error: 'code' in e ? { code: e.code, reason: e.reason } : JSON.stringify(e) }),
      complete: () => {},
    },
  );
});
await new Promise((r) => setTimeout(r, 200));
seen.mutation = await run(admin, {
  query: 'mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { userErrors { code } } }',
  variables: { input: { leadId: LEAD } },
});
seen.event = await handoff;
await admin.dispose();

// A refused key: the subscriber gets the close event, and no result.
const refused = client({ Authorization: 'Bearer clk_0000000000000000000000000000000000000000000000' });
seen.refused = await run(refused, { query: '{ viewer { role } }' });
await refused.dispose();

console.log(JSON.stringify(seen));
process.exit(0);
