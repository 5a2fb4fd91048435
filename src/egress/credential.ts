import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/**
 * An attempt's egress credential: who it is, what it may reach, until when. Signed by berth with
 * the secret it shares with the proxy, so the proxy needs no store to check one (it keeps working
 * through a Redis outage) and a worker cannot widen its own: any change breaks the signature.
 */
export const grantSchema = z.object({
  /** The attempt: `<jobId>#<attempt>`. */
  attempt: z.string().min(1),
  kind: z.string().min(1),
  hosts: z.array(z.string()),
  ports: z.array(z.number().int().min(1).max(65_535)),
  allowPrivate: z.array(z.string()),
  /** Model providers this attempt may use through the proxy (by name). */
  providers: z.array(z.string()),
  /** Expiry, ms since epoch. */
  expiresAt: z.number().int(),
  /**
   * The task's model budget, and what its earlier attempts spent: retries draw on one budget. The
   * proxy refuses model calls once this attempt's spend (by its price table) brings the total to it.
   */
  budget: z
    .object({
      tokens: z.number().nonnegative().optional(),
      usd: z.number().nonnegative().optional(),
      spentTokens: z.number().nonnegative(),
      spentUsd: z.number().nonnegative(),
    })
    .optional(),
  /** `setup`: the wider grant of SETUP_COMMAND_<KIND>, given back when the setup ends. */
  phase: z.enum(['setup', 'agent']).optional(),
});
export type Grant = z.infer<typeof grantSchema>;

const PREFIX = 'berth-egress.';

export function signGrant(grant: Grant, secret: string): string {
  const body = Buffer.from(JSON.stringify(grant)).toString('base64url');
  return `${PREFIX}${body}.${mac(body, secret)}`;
}

export type Verified = { ok: true; grant: Grant } | { ok: false; reason: string };

export function verifyGrant(credential: string, secrets: string[], now = Date.now()): Verified {
  if (!credential.startsWith(PREFIX)) return { ok: false, reason: 'no berth egress credential' };
  const [body = '', signature = ''] = credential.slice(PREFIX.length).split('.');
  const given = Buffer.from(signature, 'base64url');
  const valid = secrets.some((secret) => {
    const expected = Buffer.from(mac(body, secret), 'base64url');
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
  if (!valid) return { ok: false, reason: 'the egress credential is not signed by berth' };
  let grant: Grant;
  try {
    grant = grantSchema.parse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
  } catch {
    return { ok: false, reason: 'the egress credential is malformed' };
  }
  if (grant.expiresAt <= now) return { ok: false, reason: `the egress credential of ${grant.attempt} expired` };
  return { ok: true, grant };
}

function mac(body: string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('base64url');
}
