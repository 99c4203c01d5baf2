// The GraphQL-over-HTTP reference audit (npm graphql-http) against a live server.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql [--json]
// Prints every check that is not ok (id, name, reason, and what the server answered), then a summary;
// --json prints the summary as JSON instead. Exit code: 0 when every check is ok, 1 otherwise.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL [--json]');
  process.exit(2);
}
const results = await auditServer({ url });
const summary = { total: results.length, ok: 0, warn: 0, error: 0, notice: 0, failures: [] };
for (const result of results) {
  summary[result.status] += 1;
  if (result.status !== 'ok') {
    let body = '';
    try {
      body = await result.response.text();
    } catch {
      // the audit already read it
    }
    summary.failures.push({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.reason,
      httpStatus: result.response.status,
      contentType: result.response.headers.get('content-type'),
      body: body.slice(0, 300),
    });
  }
}
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(summary, null, 2));
} else {
  for (const f of summary.failures) {
    console.log(`${f.status.toUpperCase()} ${f.id} ${f.name}\n    ${f.reason}\n    -> ${f.httpStatus} ${f.contentType} ${f.body}`);
  }
  console.log(`${summary.ok}/${summary.total} ok, ${summary.warn} warn, ${summary.error} error, ${summary.notice} notice`);
}
process.exit(summary.ok === summary.total ? 0 : 1);
