export interface BenchOptions {
  latencyTasks: number;
  shortTasks: number;
  concurrency: number;
  ingestSeconds: number;
  ingestConnections: number;
  recoveryTasks: number;
  footprintWorkers: number;
  queuedTasks: number;
  swarmTasks: number;
  egressMib: number;
}

/** What every scenario gets from bench/main.ts. Each scenario starts its own Redis and cleans up. */
export interface BenchContext {
  image: string;
  options: BenchOptions;
  /** Progress for the operator watching; never part of the results. */
  progress(done: number, total: number, what?: string): void;
}
