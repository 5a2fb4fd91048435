import { StringDecoder } from 'node:string_decoder';
import type { Usage } from '../core/egress-record.js';

/**
 * Token usage read off a model provider's own responses, JSON or SSE, as they stream past: what
 * an attempt really cost, not what the agent says it cost. Anthropic's Messages API and OpenAI's
 * Responses and Chat Completions APIs.
 */

type Raw = Record<string, unknown>;
const num = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);

/** One `usage` object in any of the providers' shapes; input tokens exclude cached ones in both. */
export function usageFrom(raw: unknown): Partial<Usage> {
  if (!raw || typeof raw !== 'object') return {};
  const u = raw as Raw;
  const openai = 'prompt_tokens' in u || 'input_tokens_details' in u || 'completion_tokens' in u;
  if (!openai) {
    return {
      inputTokens: num(u.input_tokens),
      outputTokens: num(u.output_tokens),
      cacheReadTokens: num(u.cache_read_input_tokens),
      cacheWriteTokens: num(u.cache_creation_input_tokens),
    };
  }
  // OpenAI counts cached tokens inside the input (prompt) count.
  const cached = num(((u.input_tokens_details ?? u.prompt_tokens_details ?? {}) as Raw).cached_tokens);
  const input = num(u.input_tokens) || num(u.prompt_tokens);
  return {
    inputTokens: Math.max(0, input - cached),
    outputTokens: num(u.output_tokens) || num(u.completion_tokens),
    cacheReadTokens: cached,
    cacheWriteTokens: 0,
  };
}

/**
 * Reads a response body as it passes, without holding more than one event (SSE) or, for JSON, at
 * most `maxJsonBytes` (a bigger JSON body is not a model response worth metering).
 */
export class UsageTap {
  private usage: Partial<Usage> = {};
  /** The model the response names (for its price); null when it named none. */
  model: string | null = null;
  private buffer = '';
  private json: Buffer[] = [];
  private jsonBytes = 0;
  private readonly sse: boolean;
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    contentType: string,
    private readonly maxJsonBytes = 4 << 20,
  ) {
    this.sse = contentType.includes('text/event-stream');
  }

  write(chunk: Buffer): void {
    if (!this.sse) {
      if (this.jsonBytes <= this.maxJsonBytes) this.json.push(chunk);
      this.jsonBytes += chunk.length;
      return;
    }
    // Only events that carry usage are parsed (message_start, message_delta, response.completed,
    // a chat chunk with usage); the text deltas, nearly all of a stream's bytes, are only scanned.
    this.buffer += this.decoder.write(chunk);
    let start = 0;
    let usageAt = this.buffer.indexOf('"usage"');
    for (;;) {
      const lf = this.buffer.indexOf('\n\n', start);
      const crlf = this.buffer.indexOf('\r\n\r\n', start);
      const end = lf < 0 ? crlf : crlf < 0 ? lf : Math.min(lf, crlf);
      if (end < 0) break;
      if (usageAt >= start && usageAt < end) {
        this.event(this.buffer.slice(start, end));
        usageAt = this.buffer.indexOf('"usage"', end);
      }
      start = end + (end === crlf ? 4 : 2);
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > 1 << 20) this.buffer = '';
  }

  /** The usage the whole response reported. */
  end(): Partial<Usage> {
    if (this.sse) {
      if (this.buffer.trim()) this.event(this.buffer);
    } else if (this.jsonBytes <= this.maxJsonBytes) {
      try {
        const body = JSON.parse(Buffer.concat(this.json).toString('utf8')) as Raw;
        this.usage = usageFrom(body.usage ?? (body.response as Raw | undefined)?.usage);
        this.noteModel(body.model ?? (body.response as Raw | undefined)?.model);
      } catch {
        // Not JSON (an error page): nothing to meter.
      }
    }
    return { ...this.usage, requests: 1 };
  }

  private event(text: string): void {
    const data = text
      .replace(/\r/g, '')
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    if (!data || data === '[DONE]') return;
    let body: Raw;
    try {
      body = JSON.parse(data) as Raw;
    } catch {
      return;
    }
    // Anthropic: message_start carries input (and cache) usage, message_delta the final output count.
    this.noteModel(body.model ?? (body.message as Raw | undefined)?.model ?? (body.response as Raw | undefined)?.model);
    if (body.type === 'message_start') {
      const message = usageFrom((body.message as Raw | undefined)?.usage);
      this.usage = { ...this.usage, ...message };
    } else if (body.type === 'message_delta') {
      const delta = usageFrom(body.usage);
      this.usage = {
        ...this.usage,
        outputTokens: delta.outputTokens ?? this.usage.outputTokens,
        ...(delta.inputTokens ? { inputTokens: delta.inputTokens } : {}),
      };
    } else if (body.type === 'response.completed') {
      this.usage = usageFrom((body.response as Raw | undefined)?.usage);
    } else if (body.usage) {
      // Chat Completions with stream_options.include_usage: the last chunk.
      this.usage = usageFrom(body.usage);
    }
  }

  private noteModel(model: unknown): void {
    if (this.model === null && typeof model === 'string' && model) this.model = model.slice(0, 100);
  }
}
