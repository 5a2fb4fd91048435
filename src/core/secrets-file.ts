import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The secrets a backend handed over as a file (a swarm secret) rather than as environment: a JSON
 * object of name → value. Empty when the backend put them in the environment (one engine).
 */
export function readSecretsFile(path: string | undefined): Record<string, string> {
  if (!path) return {};
  return z.record(z.string(), z.string()).parse(JSON.parse(readFileSync(path, 'utf8')));
}
