/**
 * The small Kafka interface the target needs. Its implementation lives in kafka-client.ts (kafkajs for the
 * administration, our own producer for the data); tests substitute an in-memory client through this interface.
 */

export interface OutgoingMessage {
  topic: string;
  /** Chosen by the target (partitioner.ts), so it knows the record batch each message joins. */
  partition: number;
  /** JSON text, or null for messages without a key: places the message and names it in errors. */
  key: string | null;
  /**
   * Key, value (null for a tombstone) and headers as a record carries them (record-batch.ts), encoded as soon as
   * the message is made: the JSON text is dropped young instead of waiting, on the heap, for the acknowledgement.
   */
  content: Buffer;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  /** -1: broker default. */
  replicationFactor: number;
  configs: Record<string, string>;
}

/** What the target must know of a topic to produce to it. */
export interface TopicLayout {
  partitions: number;
  /** The topic's effective `max.message.bytes` (its own setting, else the broker's `message.max.bytes`). */
  maxMessageBytes: number;
  /** `cleanup.policy` includes compact: records without a key are refused by the broker. */
  compacted: boolean;
}

export interface KafkaClient {
  connect(): Promise<void>;
  /** Which of `topics` exist on the cluster. */
  existingTopics(topics: string[]): Promise<Set<string>>;
  createTopics(specs: TopicSpec[]): Promise<void>;
  /** Partition count and limits of existing topics. */
  describeTopics(topics: string[]): Promise<Map<string, TopicLayout>>;
  /**
   * Produces the messages with acks from all in-sync replicas and resolves only when every one is acknowledged.
   * Each message goes to its own `partition`; messages of one partition keep their order and form one record batch.
   * Rejects with a TributaryError (ConnectionError when worth retrying).
   */
  send(messages: OutgoingMessage[]): Promise<void>;
  /** Ends the connection; a send still retrying inside the client can no longer reach a broker afterwards. */
  disconnect(): Promise<void>;
}
