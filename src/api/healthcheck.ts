#!/usr/bin/env node
/** Docker HEALTHCHECK: the image has no curl, so Node asks /healthz itself. */
const port = process.env.PORT || '3000';
const host = !process.env.HOST || process.env.HOST === '0.0.0.0' ? '127.0.0.1' : process.env.HOST;
try {
  const response = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`, { signal: AbortSignal.timeout(2500) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
