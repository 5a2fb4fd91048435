/**
 * Masks what berth publishes or stores: a workload's own secrets (its token, every WORKER_ENV
 * value) and anything shaped like a GitHub token, whatever printed them. An agent that puts its
 * token or model key into its result summary, a failure reason or its output must not see it in a
 * check run, a comment, a job log or the task API.
 */
const GITHUB_TOKEN = /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g;
/** The start of a GitHub token at the very end of a cut text (its rest was cut away). */
const GITHUB_TOKEN_TAIL = /\b(gh[pousr]_[A-Za-z0-9]*|github_pat_[A-Za-z0-9_]*)$/;
export const MASK = '***';
/** Shorter values are not masked: they would blank ordinary words. */
const MIN_SECRET_LENGTH = 6;
/** A secret's start kept at the end of a cut text is hidden down to one character: the text is cut anyway. */
const MIN_TAIL = 1;

export function maskTokens(text: string): string {
  return text.replace(GITHUB_TOKEN, MASK);
}

export class SecretMask {
  private readonly values: string[];

  constructor(secrets: Iterable<string>) {
    this.values = [...new Set([...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  }

  mask(text: string): string {
    let out = text;
    for (const secret of this.values) if (out.includes(secret)) out = out.split(secret).join(MASK);
    return maskTokens(out);
  }

  /**
   * For a text that was cut: masked, and a secret's (or a token's) beginning left at the cut is
   * hidden too, so a secret that straddles the cut keeps none of its characters.
   */
  maskCut(text: string): string {
    let out = this.mask(text);
    const tail = GITHUB_TOKEN_TAIL.exec(out);
    if (tail) out = `${out.slice(0, tail.index)}${MASK}`;
    for (const secret of this.values) {
      for (let n = Math.min(secret.length - 1, out.length); n >= MIN_TAIL; n--) {
        if (out.endsWith(secret.slice(0, n))) {
          out = `${out.slice(0, out.length - n)}${MASK}`;
          break;
        }
      }
    }
    return out;
  }

  /** Every string in a JSON value (an agent's result), masked; keys too. */
  maskValue<T>(value: T): T {
    if (typeof value === 'string') return this.mask(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.maskValue(v)) as T;
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.mask(k), this.maskValue(v)])) as T;
    return value;
  }
}
