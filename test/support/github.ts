import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign } from '@octokit/webhooks-methods';

export const WEBHOOK_SECRET = 'test-webhook-secret-0123456789';
export const PREVIOUS_SECRET = 'previous-webhook-secret-98765';

export function rulesFile(rules: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-rules-'));
  const path = join(dir, 'rules.json');
  writeFileSync(path, JSON.stringify(rules));
  return path;
}

export interface Delivery {
  status: number;
  body: any;
  delivery: string;
}

/** Sends a delivery the way GitHub does: raw JSON body, HMAC-SHA256 of those exact bytes. */
export async function deliver(
  url: string,
  event: string,
  payload: unknown,
  options: { secret?: string | null; delivery?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Delivery> {
  const delivery = options.delivery ?? randomUUID();
  const body = options.body ?? JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'user-agent': 'GitHub-Hookshot/test',
  };
  if (options.secret !== null) headers['x-hub-signature-256'] = await sign(options.secret ?? WEBHOOK_SECRET, body);
  Object.assign(headers, options.headers ?? {});
  const response = await fetch(`${url}/webhooks/github`, { method: 'POST', headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: response.status, body: parsed, delivery };
}
