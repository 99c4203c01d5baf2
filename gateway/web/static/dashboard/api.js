// The dashboard's only way to the gateway: its public GraphQL API. Queries over HTTP (POST /graphql),
// subscriptions over WebSocket with the graphql-transport-ws protocol (a small client, below).
import { askKey, authFetch, authHeaders, forgetKey } from '/static/common/auth.js';

export const ENDPOINT = '/graphql';

// A failed request, or a GraphQL answer whose errors left nothing to show.
export class ApiError extends Error {
  constructor(message, { status = 0, errors = [] } = {}) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

// Whether the last query was refused for want of a key (the key dialog cancelled): the page's own
// refreshes then stop asking (a reload is the way to a key).
export let refusedForKey = false;

// Run a query; resolves to { data, errors } (errors: [] when none). Field errors come back beside
// the data they spared; a request that produced no data at all rejects with an ApiError.
export async function query(document, variables = {}) {
  let response;
  try {
    response = await authFetch(ENDPOINT, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json;q=0.9',
      },
      body: JSON.stringify({ query: document, variables }),
    });
  } catch (error) {
    throw new ApiError(`The gateway cannot be reached (${error.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: the status says what happened */
  }
  const errors = (body && Array.isArray(body.errors) && body.errors) || [];
  refusedForKey = response.status === 401;
  if (response.status === 401) {
    throw new ApiError('This gateway needs an API key; reload the page to enter one.', { status: 401, errors });
  }
  if (!body || body.data == null) {
    const message = errors[0]?.message || `The gateway answered HTTP ${response.status}.`;
    throw new ApiError(message, { status: response.status, errors });
  }
  return { data: body.data, errors };
}

// The errors of an answer that concern one field path (e.g. ['user', 'similarUsers']).
export function errorsAt(errors, ...path) {
  return errors.filter((e) => Array.isArray(e.path) && path.every((p, i) => e.path[i] === p));
}

// Run a query and resolve to one root field's value. Root fields are nullable (an error in one spares
// the others' data), so a field that failed comes back null beside its error: that rejects here with an
// ApiError, as an answer without data does, and its caller shows the error it always showed.
export async function queryField(name, document, variables = {}) {
  const { data, errors } = await query(document, variables);
  if (data[name] == null) {
    const own = errorsAt(errors, name);
    const message = (own[0] || errors[0])?.message || `The gateway answered no ${name}.`;
    throw new ApiError(message, { status: 200, errors: own.length ? own : errors });
  }
  return data[name];
}

// ---- graphql-transport-ws --------------------------------------------------------------------------
// One socket for all subscriptions, opened on the first one; reconnects with backoff and subscribes
// again. The key goes in connection_init; a refusal (4403) asks for a key once, then reconnects.

const CLOSE_FORBIDDEN = 4403;
const CLOSE_UNAUTHORIZED = 4401;

// Why the live socket was refused, for the key dialog. A key the gateway does not know (revoked, or
// the gateway restarted with other keys) is closed with a bare "Forbidden", which told nobody that it
// was this tab's key that stopped working; an expired token's reason says so itself and is kept.
function refusal(reason, hadKey) {
  if (reason && reason !== 'Forbidden') return reason;
  return hadKey
    ? "The gateway no longer accepts this tab's key (the live connection was refused): enter another."
    : 'The live connection needs an API key.';
}

export class LiveClient {
  constructor(onStatus = () => {}) {
    this.onStatus = onStatus;
    this.socket = null;
    this.acked = false;
    this.nextId = 1;
    this.subscriptions = new Map(); // id -> { payload, sink }
    this.retries = 0;
    this.timer = null;
  }

  url() {
    const url = new URL(ENDPOINT, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }

  status(state, detail = '') {
    this.onStatus(state, detail);
  }

  connect() {
    if (this.socket) return;
    this.status('connecting');
    const socket = new WebSocket(this.url(), 'graphql-transport-ws');
    this.socket = socket;
    this.acked = false;
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: authHeaders() }));
    });
    socket.addEventListener('message', (event) => this.receive(socket, event.data));
    socket.addEventListener('close', (event) => this.closed(socket, event));
  }

  receive(socket, raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    switch (message.type) {
      case 'connection_ack':
        this.acked = true;
        this.retries = 0;
        this.status('live');
        for (const [id, sub] of this.subscriptions) this.send(id, sub.payload);
        break;
      case 'ping':
        socket.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'next':
        this.subscriptions.get(message.id)?.sink.next(message.payload);
        break;
      case 'error': {
        const sub = this.subscriptions.get(message.id);
        this.subscriptions.delete(message.id);
        sub?.sink.error(new ApiError(message.payload?.[0]?.message || 'subscription refused', { errors: message.payload }));
        break;
      }
      case 'complete': {
        const sub = this.subscriptions.get(message.id);
        this.subscriptions.delete(message.id);
        sub?.sink.complete?.();
        break;
      }
      default:
        break;
    }
  }

  async closed(socket, event) {
    if (this.socket !== socket) return;
    this.socket = null;
    this.acked = false;
    if (this.subscriptions.size === 0) {
      this.status('idle');
      return;
    }
    if (event.code === CLOSE_FORBIDDEN || event.code === CLOSE_UNAUTHORIZED) {
      const reason = refusal(event.reason, Boolean(authHeaders().Authorization));
      forgetKey();
      this.status('unauthorized', reason);
      const key = await askKey(reason);
      if (!key) {
        this.status('unauthorized', 'no API key: live metrics are off');
        return;
      }
      this.connect();
      return;
    }
    const delay = Math.min(15000, 1000 * 2 ** this.retries);
    this.retries += 1;
    this.status('reconnecting', `connection lost; retrying in ${Math.round(delay / 1000)} s`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  send(id, payload) {
    this.socket.send(JSON.stringify({ id, type: 'subscribe', payload }));
  }

  // sink: { next(payload), error(err), complete() }. Returns a function that stops the subscription.
  subscribe(document, variables, sink) {
    const id = String(this.nextId++);
    const payload = { query: document, variables };
    this.subscriptions.set(id, { payload, sink });
    if (this.socket && this.acked) this.send(id, payload);
    else this.connect();
    return () => {
      if (!this.subscriptions.delete(id)) return;
      if (this.socket && this.acked) this.socket.send(JSON.stringify({ id, type: 'complete' }));
    };
  }
}
