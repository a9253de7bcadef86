import type { FastifyServerOptions } from 'fastify';

/** What a route that declares a schema gets: the gateway forwards bytes and has no compiler for one. */
function refuse(): never {
  throw new Error('cdf-gateway: its routes take no JSON schema (no validator or serializer compiler is loaded)');
}

/**
 * fastify's options for a server whose routes declare no JSON schema, as every route of the gateway and of
 * its admin port does (bodies are forwarded as bytes; replies are JSON.stringify'd). fastify loads ajv and
 * fast-json-stringify for its default compilers whether a route uses them or not: 118 modules and about
 * 1.3 MiB of a sidecar's idle heap. These compilers load nothing, and a route that declares a schema fails
 * when it is registered instead of passing unchecked.
 */
export const SCHEMALESS: Pick<FastifyServerOptions, 'schemaController'> = {
  schemaController: { compilersFactory: { buildValidator: () => refuse, buildSerializer: () => refuse } },
};
