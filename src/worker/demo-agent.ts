#!/usr/bin/env node
/**
 * A stand-in agent for trying berth out (AGENT_COMMAND_DEMO): reads the task, "works" for
 * BERTH_DEMO_SECONDS (default 5) while printing progress, then prints a JSON result. It is not
 * used by berth itself.
 */
import { readFileSync } from 'node:fs';

const task = JSON.parse(readFileSync(process.env.BERTH_TASK_FILE ?? '/work/task.json', 'utf8')) as {
  repo: string;
  kind: string;
  prompt?: string;
  attempt: number;
};
const seconds = Number(task.prompt?.match(/^\d+$/)?.[0] ?? process.env.BERTH_DEMO_SECONDS ?? 5);
console.log(`demo agent: ${task.kind} on ${task.repo}, attempt ${task.attempt}, working for ${seconds}s`);
let elapsed = 0;
const tick = setInterval(() => {
  elapsed++;
  console.log(`demo agent: ${elapsed}/${seconds}s`);
  if (elapsed >= seconds) {
    clearInterval(tick);
    console.log(JSON.stringify({ summary: `demo ${task.kind} of ${task.repo} done`, seconds }));
  }
}, 1000);
process.on('SIGTERM', () => {
  console.log('demo agent: stopping on SIGTERM');
  process.exit(143);
});
