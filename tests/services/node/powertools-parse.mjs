// powertools-parse.mjs SCHEMA: parses each event of the JSON array on stdin with the schema of
// that name from Powertools for AWS Lambda's parser (@aws-lambda-powertools/parser/schemas, as
// real handlers do: KinesisDataStreamSchema, SqsSchema, ...). Exit 0 when every event parses;
// else 1, printing the first refusal (the event's index and zod's issues).
import { readFileSync } from 'node:fs';
import * as schemas from '@aws-lambda-powertools/parser/schemas';

const name = process.argv[2];
const schema = schemas[name];
if (!schema) {
  console.error(`no schema named ${name}`);
  process.exit(2);
}
const events = JSON.parse(readFileSync(0, 'utf8'));
for (const [i, ev] of events.entries()) {
  const r = schema.safeParse(ev);
  if (!r.success) {
    console.error(`event ${i} refused by ${name}: ${JSON.stringify(r.error.issues)}`);
    process.exit(1);
  }
}
console.log(`${events.length} events parsed by ${name}`);
