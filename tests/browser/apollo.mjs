// Apollo Client with its persisted-query link against the server: the first query goes as a
// hash, is not found, and goes again with its text; later ones go as the hash alone, by POST
// and, with useGETForHashedQueries, by GET. Env: API (http://127.0.0.1:PORT), KEY.
// Prints each request the client sent (method, whether it held the text) and the results.
import { createHash } from "node:crypto";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

setTimeout(() => {
  console.error("the scenario did not finish within 30 s");
  process.exit(2);
}, 30_000).unref();

const { API, KEY } = process.env;
const sent = [];

/// fetch, noting what each request carried and what came back.
async function noting(url, options) {
  const body = options.method === "GET" ? null : JSON.parse(options.body);
  const params = new URL(url).searchParams;
  const response = await fetch(url, options);
  const answer = await response.clone().json();
  sent.push({
    method: options.method,
    withText: Boolean(body ? body.query : params.get("query")),
    withHash: Boolean((body ? body.extensions : JSON.parse(params.get("extensions") || "{}"))?.persistedQuery),
    status: response.status,
    code: answer.errors?.[0]?.extensions?.code ?? null,
  });
  return response;
}

function client(useGETForHashedQueries) {
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries,
  });
  const http = new HttpLink({ uri: `${API}/graphql`, fetch: noting, headers: { authorization: `Bearer ${KEY}` } });
  return new ApolloClient({ link: ApolloLink.from([persisted, http]), cache: new InMemoryCache() });
}

const VIEWER = gql`query Viewer { viewer { role workspace { name } } }`;
const LEADS = gql`query Leads($first: Int!) { leads(first: $first) { totalCount } }`;
const result = {};
try {
  const post = client(false);
  result.first = (await post.query({ query: VIEWER, fetchPolicy: "network-only" })).data;
  result.firstSent = sent.splice(0);
  result.again = (await post.query({ query: VIEWER, fetchPolicy: "network-only" })).data;
  result.againSent = sent.splice(0);
  const get = client(true);
  result.leads = (await get.query({ query: LEADS, variables: { first: 1 }, fetchPolicy: "network-only" })).data;
  result.leadsSent = sent.splice(0);
  result.leadsAgain = (await get.query({ query: LEADS, variables: { first: 2 }, fetchPolicy: "network-only" })).data;
  result.leadsAgainSent = sent.splice(0);
} catch (e) {
  result.failure = String(e);
}
console.log(JSON.stringify(result));
