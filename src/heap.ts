import { setFlagsFromString } from 'node:v8';

/**
 * The old generation may grow to this many times its live size before V8 marks it again (V8 picks 1.1x to 4x
 * by itself, from how fast its last collections ran).
 *
 * Why: every byte read from CDF arrives in a new ArrayBuffer, and V8 counts the external bytes allocated since
 * the last mark-compact against the old generation's limit. A young-generation collection frees those buffers
 * only once about 32 MiB of them have piled up, so the limit must leave that much room above the live heap
 * (~13 MiB here) plus the new space. V8's own factor for a heap this small leaves ~25 MiB: a large answer
 * reaches the limit first, and the process falls into a full mark-compact every ~40 ms while it streams (13-16 %
 * of its CPU, a state it does not leave under load) or stays in cheap scavenges, depending on where its first
 * collection under load happens to land. GET 1 MiB answers at 8 connections, 4 fresh processes each
 * (`node bench/gc-mode.mjs gateway 4`): V8's default put 3 of 4 in 60-80 mark-compacts per 5 s at 1.7-3.0 ms
 * CPU per MiB; a factor of 3 left 7-14; a factor of 4 left 1 in every process, at 1.1-1.4 ms per MiB (the bare
 * proxy, on V8's default: 30-77, 1.6-2.1 ms). The old generation of a proxy is mostly its code and tables, so
 * the garbage this lets pile up between collections is tens of MiB, not hundreds.
 */
export const HEAP_GROWING_FACTOR = 4;

/**
 * Applies the gateway's heap policy to this process, unless the operator set the flag on node's command line.
 * The CLI calls it; a program that embeds the gateway (buildGateway) keeps its own process's settings.
 */
export function applyHeapPolicy(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => arg.startsWith('--heap-growing-percent') || arg.startsWith('--heap_growing_percent')))
    return false;
  // Read by V8 each time it sets a new limit after a mark-compact, so setting it at start-up takes effect.
  setFlagsFromString(`--heap-growing-percent=${(HEAP_GROWING_FACTOR - 1) * 100}`);
  return true;
}
