// closedloop's GraphiQL: queries and mutations are POSTed to this page's own URL, subscriptions go
// over graphql-transport-ws to <page>/ws with the editor's headers as the connection_init
// payload. Headers are not kept in the browser's storage: a key is a secret.
"use strict";
(function () {
  const endpoint = new URL(window.location.pathname, window.location.href);
  const socket = new URL(endpoint.pathname.replace(/\/$/, "") + "/ws", endpoint);
  socket.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  const fetcher = GraphiQL.createFetcher({
    url: endpoint.href,
    subscriptionUrl: socket.href,
    enableIncrementalDelivery: false,
  });
  const defaultQuery = [
    "# Put your API key into the Authorization header below:",
    "# `serve --demo` prints one, `closedloop key create` makes more.",
    "# Subscriptions go to " + socket.href + " with the same header.",
    "{",
    "  viewer { role workspace { name } }",
    "  leads(first: 5) { totalCount nodes { name email stage { key } } }",
    "}",
    "",
  ].join("\n");
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: JSON.stringify({ Authorization: "Bearer <your API key>" }, null, 2),
      defaultEditorToolsVisibility: "headers",
      shouldPersistHeaders: false,
    }),
  );
})();
