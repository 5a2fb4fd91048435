import { z } from 'zod';

/**
 * Task priority as people set it: an integer level, higher starts first (0 by default). BullMQ
 * starts lower numbers first, so each level is a band of BullMQ priorities, and within a band the
 * fair rank (FAIR_START: one more than the repository's tasks already waiting) orders repositories
 * fairly. A higher level always goes first; among tasks of one level, no repository holds back
 * another.
 */
export const PRIORITY_MIN = -10;
export const PRIORITY_MAX = 10;
export const priorityLevelSchema = z.number().int().min(PRIORITY_MIN).max(PRIORITY_MAX);

/** Fair ranks per band: a repository with more tasks than this waiting ranks them all last in the band. */
const BAND = 65_536;

/** The BullMQ priority of a task of `level` whose fair rank is `rank` (1 without FAIR_START). Always within BullMQ's 2^21. */
export function startPriority(level: number, rank = 1): number {
  return (PRIORITY_MAX - level) * BAND + Math.min(Math.max(1, rank), BAND - 1);
}

/** The level a BullMQ priority was made from (for a task queued with one). */
export function levelOf(priority: number): number {
  return PRIORITY_MAX - Math.floor(priority / BAND);
}
