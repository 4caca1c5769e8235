// Starts GraphiQL against this server. Paste a token from `giftcards token` into the Headers
// tab as {"Authorization": "Bearer …"}; it is not stored, so paste it again after a reload.
(function () {
  var params = new URLSearchParams(window.location.search);
  var exampleQuery = [
    "# Look a card up by a code a customer typed. Mint a token with",
    "#   giftcards token --sub me --role storefront",
    "# and put {\"Authorization\": \"Bearer <token>\"} in the Headers tab below.",
    "query Lookup($code: String!) {",
    "  giftcard(code: $code) {",
    "    limitedByPermission",
    "    results { id memberId balance codes { id codeType code expiresOn isMasked } }",
    "  }",
    "}",
    "",
  ].join("\n");
  var root = document.getElementById("graphiql");
  ReactDOM.render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: window.location.pathname }),
      defaultQuery: exampleQuery,
      query: params.get("query") || undefined,
      variables: params.get("variables") || '{\n  "code": "G59220000045"\n}',
      defaultVariableEditorOpen: true,
      defaultHeaders: "{}",
      isHeadersEditorEnabled: true,
      // Headers hold bearer tokens: keep them out of the browser's storage.
      shouldPersistHeaders: false,
    }),
    root
  );
})();
