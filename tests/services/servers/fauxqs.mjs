// SPDX-License-Identifier: Apache-2.0
// An SQS server for sluice's tests: fauxqs 1.9.2 (AWS JSON 1.0 only, in memory), listening on
// 127.0.0.1 only.  fauxqs's own startFauxqs() binds every interface and names queues
// http://sqs.<region>.localhost:<port>/..., which does not resolve here; so this builds the app
// itself and clears the store's host, which makes queue URLs follow the request's Host header:
// http://127.0.0.1:<port>/000000000000/<name>.  fauxqs finds queues by that exact URL.
// Also serves GET /health.  Exits 0 on SIGTERM or SIGINT.
//
// usage: node fauxqs.mjs [PORT]   (default 9325; modules from ../node/node_modules, `npm ci`)
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)),
                       '..', 'node', 'node_modules', 'fauxqs', 'dist');
const load = (rel) => import(pathToFileURL(path.join(dist, rel)).href);
const { buildApp } = await load('app.js');
const { SqsStore } = await load(path.join('sqs', 'sqsStore.js'));

const port = Number.parseInt(process.argv[2] ?? '9325', 10);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`fauxqs: invalid port '${process.argv[2]}'`);
    process.exit(2);
}
const sqsStore = new SqsStore();
sqsStore.host = '';
const app = buildApp({ logger: false, stores: { sqsStore } });
await app.listen({ host: '127.0.0.1', port });
console.log(`fauxqs 1.9.2 listening on http://127.0.0.1:${port}`);

let closing = false;
const shutdown = () => {
    if (closing) return;
    closing = true;
    app.close().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
