/**
 * The small Kafka interface the target needs. The kafkajs implementation lives in kafka-client.ts (the only file
 * that imports kafkajs); tests substitute an in-memory client through this interface.
 */

export interface OutgoingMessage {
  topic: string;
  /** JSON text, or null for messages without a key. */
  key: string | null;
  /** JSON text, or null for a tombstone. */
  value: string | null;
  headers: Record<string, string>;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  /** -1: broker default. */
  replicationFactor: number;
  configs: Record<string, string>;
}

export interface KafkaClient {
  connect(): Promise<void>;
  /** Which of `topics` exist on the cluster. */
  existingTopics(topics: string[]): Promise<Set<string>>;
  createTopics(specs: TopicSpec[]): Promise<void>;
  /**
   * Produces the messages with acks from all in-sync replicas and resolves only when every one is acknowledged.
   * Messages with the same key go to the same partition in the given order. Rejects with a TributaryError
   * (ConnectionError when worth retrying).
   */
  send(messages: OutgoingMessage[]): Promise<void>;
  disconnect(): Promise<void>;
}
