// GraphiQL 3 (UMD globals React, ReactDOM and GraphiQL, served by the gateway from npm) on this
// gateway: queries over HTTP, subscriptions over graphql-transport-ws (graphql-ws is inside
// graphiql.min.js). The API key, when the gateway asks for one, is shared with the dashboard.
import { askAgain, authFetch, authHeaders } from '/static/common/auth.js';

const config = JSON.parse(document.getElementById('graphiql-config').textContent);
const httpUrl = new URL(config.endpoint, window.location.href);
const wsUrl = new URL(httpUrl.href);
wsUrl.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';

// The connection_init payload. createFetcher copies this object (`{...wsConnectionParams}`) when a
// subscription starts, on a new socket each time, so the getter reads the key typed by then. A function
// here would be copied as nothing: every connection_init empty, and with keys on every subscription
// refused (4403) and retried without end.
const wsConnectionParams = {
  get Authorization() {
    return authHeaders().Authorization;
  },
};

const toolkitFetcher = window.GraphiQL.createFetcher({
  url: httpUrl.href,
  subscriptionUrl: wsUrl.href,
  fetch: authFetch,
  wsConnectionParams,
});

// createFetcher picks WebSocket or HTTP from the editor's parsed document and operation name, which
// GraphiQL refreshes ~0.5 s after an edit: Run sooner after pasting a subscription and it went over
// POST (refused: "subscriptions are not served over POST"), with the old operation's name. This decides
// from the text actually sent: parsed here, its operation name kept only when the text has it (else the
// text's one operation's), so what runs is what the editor shows. Text that does not parse goes over
// HTTP as it is, and the gateway says what is wrong with it.
const { parse } = window.GraphiQL.GraphQL;

function fetcher(params, options = {}) {
  let documentAST;
  try {
    documentAST = parse(params.query);
  } catch {
    return toolkitFetcher(params, { ...options, documentAST: undefined });
  }
  const operations = documentAST.definitions.filter((d) => d.kind === 'OperationDefinition');
  let { operationName } = params;
  if (!operations.some((op) => (op.name?.value ?? null) === (operationName ?? null)) && operations.length === 1) {
    operationName = operations[0].name?.value ?? null;
  }
  return toolkitFetcher({ ...params, operationName }, { ...options, documentAST });
}

// A key dialog cancelled at load is not asked again by GraphiQL's own requests (its schema, retried),
// but Run -- the button, or Ctrl/Cmd-Enter -- is the person asking: then it is.
document.addEventListener(
  'click',
  (event) => {
    if (event.target instanceof Element && event.target.closest('.graphiql-execute-button')) askAgain();
  },
  true,
);
document.addEventListener(
  'keydown',
  (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) askAgain();
  },
  true,
);

const home = window.React.createElement(
  'a',
  { className: 'funnel-home', href: '/', title: 'The funnel dashboard' },
  'funnelgate dashboard',
);

window.ReactDOM.createRoot(document.getElementById('graphiql')).render(
  window.React.createElement(
    window.GraphiQL,
    {
      fetcher,
      defaultQuery: config.defaultQuery,
      defaultEditorToolsVisibility: false,
      shouldPersistHeaders: false,
    },
    window.React.createElement(window.GraphiQL.Logo, null, home),
  ),
);
