import type { Checkpoint } from './checkpoint.ts';

/** Durable home of a pipeline's checkpoint. `save` is monotonic: it never moves a checkpoint backwards. */
export interface CheckpointStore {
  load(pipeline: string): Promise<Checkpoint | null>;
  save(checkpoint: Checkpoint): Promise<void>;
  /** Forgets the pipeline's checkpoint (teardown / reset). */
  clear?(pipeline: string): Promise<void>;
  close?(): Promise<void>;
}
