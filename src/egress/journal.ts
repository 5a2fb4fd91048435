import type { EgressEntry, Usage } from '../core/egress-record.js';
import { type AttemptEgress, EgressLedger } from './ledger.js';

/**
 * What the ledger learns, one change at a time. On a swarm the proxy runs on every node and berth
 * can reach none of them (no exec into another node's container, no network between them), but the
 * manager serves every task's logs: the proxy prints each change as a log line (EGRESS_JOURNAL), and
 * berth replays an attempt's lines into the same record the ledger would have kept.
 */
export type JournalEvent =
  | { attempt: string; entry: EgressEntry }
  | { attempt: string; usage: Partial<Usage>; model: string | null }
  | { attempt: string; budgetExceeded: string };

/** The log line's message; berth finds the proxy's events by it. */
export const JOURNAL_MSG = 'egress event';

/** The proxy's log lines (pino JSON, one per line) that carry journal events. */
export function journalEvents(lines: Iterable<string>): JournalEvent[] {
  const events: JournalEvent[] = [];
  for (const line of lines) {
    const start = line.indexOf('{');
    if (start < 0 || !line.includes(JOURNAL_MSG)) continue;
    try {
      const parsed = JSON.parse(line.slice(start)) as { msg?: string; egress?: JournalEvent };
      if (parsed.msg === JOURNAL_MSG && typeof parsed.egress?.attempt === 'string') events.push(parsed.egress);
    } catch {
      // Not one of the proxy's lines (or cut by the log's rotation).
    }
  }
  return events;
}

/** One attempt's record from the journal, as the proxy's ledger holds it; null when the journal never named it. */
export function replayJournal(events: JournalEvent[], attempt: string): AttemptEgress | null {
  const ledger = new EgressLedger(null);
  let seen = false;
  for (const event of events) {
    if (event.attempt !== attempt) continue;
    seen = true;
    if ('entry' in event) ledger.record(attempt, event.entry);
    else if ('usage' in event) ledger.addUsage(attempt, event.usage, event.model);
    else ledger.overBudget(attempt, event.budgetExceeded);
  }
  return seen ? ledger.read(attempt) : null;
}

/** The attempts the journal says the proxy refused for a spent budget. */
export function overBudgetIn(events: JournalEvent[]): string[] {
  return [...new Set(events.filter((e) => 'budgetExceeded' in e).map((e) => e.attempt))];
}
