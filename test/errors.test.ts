import { describe, expect, it } from 'vitest';
import { FastifyRefused, GatewayError, GatewayErrors } from '../src/errors.js';

describe("the gateway's error table", () => {
  it('binds each answer to a CDFGW_ code, a status and one message of its own', () => {
    const messages = new Map<string, string>();
    for (const [name, type] of Object.entries(GatewayErrors) as Array<
      [string, { code: string; status: number; format(...params: unknown[]): string }]
    >) {
      expect(type.code).toMatch(/^CDFGW_[A-Z_]+$/);
      expect(type.status === 0 || (type.status >= 400 && type.status < 600)).toBe(true);
      const message = type.format('X', 'Y');
      const twin = messages.get(`${type.code} ${message}`);
      expect(twin, `${name} repeats ${twin}`).toBeUndefined();
      messages.set(`${type.code} ${message}`, name);
    }
  });

  it("fills the template's parameters and answers in CDF's shape with the gateway's code", () => {
    const err = new GatewayErrors.QUEUE_FULL('assets').withHeaders({ 'retry-after': '2' });
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.message).toBe("Gateway queue for 'assets' is full. Please try again later.");
    expect(JSON.parse(err.body())).toEqual({
      error: { code: 429, message: err.message, gatewayCode: 'CDFGW_QUEUE_FULL' },
    });
    expect(err.headers).toEqual({ 'retry-after': '2' });
    // Headers the table binds stay, next to the call site's.
    expect(new GatewayErrors.BODY_TOO_LARGE(1024).withHeaders({ 'x-a': '1' }).headers).toEqual({
      connection: 'close',
      'x-a': '1',
    });
    expect(new GatewayErrors.CLIENT_GONE().headers).toEqual({});
    expect(GatewayErrors.RESPONSE_STALLED.format(2.5)).toBe('The app read nothing for 2.5 s: answer ended.');
    const refused = new FastifyRefused(414, 'URI too long');
    expect([refused.status, refused.code, refused.message]).toEqual([414, 'CDFGW_BAD_REQUEST', 'URI too long']);
  });
});
