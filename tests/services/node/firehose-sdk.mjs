// firehose-sdk.mjs ENDPOINT: runs the calls of the JSON array on stdin with the JavaScript SDK's
// FirehoseClient (@aws-sdk/client-firehose), unchanged but for its endpoint and credentials, as
// an application does: [{"op": "PutRecordBatch", "input": {...}}, ...], where each record is
// {"Data": base64} or {"Text": plain text} (made bytes here, since the SDK takes bytes) and a step
// with "parallel": N runs N copies of its call at once (a Text may hold "{i}", replaced by the
// copy's index). Prints one JSON line per step: {"ok": output} or {"error": name, "fault", "status"},
// with the attempts the SDK made ($metadata.attempts; for parallel steps, a list of results).
// The SDK's own retry (its standard mode) is what retries a refused call; the step "Produce" is
// an application's loop around it.
import { readFileSync } from 'node:fs';
import {
  FirehoseClient,
  PutRecordCommand,
  PutRecordBatchCommand,
  DescribeDeliveryStreamCommand,
  ListDeliveryStreamsCommand,
} from '@aws-sdk/client-firehose';

const commands = {
  PutRecord: PutRecordCommand,
  PutRecordBatch: PutRecordBatchCommand,
  DescribeDeliveryStream: DescribeDeliveryStreamCommand,
  ListDeliveryStreams: ListDeliveryStreamsCommand,
};

const client = new FirehoseClient({
  endpoint: process.argv[2],
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIDFAKEFAKEFAKE', secretAccessKey: 'fake-secret' },
});

function bytes(rec, i) {
  if (rec.Text !== undefined) {
    return { Data: Buffer.from(rec.Text.replaceAll('{i}', String(i))) };
  }
  return { ...rec, Data: Buffer.from(rec.Data, 'base64') };
}

function decoded(input, i) {
  const out = { ...input };
  if (out.Record) out.Record = bytes(out.Record, i);
  if (out.Records) out.Records = out.Records.map((r) => bytes(r, i));
  return out;
}

async function call(step, i) {
  if (step.op === 'Produce') return produce(step.input);
  const Command = commands[step.op];
  if (!Command) return { error: 'NoSuchOp', fault: step.op };
  const started = Date.now();
  try {
    const out = await client.send(new Command(decoded(step.input || {}, i)));
    const { $metadata, ...rest } = out;
    return { ok: rest, attempts: $metadata.attempts, ms: Date.now() - started };
  } catch (e) {
    return {
      error: e.name,
      fault: e.$fault,
      status: e.$metadata?.httpStatusCode,
      attempts: e.$metadata?.attempts,
      message: e.message,
    };
  }
}

// A producer as applications write one: `batches` PutRecordBatch calls of `size` records
// ("<prefix>-<batch>-<n>\n"), each call's failed records sent again, and a call that failed as
// a whole (after the SDK's own retries) sent again after `pauseMs`, until every record is taken;
// `everyMs` between calls.
async function produce(input) {
  const errors = {};
  let refusedRecords = 0;
  let retriedCalls = 0; // calls the SDK itself sent more than once
  for (let b = 0; b < input.batches; b++) {
    let pending = Array.from({ length: input.size }, (_, n) => `${input.prefix}-${b}-${n}\n`);
    while (pending.length) {
      try {
        const out = await client.send(new PutRecordBatchCommand({
          DeliveryStreamName: input.DeliveryStreamName,
          Records: pending.map((x) => ({ Data: Buffer.from(x) })),
        }));
        retriedCalls += out.$metadata.attempts > 1 ? 1 : 0;
        pending = pending.filter((_, i) => !out.RequestResponses[i].RecordId);
        refusedRecords += pending.length;
      } catch (e) {
        errors[e.name] = (errors[e.name] || 0) + 1;
        await new Promise((r) => setTimeout(r, input.pauseMs ?? 200));
      }
    }
    if (input.everyMs) await new Promise((r) => setTimeout(r, input.everyMs));
  }
  return { ok: { errors, refusedRecords, retriedCalls } };
}

const steps = JSON.parse(readFileSync(0, 'utf8'));
for (const step of steps) {
  if (step.parallel) {
    const all = await Promise.all(Array.from({ length: step.parallel }, (_, i) => call(step, i)));
    console.log(JSON.stringify(all));
  } else {
    console.log(JSON.stringify(await call(step, 0)));
  }
}
