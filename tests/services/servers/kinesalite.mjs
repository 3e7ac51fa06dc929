// SPDX-License-Identifier: Apache-2.0
// A Kinesis server for sluice's tests: kinesalite 3.3.3 (Kinesis JSON 1.1, CBOR also accepted),
// in memory, listening on 127.0.0.1 only.  kinesalite's own cli.js listens on every interface and
// has no host option, so this builds the server itself and binds it to loopback.  Streams stay
// CREATING/UPDATING/DELETING for STATE_MS (default 50; kinesalite's own is 500), and up to 1000
// shards may exist (kinesalite's default is 10).  It checks that a SigV4 Authorization header is
// present but not the signature.  Exits 0 on SIGTERM or SIGINT.
//
// For tests that need records of a chosen age: with KINESALITE_CLOCK_FILE set, kinesalite's
// clock (Date.now, which stamps ApproximateArrivalTimestamp, sequence numbers and iterators) is
// the epoch milliseconds written in that file, read on every call, and the real time while the
// file is empty or missing.
//
// usage: node kinesalite.mjs [PORT] [STATE_MS]   (default 4567 50; PORT 0 takes a free port,
//        printed in the "listening on" line; modules from ../node/node_modules, `npm ci`)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'node', 'package.json'));
const kinesalite = require('kinesalite');

const clockFile = process.env.KINESALITE_CLOCK_FILE;
if (clockFile) {
    const realNow = Date.now;
    Date.now = () => {
        let text = '';
        try {
            text = readFileSync(clockFile, 'utf8').trim();
        } catch {
            return realNow();
        }
        return /^[0-9]+$/.test(text) ? Number.parseInt(text, 10) : realNow();
    };
}

const arg = (i, def) => {
    const s = process.argv[i] ?? def;
    const n = Number.parseInt(s, 10);
    if (!/^[0-9]+$/.test(s) || !Number.isInteger(n)) {
        console.error(`kinesalite: invalid argument ${i - 1} '${s}' (want a number)`);
        process.exit(2);
    }
    return n;
};
const port = arg(2, '4567');
const stateMs = arg(3, '50');
if (port > 65535) {
    console.error(`kinesalite: invalid port '${port}' (0..65535)`);
    process.exit(2);
}

const server = kinesalite({ createStreamMs: stateMs, deleteStreamMs: stateMs,
                            updateStreamMs: stateMs, shardLimit: 1000 });
server.on('error', (err) => {
    console.error(`kinesalite: ${err.message}`);
    process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
    console.log(`kinesalite 3.3.3 listening on http://127.0.0.1:${server.address().port}`);
});

let closing = false;
const shutdown = () => {
    if (closing) return;
    closing = true;
    // keep-alive connections would hold close() open: end them
    if (server.closeAllConnections) server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
