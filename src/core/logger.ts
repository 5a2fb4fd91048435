import { pino, type Logger } from 'pino';

export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    // Defence in depth: a token must never reach a log line even if someone logs a whole object.
    redact: { paths: ['*.GITHUB_TOKEN', '*.token', '*.authorization', 'req.headers.authorization', '*.API_TOKEN', '*.Env'], censor: '[redacted]' },
  });
}
