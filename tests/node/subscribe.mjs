// A subscription end to end with the reference graphql-ws client (protocol graphql-transport-ws), the
// library Apollo Client's GraphQLWsLink uses.
// Usage: node subscribe.mjs ws://127.0.0.1:PORT/graphql [count]
// Prints one JSON line per `next` payload, then {"complete":true,"received":N}. Exit 0 when `count`
// payloads arrived and the server completed the subscription, 1 otherwise.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // Node 20 has no global WebSocket

const url = process.argv[2];
const count = Number(process.argv[3] ?? 2);
const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
const timer = setTimeout(() => {
  console.error('no complete within 30 s');
  process.exit(1);
}, 30_000);
let received = 0;
try {
  const subscription = client.iterate({
    query: 'subscription Health($n: Int!) { health(intervalSeconds: 0.2, count: $n) { status } }',
    variables: { n: count },
  });
  for await (const result of subscription) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    received += 1;
    console.log(JSON.stringify(result));
  }
  console.log(JSON.stringify({ complete: true, received }));
  clearTimeout(timer);
  await client.dispose();
  process.exit(received === count ? 0 : 1);
} catch (err) {
  console.error(err instanceof Error ? err.message : JSON.stringify(err));
  process.exit(1);
}
