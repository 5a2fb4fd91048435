import type { FastifyInstance } from 'fastify';
import { budgetFor, kindPriority, type Config } from '../../core/config.js';

export type KindsConfig = Pick<Config, 'agentCommands' | 'setupCommands' | 'priorities' | 'budgets' | 'API_PRIORITY_MIN' | 'API_PRIORITY_MAX'>;

/**
 * The task kinds this berth runs (AGENT_COMMAND_<KIND>), with what a client may want to know before
 * it submits: the start priority, the per-task budget, whether a setup phase runs. Not the commands:
 * what runs in a worker is the operator's business.
 */
export async function kindRoutes(app: FastifyInstance, opts: { config: KindsConfig }): Promise<void> {
  const { config } = opts;
  app.get('/kinds', async () => ({
    kinds: Object.keys(config.agentCommands)
      .sort()
      .map((kind) => ({
        kind,
        priority: kindPriority(config.priorities, kind),
        budget: budgetFor(config.budgets, kind) ?? null,
        setup: Object.hasOwn(config.setupCommands, kind),
      })),
    apiPriority: { min: config.API_PRIORITY_MIN, max: config.API_PRIORITY_MAX },
  }));
}
