// The .proto is the readable spec of what txkit speaks; pulsar-api-schema.ts is what ships
// (protobufjs reflection JSON, nothing to locate on disk after bundling). This test keeps
// them identical; TXKIT_UPDATE_PROTO=1 rewrites the .ts from the .proto.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, it } from 'vitest';
import { PULSAR_API_SCHEMA } from '../../src/pulsar-client/generated/pulsar-api-schema.js';

const dir = fileURLToPath(new URL('../../src/pulsar-client/generated/', import.meta.url));

function schemaFromProto(): object {
  // Through JSON: toJSON() leaves null-prototype objects, the .ts holds plain ones.
  return JSON.parse(JSON.stringify(protobuf.parse(readFileSync(`${dir}pulsar-api.proto`, 'utf8')).root.toJSON())) as object;
}

function render(schema: object): string {
  return `// Generated from pulsar-api.proto (protobufjs reflection JSON); do not edit by hand.
// Regenerate: TXKIT_UPDATE_PROTO=1 npx vitest run test/pulsar/protocol-schema.test.ts
import type { INamespace } from 'protobufjs/light.js';

const schema = ${JSON.stringify(schema, null, 2)};

export const PULSAR_API_SCHEMA: INamespace = schema;
`;
}

describe('pulsar protocol schema', () => {
  it('pulsar-api-schema.ts is exactly the reflection of pulsar-api.proto', () => {
    const expected = schemaFromProto();
    if (process.env.TXKIT_UPDATE_PROTO === '1') writeFileSync(`${dir}pulsar-api-schema.ts`, render(expected));
    else assert.deepEqual(JSON.parse(JSON.stringify(PULSAR_API_SCHEMA)), expected, 'run with TXKIT_UPDATE_PROTO=1 to regenerate');
  });

  it('keeps the field numbers of the Pulsar protocol spec for the commands txkit sends', () => {
    const root = protobuf.Root.fromJSON(PULSAR_API_SCHEMA);
    const id = (type: string, field: string): number => root.lookupType(`pulsar.proto.${type}`).fields[field]?.id ?? -1;
    // Spot checks against PulsarApi.proto: the transaction commands and the fields the broker routes by.
    assert.equal(id('BaseCommand', 'tcClientConnectRequest'), 62);
    assert.equal(id('BaseCommand', 'newTxn'), 50);
    assert.equal(id('BaseCommand', 'endTxn'), 56);
    assert.equal(id('CommandNewTxn', 'txnTtlSeconds'), 2);
    assert.equal(id('CommandSend', 'txnidMostBits'), 5);
    assert.equal(id('MessageMetadata', 'txnidLeastBits'), 22);
    assert.equal(id('MessageMetadata', 'txnidMostBits'), 23);
    assert.equal(id('CommandAck', 'requestId'), 8);
    assert.equal(id('CommandAddSubscriptionToTxn', 'subscription'), 4);
    assert.equal(id('CommandEndTxn', 'txnAction'), 4);
  });
});
