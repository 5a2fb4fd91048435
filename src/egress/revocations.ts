import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Credentials given back before their expiry: a setup phase's wider one, once the setup command
 * has ended (the agent that follows could read it from its parent's environment). Kept by digest
 * until the credential would have expired anyway, and written to the proxy's own volume so a
 * restarted proxy still refuses them.
 */
export class Revocations {
  private readonly revoked = new Map<string, number>();
  private readonly file: string | null;

  constructor(dir: string | null) {
    this.file = dir ? join(dir, 'revoked.json') : null;
    if (!this.file) return;
    try {
      for (const [digest, until] of Object.entries(JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, number>)) this.revoked.set(digest, until);
    } catch {
      // None yet.
    }
  }

  revoke(credential: string, expiresAt: number): void {
    this.revoked.set(digest(credential), expiresAt);
    const now = Date.now();
    for (const [key, until] of this.revoked) if (until < now) this.revoked.delete(key);
    if (!this.file) return;
    writeFileSync(`${this.file}.tmp`, JSON.stringify(Object.fromEntries(this.revoked)));
    renameSync(`${this.file}.tmp`, this.file);
  }

  has(credential: string): boolean {
    return this.revoked.has(digest(credential));
  }

  /** Every credential of `attempt` dies now: berth says so once the attempt's workload has exited. */
  endAttempt(attempt: string, until: number): void {
    this.revoke(`attempt:${attempt}`, until);
  }

  ended(attempt: string): boolean {
    return this.has(`attempt:${attempt}`);
  }
}

function digest(credential: string): string {
  return createHash('sha256').update(credential).digest('base64url');
}
