// berth's configuration: one zod schema, parsed once per process. The parts live in config/:
// fields (how a value is read), schema (every setting), kinds (per-kind commands and token
// permissions), worker-policy (what may never reach a worker), egress (the proxy's settings), load.
export { envSchema, DEFAULT_WORKER_NETWORK } from './config/schema.js';
export { agentCommandFor, DEFAULT_TOKEN_PERMISSIONS, parseTokenPermissions, tokenPermissionsFor, kindPriority } from './config/kinds.js';
export { ConfigError, loadConfigOrExit, parseConfig, type Config } from './config/load.js';
export { budgetFor, type Budgets } from './config/budgets.js';
