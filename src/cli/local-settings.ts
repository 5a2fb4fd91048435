import { readFileSync } from 'node:fs';

/**
 * The settings `scripts/up.sh` wrote for the berth it started (`data/berth.env`, named by
 * BERTH_ENV_FILE in the `berth` wrapper it installs): `KEY="json string"` lines, secrets only as
 * `*_FILE` paths. The CLI takes its address and token from them, and doctor checks the same
 * configuration the dispatcher runs with; anything set in the environment wins.
 */
export function localSettings(file = process.env.BERTH_ENV_FILE): Record<string, string> {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  const settings: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!match) continue;
    try {
      settings[match[1]!] = JSON.parse(match[2]!) as string;
    } catch {
      settings[match[1]!] = match[2]!;
    }
  }
  return settings;
}
