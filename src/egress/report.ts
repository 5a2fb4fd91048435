#!/usr/bin/env node
import http from 'node:http';
import { parseEgressConfig } from './config.js';

/**
 * Prints one attempt's egress record as JSON: what berth runs inside the proxy's container (an
 * exec needs no network between berth and the proxy). With --end, the attempt's credentials die
 * first (berth asks once the attempt's workload has exited). Exit code 3 when the proxy has no record.
 * `--over-budget` instead prints the attempts whose budget is spent (a JSON list), for berth to stop.
 */
const attempt = process.argv[2];
const end = process.argv.includes('--end');
const overBudget = attempt === '--over-budget';
if (!attempt) {
  process.stderr.write('usage: report.js <jobId>#<attempt> [--end] | report.js --over-budget\n');
  process.exit(2);
}
const config = parseEgressConfig(process.env);
const path = overBudget ? '/_berth/over-budget' : `/_berth/attempts/${encodeURIComponent(attempt)}`;
const request = http.request(
  { socketPath: config.EGRESS_SOCKET, method: end ? 'POST' : 'GET', path, headers: { 'x-berth-admin': config.EGRESS_ADMIN_TOKEN } },
  (response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (body += chunk));
    response.on('end', () => {
      process.stdout.write(`${body}\n`);
      process.exit(response.statusCode === 200 ? 0 : 3);
    });
  },
);
request.on('error', (error) => {
  process.stderr.write(`berth-egress report: ${error.message}\n`);
  process.exit(1);
});
request.end();
