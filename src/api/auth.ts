import bearerAuth from '@fastify/bearer-auth';
import type { FastifyInstance } from 'fastify';

/**
 * Registers bearer-token auth on the calling plugin's scope (and everything registered inside
 * it). @fastify/bearer-auth compares in constant time.
 */
export async function requireBearerToken(scope: FastifyInstance, tokens: string[]): Promise<void> {
  await scope.register(bearerAuth, {
    keys: new Set(tokens),
    errorResponse: (error: Error) => ({
      error: 'Unauthorized',
      message: error.message === 'missing authorization header' ? 'send Authorization: Bearer <API_TOKEN>' : 'invalid token',
    }),
    verifyErrorLogLevel: 'warn',
  });
}
