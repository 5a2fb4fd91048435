import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { KIND_PATTERN } from './task.js';
import { repoRoleSchema } from './permission.js';
import { priorityLevelSchema } from './start-priority.js';
import { scheduleSchema } from './schedules.js';

/**
 * Which GitHub deliveries become which tasks, and whom berth trusts to start them. Operator
 * config (WEBHOOK_RULES_FILE, JSON), never code in handlers. See docs/webhooks.md.
 */
/** The least role (GitHub's, on the repository) the actor needs for this rule; default: the kind's, then `trust.permission`. */
/** `priority`: the start priority of the rule's tasks (higher first, -10 to 10); default: the kind's (TASK_PRIORITY_<KIND>). */
const rulePermission = { permission: repoRoleSchema.optional(), priority: priorityLevelSchema.optional() };

const ruleSchema = z.discriminatedUnion('on', [
  z.strictObject({
    on: z.literal('issues.labeled'),
    label: z.string().min(1),
    kind: z.string().regex(KIND_PATTERN),
    ...rulePermission,
    /** Hand the issue's title and body to the agent, as untrusted data (`task.untrusted`); false: only the number. */
    issueText: z.boolean().default(true),
  }),
  z.strictObject({ on: z.literal('pull_request.labeled'), label: z.string().min(1), kind: z.string().regex(KIND_PATTERN), ...rulePermission }),
  z.strictObject({ on: z.literal('pull_request.review_requested'), kind: z.string().regex(KIND_PATTERN), ...rulePermission }),
  z.strictObject({
    on: z.literal('issue_comment.created'),
    command: z.string().regex(/^\/\S+( \S+)*$/, 'a slash command such as "/agent review"'),
    kind: z.string().regex(KIND_PATTERN),
    ...rulePermission,
    /** Text after the command becomes the task's prompt. */
    promptFromArguments: z.boolean().default(false),
  }),
  z.strictObject({
    on: z.literal('pull_request.synchronize'),
    kind: z.string().regex(KIND_PATTERN),
    ...rulePermission,
    /** Cancel the PR's queued or running task of this kind and queue a new one. */
    supersede: z.boolean().default(true),
  }),
]);
export type Rule = z.infer<typeof ruleSchema>;

const APPROVAL_DEFAULTS = { enabled: true, expireAfterHours: 72, forks: false };
const approvalRulesSchema = z
  .strictObject({
    /** false: such requests are dropped with a log line, as before approvals existed. */
    enabled: z.boolean().default(APPROVAL_DEFAULTS.enabled),
    /** How long a request waits; then it ends unapproved, with a neutral check run. */
    expireAfterHours: z.number().positive().max(720).default(APPROVAL_DEFAULTS.expireAfterHours),
    /** Implement tasks on fork pull requests wait for approval too, instead of being refused. */
    forks: z.boolean().default(APPROVAL_DEFAULTS.forks),
  })
  .default(APPROVAL_DEFAULTS);

export const webhookRulesSchema = z.strictObject({
  /** The GitHub App's bot login; a review requested from it starts a review. */
  botLogin: z.string().min(1).default('berth[bot]'),
  trust: z
    .strictObject({
      /** Installation ids allowed to start work. An installation is allowed if listed here or its owner is in `owners`. */
      installations: z.array(z.number().int().positive()).default([]),
      owners: z.array(z.string().min(1)).default([]),
      /** `owner/name` or `owner/*`. */
      repositories: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]*\/([A-Za-z0-9._-]+|\*)$/)).default([]),
      /**
       * The least role on the repository (as GitHub reports it for the actor) that may start or
       * re-run or cancel work: every kind's agent holds a model key, most hold a write token.
       */
      permission: repoRoleSchema.default('write'),
      /** Per kind, a different least role (e.g. `{"triage-bot": "triage"}`). */
      kinds: z.record(z.string().regex(KIND_PATTERN), repoRoleSchema).default({}),
      /** A cheap first filter only: a comment author whose author_association is not listed is refused without asking GitHub. */
      associations: z
        .array(z.enum(['OWNER', 'MEMBER', 'COLLABORATOR', 'CONTRIBUTOR', 'FIRST_TIME_CONTRIBUTOR', 'FIRST_TIMER', 'NONE']))
        .default(['OWNER', 'MEMBER', 'COLLABORATOR']),
      /** Logins that pass the association filter (their role is still asked of GitHub). */
      logins: z.array(z.string().min(1)).default([]),
      allowBots: z.boolean().default(false),
      allowForkImplement: z.boolean().default(false),
      /**
       * A request from someone in scope but below the least role (a contributor's `/agent review`
       * on their own pull request) waits for a person with that role to approve it, instead of
       * being dropped: no container, no token until then.
       */
      approval: approvalRulesSchema,
    })
    .default({
      installations: [],
      owners: [],
      repositories: [],
      permission: 'write',
      kinds: {},
      associations: ['OWNER', 'MEMBER', 'COLLABORATOR'],
      logins: [],
      allowBots: false,
      allowForkImplement: false,
      approval: APPROVAL_DEFAULTS,
    }),
  /** Scheduled agents (cron), one task per tick; see docs/webhooks.md. */
  schedules: z
    .array(scheduleSchema)
    .default([])
    .superRefine((schedules, ctx) => {
      const seen = new Set<string>();
      for (const [index, { id }] of schedules.entries()) {
        if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `'${id}' names two schedules` });
        seen.add(id);
      }
    }),
  rules: z.array(ruleSchema).default([
    { on: 'issues.labeled', label: 'agent:implement', kind: 'implement', issueText: true },
    { on: 'pull_request.labeled', label: 'agent:review', kind: 'review' },
    { on: 'pull_request.review_requested', kind: 'review' },
    { on: 'issue_comment.created', command: '/agent review', kind: 'review', promptFromArguments: false },
    { on: 'issue_comment.created', command: '/agent implement', kind: 'implement', promptFromArguments: true },
    { on: 'pull_request.synchronize', kind: 'review', supersede: true },
  ]),
});
export type WebhookRules = z.infer<typeof webhookRulesSchema>;

/** Reads and validates the rules file; problems are reported with the config problems at start. */
export function loadWebhookRules(path: string | undefined): { rules: WebhookRules } | { problems: string[] } {
  if (!path) return { rules: webhookRulesSchema.parse({}) };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return { problems: [`WEBHOOK_RULES_FILE: cannot read ${path} as JSON (${(error as Error).message})`] };
  }
  const parsed = webhookRulesSchema.safeParse(raw);
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => `WEBHOOK_RULES_FILE ${path}: ${i.path.join('.')}: ${i.message}`) };
  return { rules: parsed.data };
}
