import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { SCHEMALESS } from '../src/schemaless.js';

describe('schemaless fastify (src/schemaless.ts)', () => {
  it('serves routes without a schema, and refuses a route that declares one when the server starts', async () => {
    const plain = Fastify(SCHEMALESS);
    plain.post('/echo', async (req) => ({ got: req.body }));
    const answer = await plain.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ got: { a: 1 } });
    await plain.close();

    const withSchema = Fastify(SCHEMALESS);
    withSchema.post('/typed', { schema: { body: { type: 'object' } } }, async () => 'ok');
    await expect(withSchema.ready()).rejects.toThrow(/no JSON schema/);
  });
});
