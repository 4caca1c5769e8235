// graphql-http's GraphQL-over-HTTP server audit against the URL given as the only argument: prints
// one JSON array, each audit's id, name ("MUST …", "SHOULD …", "MAY …"), status ("ok" or not) and
// the reason it failed. Run by tests/test_http_audit.py once `npm ci` has installed this folder.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = await auditServer({ url });
const rows = results.map(({ id, name, status, reason }) => ({ id, name, status, reason: reason ?? null }));
console.log(JSON.stringify(rows));
