#!/usr/bin/env node
/**
 * An example agent that needs no model (AGENT_COMMAND_REVIEW="node /app/dist/worker/agents/review-diff.js"):
 * it reviews the pull request berth checked out into its working directory mechanically — the
 * files changed against the base branch, and every added line with TODO or FIXME — and posts the
 * result as a pull request review with the task's token. Small, but the whole contract in use:
 * task file, checkout, token, result. See docs/agents.md.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { codeSpan } from '../../core/markdown.js';

interface Task {
  repo: string;
  number?: number;
  pull?: { sha: string; baseRef: string };
}
interface Finding {
  path: string;
  line: number;
  text: string;
}

const task = JSON.parse(readFileSync(process.env.BERTH_TASK_FILE ?? '/work/task.json', 'utf8')) as Task;
const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

if (!task.pull || task.number === undefined) {
  console.error('review-diff: this agent reviews pull requests; the task has none');
  process.exit(78);
}
const range = `${task.pull.baseRef}...HEAD`;
const changed = git('diff', '--name-status', range)
  .split('\n')
  .filter(Boolean)
  .map((line) => {
    const [status, ...paths] = line.split('\t');
    return { status: status!, path: paths[paths.length - 1]! };
  });

// Added lines, with their line numbers in the new file, from zero-context hunks.
const findings: Finding[] = [];
let path = '';
let next = 0;
for (const line of git('diff', '-U0', '--no-color', range).split('\n')) {
  if (line.startsWith('+++ ')) path = line.startsWith('+++ b/') ? line.slice(6) : '';
  else if (line.startsWith('@@')) next = Number(/\+(\d+)/.exec(line)?.[1] ?? 0);
  else if (line.startsWith('+') && path) {
    if (/\b(TODO|FIXME)\b/.test(line)) findings.push({ path, line: next, text: line.slice(1).trim() });
    next++;
  }
}

const summary = `Reviewed ${changed.length} changed file${changed.length === 1 ? '' : 's'} against ${task.pull.baseRef}: ${findings.length} TODO/FIXME line${findings.length === 1 ? '' : 's'} added`;
const body = [
  `**berth review-diff** (mechanical, no model): ${summary}.`,
  '',
  '| status | file |',
  '|---|---|',
  // File names and added lines are the pull request author's text: fenced, never markdown.
  ...changed.map((c) => `| ${codeSpan(c.status, { inTable: true })} | ${codeSpan(c.path, { inTable: true })} |`),
].join('\n');
console.log(summary);

const token = process.env.GITHUB_TOKEN;
let review: number | null = null;
if (token) {
  const api = (process.env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/$/, '');
  const response = await fetch(`${api}/repos/${task.repo}/pulls/${task.number}/reviews`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'content-type': 'application/json', 'user-agent': 'berth-review-diff' },
    body: JSON.stringify({
      commit_id: task.pull.sha,
      event: 'COMMENT',
      body,
      comments: findings
        .slice(0, 50)
        .map((f) => ({ path: f.path, line: f.line, side: 'RIGHT', body: `Added ${codeSpan(f.text.slice(0, 200))}: worth resolving before merge?` })),
    }),
  });
  if (!response.ok) {
    console.error(`review-diff: posting the review failed: HTTP ${response.status} ${(await response.text()).slice(0, 300)}`);
    // 5xx and rate limits are worth another attempt; anything else is not.
    process.exit(response.status >= 500 || response.status === 429 ? 75 : 78);
  }
  review = ((await response.json()) as { id: number }).id;
} else {
  console.log(body);
}
writeFileSync(process.env.BERTH_RESULT_FILE ?? '/work/result.json', JSON.stringify({ summary, files: changed.length, findings, review }));
