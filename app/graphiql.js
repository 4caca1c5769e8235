// Starts GraphiQL against this server. Paste a token from `giftcards token` into the Headers
// tab as {"Authorization": "Bearer …"}; it is not stored, so paste it again after a reload.
// Nothing is: GraphiQL's tabs, variables and history hold gift card codes (its history, the
// headers too), so they live in memory and go with the page. Each load opens one tab.
(function () {
  function memoryStorage() {
    var items = new Map();
    return {
      getItem: function (key) { return items.has(key) ? items.get(key) : null; },
      setItem: function (key, value) { items.set(key, String(value)); },
      removeItem: function (key) { items.delete(key); },
      clear: function () { items.clear(); },
      get length() { return items.size; },
    };
  }

  // Remove what earlier versions, which let GraphiQL use localStorage, left there.
  try {
    Object.keys(window.localStorage).forEach(function (key) {
      if (key.indexOf("graphiql:") === 0) window.localStorage.removeItem(key);
    });
  } catch (blocked) {
    // storage disabled by the browser: nothing was kept
  }

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
      storage: memoryStorage(),
      // Headers hold bearer tokens: leave them out of the tabs' saved state.
      shouldPersistHeaders: false,
    }),
    root
  );
})();
