import { z } from 'zod';
import { parseByteSize } from '../byte-size.js';
import { parseDuration } from '../duration.js';

// zod fields for settings read from the environment: every value arrives as a string.

/** `a, b,,c` → [a, b, c]: how every comma-separated setting is read. */
export function splitList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A budget figure as written: a non-negative amount (`whole`: a count of tokens); null when it is not one. */
export function parseAmount(text: string, whole = false): number | null {
  const value = Number(text);
  return text.trim() !== '' && Number.isFinite(value) && value >= 0 && (!whole || Number.isSafeInteger(value)) ? value : null;
}

/** What a budget figure should look like, for the problem a bad one gets. */
export const amountHint = (whole: boolean) => (whole ? 'a whole number of tokens' : 'an amount in USD such as 2.50');

/** An amount in USD, 0 meaning none. */
export const usd = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const value = parseAmount(text);
      if (value === null) {
        ctx.addIssue({ code: 'custom', message: `expected ${amountHint(false)}, got '${text}'` });
        return z.NEVER;
      }
      return value;
    });

export const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: `expected a duration like 30s, 45m, 2h or plain milliseconds, got '${text}'` });
        return z.NEVER;
      }
      return ms;
    });

export const byteSize = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const bytes = parseByteSize(text);
      if (bytes === null) {
        ctx.addIssue({ code: 'custom', message: `expected a size like 512m or 2g, got '${text}'` });
        return z.NEVER;
      }
      return bytes;
    });

export const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .default(String(fallback))
    .transform((text, ctx) => {
      const value = /^\s*-?\d+\s*$/.test(text) ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(value) || value < min || value > max) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number from ${min} to ${max}, got '${text}'` });
        return z.NEVER;
      }
      return value;
    });

export const required = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? `required: ${what}` : undefined);

export const boolean = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: (issue) => `expected true or false, got '${String(issue.input)}'` })
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const list = (fallback = '') => z.string().default(fallback).transform(splitList);
