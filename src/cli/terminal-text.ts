/**
 * A container's output shown on an operator's terminal: escape sequences stripped (an agent, or
 * text it copied, could otherwise retitle the window, move the cursor, rewrite earlier lines or
 * hide text), other control characters but tab made visible. `berth tasks logs --raw` skips this.
 */
// CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \), other two-character ESC sequences, and C1 CSI/OSC.
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]|\u009b[0-?]*[ -/]*[@-~]|\u009d[^\u0007]*\u0007?/g;
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function terminalSafe(line: string): string {
  return line.replace(ESCAPES, '').replace(CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
